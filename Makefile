# gradinv: every target sets up .venv on first use.
VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
ARGS    ?=

.DEFAULT_GOAL := help
.PHONY: help setup run test bench

help: ## List the targets, one line each
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort | expand -t 18

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install gradinv with its test tools

run: $(STAMP) ## Run the default experiment (IG on the MNIST MLP, offline); extra overrides in ARGS="..."
	$(PYTHON) gradinv/main.py $(ARGS)

test: $(STAMP) ## Run the test suite
	$(PYTHON) -m pytest $(ARGS)

bench: $(STAMP) ## Time attacks (1 vs 8 vs 32 vectorized, one by one, plain-loop floor); writes bench.json
	$(PYTHON) -m gradinv.bench $(ARGS)
