# The two commands a newcomer needs: `make run` and `make test`. CI runs `make test` through .ci/run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: set everything up and run the main job (the demo) on the embedded default
run: $(STAMP)
	$(VENV)/bin/onshore demo

## test: set up and run the test suite
test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy src/onshore

## bench: the benchmarks (each prints one JSON line)
bench: $(STAMP)
	$(PY) bench/ingest.py --json

clean:
	rm -rf $(VENV) onshore-demo .pytest_cache
