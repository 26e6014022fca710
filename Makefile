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

SAMPLE := {"data": [[0.038, 0.05, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.02, -0.018]]}

demo: setup ## Stack up, retrain, release to QA then production, score, quarantine a bad file
	$(MLOPS) up
	@echo "--- retraining on the data waiting in the landing container"
	$(MLOPS) retrain
	@echo "--- releasing the candidate: image, QA, smoke test, production, smoke test"
	$(MLOPS) release
	@echo "--- scoring one row on the production URL"
	curl -sf -H "Authorization: Bearer $$($(MLOPS) key production)" -H 'Content-Type: application/json' \
	  -d '$(SAMPLE)' "$$($(MLOPS) url production)/score"; echo
	@echo "--- a bad file is quarantined, with the reason (this run ends Failed on purpose)"
	-$(MLOPS) retrain --data tests/data/bad/out_of_range.csv
	$(MLOPS) status
	@echo "The stack keeps running: open the Prefect UI above; stop everything with 'make down'."

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
