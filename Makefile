# smoothbot — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --quiet
INSTALLED := $(VENV)/.installed
DEMO_DIR := out/demo

.PHONY: venv weights test test-fast demo demo-cli bench bench-full clean

venv: $(INSTALLED)

# torch goes in first, pinned to the local CPU wheel, so nothing later can pull a CUDA build.
$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev,bench,links]'
	touch $@

weights: venv
	$(PY) -m interpolation.models.weights fetch

test: venv weights
	$(PY) -m pytest

# Everything except the slow model-quality checks.
test-fast: venv weights
	$(PY) -m pytest -m 'not slow'

# The chat flow on the terminal: sample clip → queue → worker → engine → reply file in out/demo.
demo: venv weights
	$(PY) -m bot.demo --out-dir $(DEMO_DIR)

# The engine alone, through its CLI.
demo-cli: venv weights
	$(PY) -m interpolation.demo --out-dir $(DEMO_DIR)

bench: venv weights
	$(PY) -m bench

bench-full: venv weights
	$(PY) -m bench --full

clean:
	rm -rf $(VENV) out .pytest_cache
