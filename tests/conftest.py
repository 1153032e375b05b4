"""Shared test setup: every test runs in float64 (set here, never at library import), on one
CPU device (two pytest workers share the cores; tests/test_devices.py checks the default of
one device per core, and the device-layout tests ask for two themselves)."""
import os

os.environ.setdefault("JAXGLMM_CPU_DEVICES", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

# Shared fixtures are welcome below.

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sleep_fit():
    """A tiny collapsed gaussian fit of sleepstudy (numeric group labels, p = 1, q = 2,
    random rate d of tau's prior): 2 chains x 50 draws after 100 warmup."""
    import jaxglmm
    df = jaxglmm.datasets.load_sleepstudy()
    Z = np.column_stack([np.ones(len(df)), df.Days])
    X = ((df.Days.to_numpy() - 4.5) ** 2 / 10)[:, None]
    priors = jaxglmm.Priors(tau=jaxglmm.Gamma(1.0, jaxglmm.Gamma(1.0, 10.0)))
    model = jaxglmm.GLMM.from_arrays(df.Reaction, Z, df.Subject, X=X, priors=priors,
                                     x_names=["Days2"], z_names=["Intercept", "Days"])
    return model.sample(chains=2, warmup=100, draws=50, seed=0, progress=False)


@pytest.fixture(scope="session")
def binomial_fit():
    """A tiny joint binomial fit (string group labels, trials, offset, p = 1, q = 1,
    random gamma of the Wishart prior): 2 chains x 40 draws after 100 warmup."""
    import jaxglmm
    rng = np.random.default_rng(3)
    N, m = 6, 8
    groups = np.repeat([f"herd{i}" for i in range(N)], m)
    x = rng.normal(size=N * m)
    trials = rng.integers(3, 9, size=N * m)
    b = rng.normal(0.3, 0.7, size=N)
    p = 1 / (1 + np.exp(-(b[np.arange(N).repeat(m)] + 0.5 * x)))
    y = rng.binomial(trials, p)
    priors = jaxglmm.Priors(omega=jaxglmm.Wishart(1.0, jaxglmm.Gamma(2.0, 4.0)))
    model = jaxglmm.GLMM.from_arrays(y, np.ones(N * m), groups, X=x[:, None],
                                     family="binomial", trials=trials,
                                     offset=0.1 * rng.normal(size=N * m), priors=priors,
                                     x_names=["x"], z_names=["Intercept"])
    return model.sample(chains=2, warmup=100, draws=40, seed=1, progress=False)
