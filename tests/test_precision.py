"""Precision and reproducibility of sampling, other kernels, and the public pure functions.

float64 is the default without touching the user's JAX configuration. That is checked in a
fresh interpreter, where x64 is off (conftest switches it on for this session); the same
interpreter also runs the seed and kernel fits, beside the in-process tests, to use both cores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxglmm

CHAINS, WARMUP, DRAWS = 2, 20, 10
N_GROUPS = 5

# Run by exec here and in the fresh interpreter, so that both sample the same model.
SIMULATE = """
rng = np.random.default_rng(0)
groups = np.repeat(np.arange(5), 6)
x = rng.normal(size=30)
y = 1.0 + 0.5 * x + rng.normal(size=5)[groups] + 0.3 * rng.normal(size=30)
model = jaxglmm.GLMM.from_arrays(y, np.ones(30), groups, X=x[:, None], **MODEL_KWARGS)
"""


def simulated_model(**kwargs) -> jaxglmm.GLMM:
    """Gaussian random intercepts: 5 groups of 6, one covariate (p = 1, q = 1)."""
    scope = {"np": np, "jaxglmm": jaxglmm, "MODEL_KWARGS": kwargs}
    exec(SIMULATE, scope)
    return scope["model"]


def draw_shapes(C: int, S: int, p: int = 1, q: int = 1, N: int = N_GROUPS) -> dict:
    return {"beta": (C, S, p), "mu": (C, S, q), "sigma": (C, S), "tau": (C, S),
            "D": (C, S, q, q), "sd": (C, S, q), "corr": (C, S, q, q), "b": (C, S, N, q)}


FRESH_SCRIPT = """
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

cache_dir, out_path = sys.argv[1], sys.argv[2]
before = bool(jax.config.jax_enable_x64)
# Reruns of the same program load it from the compilation cache (saves compile time only).
jax.config.update("jax_compilation_cache_dir", cache_dir)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
import jaxglmm
after_import = bool(jax.config.jax_enable_x64)
MODEL_KWARGS = {}
""" + SIMULATE + """
import blackjax
runs = {"first": dict(seed=1), "again": dict(seed=1), "other": dict(seed=2),
        "mala": dict(seed=1, kernel="mala", method="joint"),
        "blackjax.mala": dict(seed=1, kernel=blackjax.mala, method="joint"),
        "hmc": dict(seed=1, kernel="hmc", method="joint", num_integration_steps=4)}
fits = {run: model.sample(chains=2, warmup=50, draws=20, progress=False, **kwargs)
        for run, kwargs in runs.items()}
arrays = {}
for run, fit in fits.items():
    arrays.update({f"{run}/draws/{k}": v for k, v in fit.draws.items()})
    arrays.update({f"{run}/stats/{k}": v for k, v in fit.sample_stats.items()})
    arrays[f"{run}/step_size"] = fit.step_size
np.savez(out_path, **arrays)
print(json.dumps({"before": before, "after_import": after_import,
                  "after": bool(jax.config.jax_enable_x64),
                  "default_dtype": str(jnp.zeros(1).dtype),
                  "fit_dtype": fits["first"].info["dtype"],
                  "kernels": {run: fit.config.kernel for run, fit in fits.items()}}))
