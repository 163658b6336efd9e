# smoothbot — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --quiet
INSTALLED := $(VENV)/.installed
DEMO_DIR := out/demo

.PHONY: venv weights test test-fast demo demo-cli bench bench-full messages clean

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

# Re-extract the bot's texts (_("…"), N_("…")) and merge them into bot/locale/*/LC_MESSAGES/smoothbot.po;
# new texts come in untranslated and tests/bot/test_i18n.py fails until each has its translation.
# The .po files are read at run time (bot/i18n.py compiles them in memory): there is no .mo to build.
messages: venv
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k said -k Note --no-location --sort-output -o out/smoothbot.pot .
	$(VENV)/bin/pybabel update -i out/smoothbot.pot -d bot/locale -D smoothbot --width 120 --ignore-obsolete

clean:
	rm -rf $(VENV) out .pytest_cache
