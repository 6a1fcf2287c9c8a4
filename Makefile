# `make run` and `make test` do all the set-up on a fresh machine (Python 3.11+ and git needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/skillforge serve

test: install
	$(BIN)/ruff check skillforge evolver tests
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check skillforge evolver tests

clean:
	rm -rf var