"""


@pytest.fixture(scope="module", autouse=True)
def fresh_process(tmp_path_factory):
    """Start, in a fresh interpreter with x64 off, float64 fits (2 chains, 50 warmup, 20 draws
    each): NUTS with the default method, seeds 1, 1 and 2; joint MALA named by string and by
    blackjax.mala; joint HMC with 4 leapfrog steps. It runs beside the other tests of this
    module. Returns a function that waits for it and gives (its JSON report, its arrays keyed
    "run/draws/name", "run/stats/name", "run/step_size")."""
    tmp = tmp_path_factory.mktemp("fresh")
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["JAX_PLATFORMS"] = "cpu"   # never a second process preallocating the GPU
    stdout, stderr = open(tmp / "stdout", "w+"), open(tmp / "stderr", "w+")
    proc = subprocess.Popen([sys.executable, "-c", FRESH_SCRIPT, str(tmp / "cache"),
                             str(tmp / "draws.npz")], stdout=stdout, stderr=stderr, env=env)
    result = {}

    def wait():
        if not result:
            rc = proc.wait(timeout=300)
            stdout.seek(0)
            stderr.seek(0)
            assert rc == 0, stderr.read()[-3000:]
            report = json.loads(stdout.read().strip().splitlines()[-1])
            with np.load(tmp / "draws.npz") as f:
                result.update(report=report, arrays=dict(f))
        return result["report"], result["arrays"]

    yield wait
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    stdout.close()
    stderr.close()


def runs(arrays: dict, run: str, kind: str = "draws") -> dict:
    prefix = f"{run}/{kind}/"
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def model():
    # non-centred on purpose (the automatic rule would pick centred for these 6-row clusters):
    # the tests below check b = mu + z sd
    return simulated_model(centred=False)


# ------------------------------------------------------------------------ precision


def test_float32_gives_float32_draws_and_leaves_flag():
    before = bool(jax.config.jax_enable_x64)
    model32 = simulated_model(dtype="float32")
    fit32 = model32.sample(chains=CHAINS, warmup=WARMUP, draws=DRAWS, seed=1, progress=False)
    assert bool(jax.config.jax_enable_x64) == before
    assert fit32.info["dtype"] == "float32"
    for name, value in fit32.draws.items():
        assert value.dtype == np.float32, name
        assert value.shape == draw_shapes(CHAINS, DRAWS)[name]
        assert np.all(np.isfinite(value)), name
    assert fit32.sample_stats["lp"].dtype == np.float32


# ------------------------------------------------------------- the notebook workflow


def test_public_pure_functions(model):
    pos = model.initial_position(jax.random.key(0))
    lp = model.logdensity_fn(pos)
    assert lp.shape == () and np.isfinite(lp)
    np.testing.assert_allclose(jax.jit(model.logdensity_fn)(pos), lp, rtol=1e-5)

    grad = jax.grad(model.logdensity_fn)(pos)
    assert grad.keys() == pos.keys()
    for key in pos:
        assert grad[key].shape == pos[key].shape, key
        assert np.all(np.isfinite(grad[key])), key
    assert np.any(grad["z"] != 0)

    nat = model.constrain(pos)
    assert nat["mu"].shape == (1,)
    assert nat["D"].shape == (1, 1)
    assert nat["b"].shape == (N_GROUPS, 1)
    assert nat["D"][0, 0] > 0
    # non-centred: b = mu + z * sd
    np.testing.assert_allclose(nat["b"], nat["mu"] + pos["z"] * np.sqrt(nat["D"][0, 0]),
                               rtol=1e-5)


def test_initial_positions_differ_by_key(model):
    a = model.initial_position(jax.random.key(0))
    b = model.initial_position(jax.random.key(1))
    again = model.initial_position(jax.random.key(0))
    assert not np.allclose(a["z"], b["z"])
    for key in a:
        np.testing.assert_array_equal(a[key], again[key])


# ------------------------------- float64 default, seeds, kernels (fresh process)


def test_float64_by_default_without_touching_x64(fresh_process):
    report, arrays = fresh_process()
    assert report["before"] is False                 # the premise: x64 off at the start
    assert report["after_import"] is False           # importing jaxglmm flips nothing
    assert report["after"] is False                  # nor does sampling
    assert report["default_dtype"] == "float32"
    assert report["fit_dtype"] == "float64"
    draws = runs(arrays, "first")
    assert {k: v.shape for k, v in draws.items()} == draw_shapes(2, 20)
    for name, value in draws.items():
        assert value.dtype == np.float64, name
    assert runs(arrays, "first", "stats")["lp"].dtype == np.float64
    # computed in float64, not float32 widened at the end
    mu = draws["mu"]
    assert np.mean(mu.astype(np.float32) != mu) > 0.9


def test_same_seed_gives_bit_identical_draws(fresh_process):
    _, arrays = fresh_process()
    for kind in ("draws", "stats"):
        first, again = runs(arrays, "first", kind), runs(arrays, "again", kind)
        assert first.keys() == again.keys() and first
        for name in first:
            np.testing.assert_array_equal(again[name], first[name], err_msg=name)
    np.testing.assert_array_equal(arrays["again/step_size"], arrays["first/step_size"])


def test_different_seed_gives_different_draws(fresh_process):
    _, arrays = fresh_process()
    first, other = runs(arrays, "first"), runs(arrays, "other")
    for name in ("beta", "mu", "sigma", "b"):
        assert not np.any(other[name] == first[name]), name
    assert not np.any(first["mu"][0] == first["mu"][1])          # chains differ too


def check_kernel_output(draws: dict, stats: dict, step_size, C: int, S: int, n_steps: int):
    assert {k: v.shape for k, v in draws.items()} == draw_shapes(C, S)
    for key, value in draws.items():
        assert np.all(np.isfinite(value)), key
    for key in ("acceptance_rate", "diverging", "lp", "n_steps"):
        assert stats[key].shape == (C, S), key
    assert np.all(stats["n_steps"] == n_steps)
    assert np.mean(stats["acceptance_rate"]) > 0.05
    # the chains moved: not every draw equals the first
    assert np.any(draws["mu"] != draws["mu"][:, :1])
    assert step_size.shape == (C,) and np.all(step_size > 0)


@pytest.mark.parametrize("run,kernel,n_steps", [("hmc", "hmc", 4), ("mala", "mala", 1),
                                                ("blackjax.mala", "mala", 1)])
def test_other_kernels_run(fresh_process, run, kernel, n_steps):
    report, arrays = fresh_process()
    assert report["kernels"][run] == kernel
    check_kernel_output(runs(arrays, run), runs(arrays, run, "stats"),
                        arrays[f"{run}/step_size"], 2, 20, n_steps=n_steps)


def test_kernel_object_same_as_its_name(fresh_process):
    _, arrays = fresh_process()
    by_name, by_object = runs(arrays, "mala"), runs(arrays, "blackjax.mala")
    for name in by_name:
        np.testing.assert_array_equal(by_object[name], by_name[name], err_msg=name)
