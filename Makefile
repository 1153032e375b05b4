# make demo: set up a virtual environment, install jaxglmm, fit the bundled example.
# make test: install the test extras and run the test suite.
# make bench / bench-quick / bench-scaling: install the bench extras (NumPyro, PyMC, nutpie) and run
#   benchmarks/run.py (all models / three small ones, 2 chains x 300 / the scaling study);
#   extra options in BENCH_ARGS, e.g. make bench BENCH_ARGS="--models cbpp,epil"; make bench
#   (and bench-real alone) then fits the real-data suite, benchmarks/real_data.py.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

BENCH_ARGS ?=

.PHONY: demo test test-fast install bench bench-quick bench-real bench-scaling clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m jaxglmm.demo

test: $(VENV)/.test-installed
	$(PY) -m pytest -n 2 --durations=15 -q

test-fast: $(VENV)/.test-installed
	$(PY) -m pytest -n 2 -q -m "not slow"

bench: $(VENV)/.bench-installed
	$(PY) benchmarks/run.py $(BENCH_ARGS)
	$(PY) benchmarks/real_data.py

bench-real: $(VENV)/.bench-installed
	$(PY) benchmarks/real_data.py

bench-quick: $(VENV)/.bench-installed
	$(PY) benchmarks/run.py --quick $(BENCH_ARGS)

bench-scaling: $(VENV)/.bench-installed
	$(PY) benchmarks/run.py --scaling $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
