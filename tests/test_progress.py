"""Progress output: a bar only where one can be drawn, never in a log; one summary line."""
import io
import re
import warnings

import numpy as np
import pytest

import jaxglmm
from jaxglmm import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("env,enabled,stream,want", [
    (None, True, io.StringIO(), None),        # a log file or CI output: no bar
    (None, True, Terminal(), "text"),
    (None, False, Terminal(), None),          # progress=False: never
    ("0", True, Terminal(), None),
    ("1", True, io.StringIO(), "text"),       # forced, also into a log
    ("1", False, io.StringIO(), None),
])
def test_bar_kind(monkeypatch, env, enabled, stream, want):
    if env is None:
        monkeypatch.delenv(progress.ENV, raising=False)
    else:
        monkeypatch.setenv(progress.ENV, env)
    assert progress.bar_kind(enabled, stream) == want


def test_bad_override_is_named(monkeypatch):
    monkeypatch.setenv(progress.ENV, "yes")
    with pytest.raises(ValueError, match="JAXGLMM_PROGRESS='yes': must be 0"):
        progress.bar_kind(True, Terminal())


def test_sampling_into_a_log_writes_one_summary_line_and_no_bar(capfd, monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(5), 4)
    model = jaxglmm.GLMM.from_arrays(rng.normal(size=20) + g, np.ones(20), g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.sample(chains=2, warmup=30, draws=20, seed=1, chunk=5)
        out, err = capfd.readouterr()
        model.sample(chains=2, warmup=30, draws=20, seed=1, chunk=5, progress=False)
        quiet = capfd.readouterr()
    assert "\r" not in err and "warmup:" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("jaxglmm: 2 chains x 20 draws (30 warmup) in ")
    assert re.search(r" s \+ [\d.]+ s compiling; collapsed, dense mass matrix; \d+ divergences?$",
                     lines[0]), lines[0]
    assert quiet.err == "" and quiet.out == ""
