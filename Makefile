# `make run` and `make test` do all the set-up on a fresh machine (Python 3.11+ and git needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

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

# Benchmarks: bench/results/latest.json and latest.svg, and a table (BENCH_ARGS=--quick).
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf var
