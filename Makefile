# Every target uses .venv and the exact versions in constraints.txt.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/python -m pip
PIP_INSTALL := $(PIP) install --quiet -c constraints.txt
CONFIG ?= cpu
DEVICE ?= auto
# parts of the experiments run side by side, one process each (one per core)
JOBS ?= 2

export HF_HUB_OFFLINE := 1
export NO_MKDOCS_2_WARNING := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: serve site test lint format reproduce examples math figures prerender bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Stamps re-run the install whenever the project or its pins change.
$(VENV)/.docs-installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e ".[docs]"
	touch $@

$(VENV)/.test-installed: $(VENV)/.docs-installed
	$(PIP_INSTALL) -e ".[docs,test]"
	touch $@

serve: $(VENV)/.docs-installed
	$(VENV)/bin/mkdocs serve --strict -a 127.0.0.1:8000

site: $(VENV)/.docs-installed
	$(VENV)/bin/mkdocs build --strict

# the lint runs first: a tree the formatter would change fails fast, before the long suite
test: lint
	$(VENV)/bin/python -m pytest

# ruff: the formatter's layout and a short lint rule set (pyproject.toml), over the whole tree
lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(VENV)/.test-installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

reproduce: $(VENV)/.docs-installed
	$(VENV)/bin/dpo-ref reproduce --config $(CONFIG) --device $(DEVICE) --jobs $(JOBS)

# the example scripts' outputs shown on the site (docs/results/examples/); NAMES=train_dpo for one
examples: $(VENV)/.docs-installed
	$(VENV)/bin/dpo-ref examples $(NAMES)

# the site's formulas typeset as SVG (docs/results/math.json); needs Chromium, as the browser tests do
math: $(VENV)/.test-installed
	$(VENV)/bin/dpo-ref math

# each figure's first view drawn as SVG (docs/results/figures.json); needs Chromium too
figures: $(VENV)/.test-installed
	$(VENV)/bin/python -m dpo_ref.site.prerendered_figures

# both of the above: what the site shows before any script runs
prerender: math figures

bench: $(VENV)/.test-installed
	$(VENV)/bin/python -m benchmarks.run

clean:
	rm -rf site .pytest_cache
