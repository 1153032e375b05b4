"""Long runs: extend = one longer run, thinning, dropping b, Ctrl-C, reproducibility and
chains spread over several devices."""
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import jaxglmm
import jaxglmm.sampling

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sleep_model():
    return jaxglmm.GLMM("Reaction ~ Days + (1 + Days | Subject)",
                        jaxglmm.datasets.load_sleepstudy())


def _quiet_sample(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.sample(progress=False, **kw)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("method", ["collapsed", "joint"])
def test_extend_equals_one_longer_run(sleep_model, method):
    short = _quiet_sample(sleep_model, chains=2, warmup=100, draws=60, seed=3, method=method)
    long = _quiet_sample(sleep_model, chains=2, warmup=100, draws=100, seed=3, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extended = short.extend(40, progress=False)
    _assert_same(long.draws, extended.draws)
    _assert_same(long.sample_stats, extended.sample_stats)
    assert extended.info["draws"] == 100 and extended.info["steps"] == 100
    np.testing.assert_array_equal(long.step_size, extended.step_size)
    assert short.info["draws"] == 60 and short.draws["mu"].shape[1] == 60  # unchanged


def test_extend_glmm_twice(sleep_model):
    df = jaxglmm.datasets.load_sleepstudy()
    df["slow"] = df.Reaction > 300
    m = jaxglmm.GLMM("slow ~ Days + (1 | Subject)", df, family="bernoulli")
    one = _quiet_sample(m, chains=2, warmup=100, draws=90, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        two = _quiet_sample(m, chains=2, warmup=100, draws=30, seed=5).extend(
            30, progress=False).extend(30, progress=False)
    _assert_same(one.draws, two.draws)


def test_thin_and_keep_b(sleep_model):
    full = _quiet_sample(sleep_model, chains=2, warmup=100, draws=100, seed=1)
    thin = _quiet_sample(sleep_model, chains=2, warmup=100, draws=100, seed=1, thin=5,
                         keep_b=False)
    assert "b" not in thin.draws and thin.info["draws"] == 20
    np.testing.assert_array_equal(thin.draws["mu"], full.draws["mu"][:, 4::5])
    np.testing.assert_array_equal(thin.sample_stats["lp"], full.sample_stats["lp"][:, 4::5])
    with pytest.raises(ValueError, match="thin"):
        sleep_model.sample(chains=1, warmup=10, draws=3, thin=5, progress=False)
    assert "b[308,Intercept]" not in thin.summary(warn=False).index


def test_ctrl_c_keeps_finished_draws(sleep_model, monkeypatch):
    real = jaxglmm.sampling._compiled_chunk

    def interrupting(*args, **kwargs):
        compiled = real(*args, **kwargs)
        calls = {"n": 0}

        def run(*a):
            adapting = bool(a[-1])
            if not adapting:
                calls["n"] += 1
                if calls["n"] == 3:
                    raise KeyboardInterrupt
            return compiled(*a)
        return run
    monkeypatch.setattr(jaxglmm.sampling, "_compiled_chunk", interrupting)
    with pytest.warns(RuntimeWarning, match="interrupted: returning the 40 draws"):
        fit = sleep_model.sample(chains=2, warmup=40, draws=100, chunk=20, progress=False)
    assert fit.info["draws"] == 40 and fit.draws["mu"].shape == (2, 40, 2)


def test_same_seed_same_draws_other_seed_other_draws(sleep_model):
    a = _quiet_sample(sleep_model, chains=2, warmup=50, draws=30, seed=11)
    b = _quiet_sample(sleep_model, chains=2, warmup=50, draws=30, seed=11)
    c = _quiet_sample(sleep_model, chains=2, warmup=50, draws=30, seed=12)
    _assert_same(a.draws, b.draws)
    assert not np.array_equal(a.draws["mu"], c.draws["mu"])


SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np, jax, jaxglmm
    warnings.simplefilter("ignore")
    df = jaxglmm.datasets.load_sleepstudy()
    df["slow"] = df.Reaction > 300
    out = {"devices": jax.device_count()}
    runs = (("bernoulli", "slow ~ Days + (1 | Subject)", "sequential", 40, 30),
            ("gaussian", "Reaction ~ Days + (1 + Days | Subject)", "sequential", 40, 30),
            ("bernoulli_vectorized", "slow ~ Days + (1 | Subject)", "vectorized", 0, 5))
    for name, formula, chain_method, warmup, draws in runs:
        family = "gaussian" if name == "gaussian" else "bernoulli"
        fit = jaxglmm.GLMM(formula, df, family=family).sample(
            chains=4, warmup=warmup, draws=draws, seed=2, progress=False,
            chain_method=chain_method)
        out[name] = {k: np.asarray(v).tolist() for k, v in fit.draws.items()}
        out[name + "_devices"] = fit.info["devices"]
    json.dump(out, open(sys.argv[1], "w"))
""")


def _run(tmp_path, devices: int) -> dict:
    path = tmp_path / f"draws{devices}.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, check=True,
                   cwd=tmp_path, timeout=600)
    return json.loads(path.read_text())


@pytest.mark.slow
def test_chains_spread_over_devices_give_the_same_draws(tmp_path):
    """Two CPU devices take two chains each. With chain_method="sequential" the draws equal
    one device's bit for bit, warmup included (joint bernoulli and collapsed gaussian).

    Vectorised chains on CPU stay on one device (`sampling._chain_sharding`: split over CPU
    devices the batched program of a 66-dimensional dense metric hung), so their draws are
    the same too."""
    one, two = _run(tmp_path, 1), _run(tmp_path, 2)
    assert one["devices"] == 1 and two["devices"] == 2
    for name in ("bernoulli", "gaussian", "bernoulli_vectorized"):
        spread = 1 if name == "bernoulli_vectorized" else 2
        assert one[name + "_devices"] == 1 and two[name + "_devices"] == spread
        for k in one[name]:
            a, b = np.asarray(one[name][k]), np.asarray(two[name][k])
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: {k}, 1 and 2 devices")
