# SeatSync developer commands. `make run` and `make test` set everything up on a fresh machine
# (Python 3.11 and Node.js; network only to the package registries).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: run test setup lint typecheck unit integration bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "SeatSync needs Python 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(STAMP) $(NODE_STAMP)

## Start Azurite and the emulators with a sample MSP, run a full sync, print the report.
## PSA=autotask or PSA=halopsa bills the sample MSP through that PSA instead of ConnectWise.
run: setup
	$(BIN)/seatsync demo --psa $${PSA:-connectwise} --report seatsync-demo-report.json

## Every check: lint, types, unit + orchestrator + integration tests, infrastructure checks.
test: setup lint typecheck
	$(BIN)/python -m pytest -n 2 -q
	scripts/infra-check

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -q tests/unit tests/orchestrator

integration: setup
	$(BIN)/python -m pytest -n 2 -q tests/integration

## Figures for a generated MSP (TENANTS=500 by default): wall time, API calls, memory.
bench: setup
	$(BIN)/python scripts/bench_sync.py --tenants $${TENANTS:-500}

clean:
	rm -rf $(VENV) .venv-infra node_modules .pytest_cache .mypy_cache .ruff_cache
