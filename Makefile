# newsray — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NEWSRAY := $(VENV)/bin/newsray
# Reinstall when the dependency list changes.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: setup run demo down status test bench-api clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	# torch first and pinned: the project's range would otherwise pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

run: setup
	$(NEWSRAY) up

demo: setup
	$(NEWSRAY) up --demo

down:
	$(NEWSRAY) down

status:
	$(NEWSRAY) status

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

bench-api: setup
	$(PY) tests/benchmarks/api_articles.py

clean:
	rm -rf $(VENV) build *.egg-info
