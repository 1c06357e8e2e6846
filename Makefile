# `make run` and `make test` set everything up on first use (a virtualenv in .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test server bench lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# JupyterLab on the quickstart notebook, offline, on the local default store (~/.nbtracker)
# (as root, as in containers, JupyterLab needs --allow-root)
run: $(STAMP)
	$(BIN)/jupyter lab notebooks/quickstart.ipynb $(if $(filter 0,$(shell id -u)),--allow-root)

# two workers (pytest-xdist); the browser tests share one of them (tests/browser/conftest.py)
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# the team server (the .venv has the server extra): SQLite and files in ./nbtracker-server
server: $(STAMP)
	$(BIN)/nbtracker server

lint: $(STAMP)
	$(BIN)/ruff check nbtracker tests bench

bench: $(STAMP)
	$(BIN)/python bench/bench_log.py --peers
