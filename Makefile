# SeatSync developer commands. `make run` and `make test` set everything up on a fresh machine
# (Python 3.11 and Node.js; `make test` also Python 3.12 or later for the third-party PSA clients;
# network only to the package registries).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# The third-party PSA clients the tests read the emulators back with need Python 3.12 or later
# (autotask-client does), in a virtual environment of their own: the first interpreter found that
# is 3.12 or later (a pyenv shim of a version not selected does not count).
CLIENTS_PYTHON ?= $(shell for candidate in python3.12 python3.13 python3.14 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null); do "$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && command -v "$$candidate" && break; done)
CLIENTS_VENV := .venv-clients
CLIENTS_STAMP := $(CLIENTS_VENV)/.installed

.PHONY: run test setup clients browser lint typecheck unit integration screenshots bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "SeatSync needs Python 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CLIENTS_STAMP): requirements-clients.txt
	@test -n "$(CLIENTS_PYTHON)" || { echo "The third-party PSA client tests need Python 3.12 or later (autotask-client requires it) and none was found: install python3.12 or set CLIENTS_PYTHON=/path/to/python3.12" >&2; exit 1; }
	@$(CLIENTS_PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "CLIENTS_PYTHON must be Python 3.12 or later")'
	rm -rf $(CLIENTS_VENV)
	$(CLIENTS_PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-clients.txt
	@touch $@

setup: $(STAMP) $(NODE_STAMP)

## The third-party PSA clients (pyconnectwise, autotask-client, HaloPSA) the integration tests use.
clients: $(CLIENTS_STAMP)

## Headless Chromium for the browser tests: Debian's package, installed with apt-get when missing
## (as root, as on CI); SEATSYNC_CHROMIUM may name another Chromium executable instead.
browser:
	@if [ -z "$${SEATSYNC_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "the browser tests need Chromium: run 'sudo apt-get install chromium' or set SEATSYNC_CHROMIUM" >&2; \
	    exit 2; \
	  fi; \
	fi

## Start Azurite and the emulators with a sample MSP, run a full sync, print the report.
## PSA=autotask or PSA=halopsa bills the sample MSP through that PSA instead of ConnectWise.
run: setup
	$(BIN)/seatsync demo --psa $${PSA:-connectwise} --report seatsync-demo-report.json

## Every check: lint, types, unit + orchestrator + integration tests, infrastructure checks.
test: setup clients browser lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q
	scripts/infra-check

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -q tests/unit tests/orchestrator

integration: setup clients browser
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q tests/integration

## Refresh the README's screenshots of the dashboard (docs/screenshots) from the browser tests;
## only pages that look different are rewritten. Tests alone save them to a temporary directory.
screenshots: setup browser
	SEATSYNC_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/browser -k screenshot

## Figures for a generated MSP (TENANTS=500 by default): wall time, API calls, memory; the
## dashboard pages' load times.
bench: setup
	$(BIN)/python scripts/bench_sync.py --tenants $${TENANTS:-500} $${LATENCY_MS:+--latency-ms $$LATENCY_MS}
	$(BIN)/python scripts/bench_input.py --tenants $${TENANTS:-500}
	$(BIN)/python scripts/bench_dashboard.py --tenants $${TENANTS:-500}

clean:
	rm -rf $(VENV) .venv-infra $(CLIENTS_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
