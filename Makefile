# `make run` and `make test` set everything up on first use (a virtualenv in .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# JupyterLab on the quickstart notebook, offline, on the local default store (~/.nbtracker)
run: $(STAMP)
	$(BIN)/jupyter lab notebooks/quickstart.ipynb

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check nbtracker tests bench

bench: $(STAMP)
	$(BIN)/python bench/bench_log.py --peers
