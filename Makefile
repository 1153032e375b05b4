# make demo: set up a virtual environment, install jaxglmm, fit the bundled example.
# make test: install the test extras and run the test suite.
# make test-formulae-0.6: the formula tests again on formulae 0.6.2 (the oldest the pin allows).
# make check-coinstall: jaxglmm, bambi and pymc installed together in a fresh environment.
# make bench / bench-quick / bench-scaling: install the bench extras (NumPyro, PyMC, nutpie) and run
#   benchmarks/run.py (all models / three small ones, 2 chains x 300 / the scaling study);
#   extra options in BENCH_ARGS, e.g. make bench BENCH_ARGS="--models cbpp,epil"; make bench
#   (and bench-real alone) then fits the real-data suite, benchmarks/real_data.py.
# make sbc: simulation-based calibration of every family with jaxglmm.sbc, and a check that a
#   wrong prior scale fails (benchmarks/sbc_study.py; a report in benchmarks/results/; options
#   in SBC_ARGS, e.g. SBC_ARGS="--families gamma --replications 200"; sbc-families: the same).
# make bench-many: sample_many against a loop of separate sample calls (benchmarks/many_fits.py;
#   options in MANY_ARGS); make bench runs it too.
# make suite: copy the benchmark suite from ../shared/bench (where new material arrives; set
#   SHARED_BENCH for another place) into benchmarks/suite, which the tests and benchmarks read.
# The interpreter for the virtual environments: Python >= 3.12 (ArviZ 1.x needs it), found by
# tools/find-python (python3.13, python3.12, pyenv's, then python3) unless PYTHON names one.
PYTHON ?=
VENV ?= .venv
PY := $(VENV)/bin/python
# shell: $$py becomes $(PYTHON), or what tools/find-python finds (stopping make if nothing)
CHOOSE_PYTHON = py="$(PYTHON)"; if [ -z "$$py" ]; then py=$$(tools/find-python) || exit 1; fi
# make a virtual environment $(1) with Python >= 3.12, replacing one made with an older Python
define make_venv
	@$(CHOOSE_PYTHON); \
	if [ -x $(1)/bin/python ] && ! $(1)/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
		echo "make: $(1) holds Python < 3.12; making it again with $$py"; rm -rf $(1); fi; \
	test -x $(1)/bin/python || { echo "$$py -m venv $(1)"; "$$py" -m venv $(1); }
endef

BENCH_ARGS ?=
SBC_ARGS ?=
MANY_ARGS ?=
SHARED_BENCH ?= ../shared/bench

.PHONY: demo test test-fast test-formulae-0.6 check-coinstall install bench bench-quick bench-real bench-scaling bench-many sbc sbc-families suite clean

$(VENV)/.installed: pyproject.toml
	$(call make_venv,$(VENV))
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
	$(call make_venv,$(OLD_VENV))
	$(OLD_VENV)/bin/python -m pip install -q -e '.[test]' 'formulae==0.6.2'
	$(OLD_VENV)/bin/python -m pytest -n 2 -q tests/test_formula.py tests/test_predict.py \
		tests/test_cli.py tests/test_storage.py tests/test_weights.py

# jaxglmm, bambi and pymc resolved into one fresh environment (`pip check`, imports, a fit)
COINSTALL_VENV ?= .venv-coinstall
check-coinstall:
	@$(CHOOSE_PYTHON); tools/check-coinstall "$$py" $(COINSTALL_VENV)

test-fast: $(VENV)/.test-installed
	$(PY) -m pytest -n 2 -q -m "not slow"

bench: $(VENV)/.bench-installed
	$(PY) benchmarks/run.py $(BENCH_ARGS)
	$(PY) benchmarks/real_data.py
	$(PY) benchmarks/many_fits.py $(MANY_ARGS)

bench-many: $(VENV)/.bench-installed
	$(PY) benchmarks/many_fits.py $(MANY_ARGS)

sbc sbc-families: $(VENV)/.bench-installed
	$(PY) benchmarks/sbc_study.py $(SBC_ARGS)

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
