# The two commands: `make demo` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PY := .venv/bin/python
MLOPS := .venv/bin/mlops
AZURITE_VERSION := 3.35.0
CHECKOV_VERSION := 3.3.30
AML_SERVER_VERSION := 1.5.1
# The CDN files of GX Data Docs pages, at the versions their templates load (vega@5, vega-lite@5
# and vega-embed@6: the newest when pinned); mlops/docs_server.py serves them offline.
DOCS_ASSETS := bootstrap@4.3.1 bootstrap-table@1.19.1 \
	bootstrap-table-1.19.0@npm:bootstrap-table@1.19.0 bootstrap-datepicker@1.9.0 \
	@forevolve/bootstrap-dark@1.1.0 @fortawesome/fontawesome-free@6.6.0 jquery@3.7.1 \
	popper.js@1.12.9 vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: .venv/.installed .tools/.installed .tools/.docs-assets .tools/checkov/.installed ## Install system packages, Python deps (.venv), Azurite, Data Docs assets and checkov (.tools)

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

# A folder of their own: an npm install with no package.json prunes what an earlier one put
# in the same node_modules (Azurite). --legacy-peer-deps: bootstrap 4.3.1 asks for popper.js
# ^1.14.7, the pages load 1.12.9.
.tools/.docs-assets: deployments/local/install-system.sh Makefile
	bash deployments/local/install-system.sh
	mkdir -p .tools/docs-assets
	npm install --prefix .tools/docs-assets --silent --no-audit --no-fund --no-save \
		--legacy-peer-deps $(DOCS_ASSETS)
	touch $@

# checkov scans deployments/azure/*.bicep (tests/unit/deployments/azure/test_bicep.py). Its
# dependency tree (boto3, its own pycep-parser and pydantic pins) would fight .venv's, so it
# lives in a virtualenv of its own, pinned whole by deployments/azure/checkov-constraints.txt.
.tools/checkov/.installed: deployments/azure/checkov-constraints.txt
	test -x .tools/checkov/bin/python || python3.11 -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install -q --upgrade pip
	.tools/checkov/bin/python -m pip install -q -c deployments/azure/checkov-constraints.txt \
		checkov==$(CHECKOV_VERSION)
	touch $@

# Microsoft's Azure ML inference server, the baseline of `make bench`: its pins
# (opentelemetry-api) fight .venv's, so it gets a virtualenv of its own, pinned whole by
# bench/aml-constraints.txt.
.tools/aml-server/.installed: bench/aml-constraints.txt
	test -x .tools/aml-server/bin/python || python3.11 -m venv .tools/aml-server
	.tools/aml-server/bin/python -m pip install -q --upgrade pip
	.tools/aml-server/bin/python -m pip install -q -c bench/aml-constraints.txt \
		azureml-inference-server-http==$(AML_SERVER_VERSION) scikit-learn joblib numpy
	touch $@

bench: setup .tools/aml-server/.installed ## Scoring side by side (AML server, ours, production URL, ceiling) + pipeline and retraining benches; BENCH_ARGS=--quick for a short check
	$(PY) -m bench.run $(BENCH_ARGS)

demo: setup ## Stack up, deploy, new data -> retrain -> release -> production; a bad file quarantined
	$(MLOPS) demo

test: setup ## Lint, type-check and run every test (unit, integration, end-to-end)
	$(MAKE) lint
	$(PY) -m pytest

lint: ## ruff + mypy + the import-linter layer contracts (pyproject.toml)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports

relay-package: setup ## Build the Event Grid -> Prefect relay Function's zip (.mlops/dist/blob-relay.zip)
	$(PY) deployments/azure/functions/build_package.py

up: setup ## Start the local stack
	$(MLOPS) up

down: ## Stop the local stack
	$(MLOPS) down

clean: down ## Stop everything and delete local state (.mlops)
	rm -rf .mlops

.PHONY: help setup demo test lint up down clean relay-package bench
