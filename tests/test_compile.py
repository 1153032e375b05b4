"""What a fit compiles: nothing for a new seed of the same model, and, in a new process, its
programs come from JAX's persistent compilation cache (on by default, in a folder the user
can choose or turn off)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jaxglmm as jg


def _model():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(10), 5)
    y = rng.binomial(1, 1 / (1 + np.exp(-rng.normal(0, 1, 10)[g])))
    return jg.GLMM.from_arrays(y, np.ones(50), g, family="bernoulli")


def test_a_new_seed_compiles_nothing():
    model = _model()
    first = model.sample(chains=2, warmup=30, draws=20, seed=1, progress=False)
    again = model.sample(chains=2, warmup=30, draws=20, seed=2, progress=False)
    assert first.info["compile_s"] > 0
    assert again.info["compile_s"] == 0.0
    assert not np.array_equal(first.draws["mu"], again.draws["mu"])


SCRIPT = textwrap.dedent("""
    import json, jax
    hits = []
    jax.monitoring.register_event_listener(
        lambda event, **kw: hits.append(event) if event == "/jax/compilation_cache/cache_hits"
        else None)
    import numpy as np, jaxglmm as jg
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(10), 5)
    y = rng.binomial(1, 1 / (1 + np.exp(-rng.normal(0, 1, 10)[g])))
    m = jg.GLMM.from_arrays(y, np.ones(50), g, family="bernoulli")
    fit = m.sample(chains=2, warmup=30, draws=20, seed=0, progress=False)
    print(json.dumps({"hits": len(hits), "dir": jax.config.jax_compilation_cache_dir,
                      "mu": fit.draws["mu"].tolist()}))
""")


def _run(env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_new_process_loads_its_programs_from_the_persistent_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAXGLMM_")}
    env["JAXGLMM_CACHE_DIR"] = str(tmp_path / "cache")
    first = _run(env)
    assert first["dir"] == str(tmp_path / "cache")
    assert len(os.listdir(tmp_path / "cache")) > 3
    second = _run(env)
    assert second["hits"] >= 3  # the chunk, init and setup programs
    assert second["mu"] == first["mu"]  # loaded programs give the same draws
    env["JAXGLMM_COMPILATION_CACHE"] = "0"
    env["JAXGLMM_CACHE_DIR"] = str(tmp_path / "other")
    off = _run(env)
    assert off["dir"] is None and off["hits"] == 0 and not (tmp_path / "other").exists()
