# make demo: set up a virtual environment, install jaxglmm, fit the bundled example.
# make test: install the test extras and run the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m jaxglmm.demo

test: $(VENV)/.test-installed
	$(PY) -m pytest -n 2 --durations=15 -q

test-fast: $(VENV)/.test-installed
	$(PY) -m pytest -n 2 -q -m "not slow"

clean:
	rm -rf $(VENV) *.egg-info
