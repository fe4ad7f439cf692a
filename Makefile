# Two commands: `make run` starts the whole system, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint migrate worker api bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/dossier run

# Two processes, one per core: each starts its own Temporal servers and database schemas.
PYTEST_ARGS ?= -n 2

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

migrate: $(STAMP)
	$(BIN)/dossier migrate

worker: $(STAMP)
	$(BIN)/dossier worker

api: $(STAMP)
	$(BIN)/dossier api

bench: $(STAMP)
	$(BIN)/python -m bench.customer_search

clean:
	rm -rf $(VENV) var build *.egg-info
