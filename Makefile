# The two commands: `make demo` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PY := .venv/bin/python
MLOPS := .venv/bin/mlops
AZURITE_VERSION := 3.35.0
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: .venv/.installed .tools/.installed ## Install system packages, Python deps (.venv) and Azurite (.tools)

.venv/.installed: pyproject.toml constraints.txt deployments/local/install-system.sh
	bash deployments/local/install-system.sh
	test -x $(PY) || python3.11 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

.tools/.installed: deployments/local/install-system.sh
	bash deployments/local/install-system.sh
	mkdir -p .tools
	cd .tools && npm install --silent --no-audit --no-fund --no-save azurite@$(AZURITE_VERSION)
	touch $@

demo: setup ## Stack up, deploy, new data -> retrain -> release -> production; a bad file quarantined
	$(MLOPS) demo

test: setup ## Lint, type-check and run every test (unit, integration, end-to-end)
	$(MAKE) lint
	$(PY) -m pytest

lint: ## ruff + mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

up: setup ## Start the local stack
	$(MLOPS) up

down: ## Stop the local stack
	$(MLOPS) down

clean: down ## Stop everything and delete local state (.mlops)
	rm -rf .mlops

.PHONY: help setup demo test lint up down clean
