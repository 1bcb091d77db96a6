# The two commands a newcomer needs: `make run` and `make test`. CI runs `make test` through .ci/run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean system-deps

# Debian packages the reports need: a CJK font (Chinese PDFs) and poppler (pdftoppm, PDF pages as PNG in docs).
# WeasyPrint also needs Pango and HarfBuzz-Subset (font subsetting); the dashboard's browser tests drive Debian's
# chromium through Playwright (never a downloaded browser). Each is installed only when missing.
SYSTEM_PACKAGES ?= fonts-noto-cjk poppler-utils libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Python keeps its bytecode (__pycache__/, ignored by git) even where the caller's environment turns that off: with
# PYTHONDONTWRITEBYTECODE set, every `onshore` process (the tests start hundreds) compiled ~145 modules afresh,
# about 0.2 s of CPU each, and pytest rewrote every test module in every worker.
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## system-deps: apt-get install the Debian packages above, only those missing (a no-op when all are there)
system-deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "system-deps: not a Debian system; install a CJK font and poppler yourself: $(SYSTEM_PACKAGES)"; exit 0; fi; \
	missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "system-deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## run: set everything up and run the main job (the demo) on the embedded default
run: system-deps $(STAMP)
	$(VENV)/bin/onshore demo

## test: set up and run the test suite, in TEST_WORKERS parallel pytest-xdist workers (TEST_WORKERS=0: one process)
# Each test file runs whole on one worker (--dist loadfile), so module fixtures are built once. Tests are safe side
# by side: databases, NATS prefixes, MQTT roots and client ids, S3 servers, ports and folders are each test's own.
# Three on two cores: many tests wait on servers, brokers and timers (measured: 3 workers 405 s, 2 598 s, 1 1,087 s;
# 2026-12-03, 1,845 tests on a fresh clone: 534 s with 3 workers; 2026-12-04, 1,812-1,816 tests: 444-508 s, 8 m 55 s-10 m 2 s with the install;
# with bytecode kept and lazy OpenCV/Alembic, 1,826 tests: 239 s, 4 m 51 s with the install).
TEST_WORKERS ?= 3
test: system-deps $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

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
