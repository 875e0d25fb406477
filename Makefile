# Retentio: `make demo` and `make test` bootstrap their own .venv from Python 3.11.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_WS ?= retentio-demo

.PHONY: demo test lint bench system-deps clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The runtime install (for the demo) and the dev install (tests, Spark) are stamped
# separately so each target installs what it needs, once.
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/retentio demo -w $(DEMO_WS) --force

system-deps:
	@bash scripts/system-deps.sh

test: system-deps $(VENV)/.installed-dev lint
	$(BIN)/python -m pytest -q

# Guard rails: lint, no upward import between layers, types of the typed surface.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_WS) .pytest_cache

# The report's and the web app's screenshots in docs/ (the tests write them to a temporary folder otherwise).
screenshots: system-deps $(VENV)/.installed-dev
	RETENTIO_SCREENSHOTS=$(CURDIR)/docs $(BIN)/python -m pytest -q tests/test_report.py -k chromium
	RETENTIO_SCREENSHOTS=$(CURDIR)/docs $(BIN)/python -m pytest -q tests/test_web_browser.py
