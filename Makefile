# make demo: set up a virtual environment, install jaxglmm, fit the bundled example.
# make test: install the test extras and run the test suite.
# make test-formulae-0.6: the formula tests again on formulae 0.6.2 (the oldest the pin allows).
# make bench / bench-quick / bench-scaling: install the bench extras (NumPyro, PyMC, nutpie) and run
#   benchmarks/run.py (all models / three small ones, 2 chains x 300 / the scaling study);
#   extra options in BENCH_ARGS, e.g. make bench BENCH_ARGS="--models cbpp,epil"; make bench
#   (and bench-real alone) then fits the real-data suite, benchmarks/real_data.py.
# make suite: copy the benchmark suite from ../shared/bench (where new material arrives; set
#   SHARED_BENCH for another place) into benchmarks/suite, which the tests and benchmarks read.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

BENCH_ARGS ?=
SHARED_BENCH ?= ../shared/bench

.PHONY: demo test test-fast test-formulae-0.6 install bench bench-quick bench-real bench-scaling suite clean

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

# the formula tests on formulae 0.6.2, the oldest release the pin allows (Bambi 0.21's)
OLD_VENV ?= .venv-formulae06
test-formulae-0.6:
	test -x $(OLD_VENV)/bin/python || $(PYTHON) -m venv $(OLD_VENV)
	$(OLD_VENV)/bin/python -m pip install -q -e '.[test]' 'formulae==0.6.2'
	$(OLD_VENV)/bin/python -m pytest -n 2 -q tests/test_formula.py tests/test_predict.py \
		tests/test_cli.py tests/test_storage.py tests/test_weights.py

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

suite:
	@test -f $(SHARED_BENCH)/models.json || { echo "make suite: no $(SHARED_BENCH)/models.json (set SHARED_BENCH)"; exit 1; }
	chmod -R u+w benchmarks/suite
	cp -R $(SHARED_BENCH)/models.json $(SHARED_BENCH)/make_data.py $(SHARED_BENCH)/data $(SHARED_BENCH)/refs benchmarks/suite/
	chmod -R u+w benchmarks/suite

clean:
	rm -rf $(VENV) *.egg-info
