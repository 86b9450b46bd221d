# Entry points for a newcomer: `make reports` and `make test` (see `make help`).
# Everything runs inside .venv, created from the pinned requirements.lock on first use.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := data/sample
SAMPLE_STAMP := $(SAMPLE)/truth.json
PARAMS ?= params/default.yaml
JOBS ?= 2
# The repository's own parameter sets read the generated sample world; a user's params file
# (e.g. params/local/mine.yaml) does not, so the sample is generated only for these.
SAMPLE_PARAMS := params/default.yaml params/daily.yaml params/weekly.yaml params/monthly.yaml params/spark-sample.yaml
NEEDS_SAMPLE = $(if $(filter $(patsubst ./%,%,$(PARAMS)),$(SAMPLE_PARAMS)),$(SAMPLE_STAMP))
# JupyterLab refuses to start as root (containers, CI) unless told; LAB_ARGS adds options,
# e.g. make lab LAB_ARGS="--no-browser --ip=127.0.0.1 --port=8899" for a headless server.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup data reports cdnow-reports test test-fast lab bench validate lint clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@echo ">> creating $(VENV) from requirements.lock (first run only; a few minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name analysis --display-name "Python (analysis)" >/dev/null
	@touch $(STAMP)

setup: $(STAMP) ## Create the virtual environment (.venv) from the lock file

$(SAMPLE_STAMP): | $(STAMP)
	@echo ">> generating the 20,000-customer sample world in $(SAMPLE)"
	$(BIN)/python -m analysis synth --customers 20000 --seed 42 --out $(SAMPLE)

data: $(SAMPLE_STAMP) ## Generate the embedded sample data if missing

reports: $(STAMP) $(NEEDS_SAMPLE) ## Produce every report of PARAMS (default: the sample data) into reports/
	$(BIN)/python -m analysis run --params $(PARAMS) --jobs $(JOBS)

data/cdnow/customers.parquet: | $(STAMP)
	$(BIN)/python -m analysis cdnow --out data/cdnow

cdnow-reports: $(STAMP) data/cdnow/customers.parquet ## Produce the reports on the real CDNOW data into reports/cdnow/
	$(BIN)/python -m analysis run --params params/cdnow.yaml --jobs $(JOBS)

validate: $(STAMP) $(NEEDS_SAMPLE) ## Check the data of PARAMS against the data contract
	$(BIN)/python -m analysis validate --params $(PARAMS)

test: $(STAMP) ## Run the whole test suite
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -q

lab: $(STAMP) $(SAMPLE_STAMP) ## Open JupyterLab on the same environment
	$(BIN)/jupyter lab notebooks/ $(LAB_ROOT) $(LAB_ARGS)

bench: $(STAMP) ## Run the benchmarks (slow: up to a million customers)
	$(BIN)/python bench/run_all.py

lint: $(STAMP) ## Lint and format-check the code
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

clean: ## Remove every generated report (all parameter sets) and generated data (keeps .venv, data/external)
	find reports -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf $(SAMPLE) data/cdnow
