"""Hard but valid data sample (perhaps with warnings), never crash.

Each case draws 2 chains x 200 warmup x 200 draws with the default priors and settings, and
checks that every draw is finite, that the summary's means and sds are finite, that any
warning is jaxglmm's (SamplingWarning or UserWarning), and something about the answer where
the data say something: complete separation (proper default priors keep the posterior
proper), all-zero poisson clusters, clusters of one observation, one cluster 1000 times
larger than the others, responses on scales 1e6 and 1e-6 (the posterior of mu scales with
the data), near-collinear predictors, a random slope with no variation within clusters.
Cases over about 20 s on the project's 2-core machine are marked slow.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from jaxglmm import GLMM
from jaxglmm.results import SamplingWarning

SAMPLE = dict(chains=2, warmup=200, draws=200, seed=1, progress=False)


def _sample(model: GLMM, **kw):
    """Sample; check finiteness and warnings; return (fit, summary with b)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.sample(**{**SAMPLE, **kw})
        table = fit.summary(include_b=True)
    for w in caught:
        assert issubclass(w.category, (SamplingWarning, UserWarning)) and not issubclass(
            w.category, RuntimeWarning), f"{w.category.__name__}: {w.message}"
    for name, x in fit.draws.items():
        assert np.all(np.isfinite(np.asarray(x))), f"non-finite draws of {name}"
    assert np.all(np.isfinite(table[["mean", "sd", "5%", "95%"]].to_numpy())), table
    return fit, table


def _groups(sizes) -> np.ndarray:
    return np.repeat(np.arange(len(sizes)), sizes)


# ------------------------------------------------------------------ complete separation


@pytest.mark.slow
@pytest.mark.parametrize("link", ["logit", "cloglog"])
def test_complete_separation_samples_a_proper_posterior(link):
    """y = 1 exactly where x > 0: the likelihood grows without bound in beta[x], the default
    N(0, (2.5 / sd(x))^2) prior keeps the posterior proper. (cloglog: eta of the y = 1 rows
    is pushed far up, where the gradient used to be NaN.)"""
    rng = np.random.default_rng(0)
    g = _groups([8] * 6)
    x = rng.normal(size=g.size)
    df = pd.DataFrame({"y": (x > 0).astype(int), "x": x, "g": g})
    model = GLMM("y ~ x + (1 | g)", df, family="bernoulli", link=link)
    fit, table = _sample(model)
    prior_sd = model.spec.priors.beta[1][0]
    slope = table.loc["beta[x]"]
    assert slope["mean"] > 0
    # the prior bounds it: far from where a flat prior would send it
    assert slope["95%"] < 6 * prior_sd, (slope, prior_sd)


# --------------------------------------------------------- all-zero poisson clusters


def test_poisson_clusters_of_zeros_sample_and_sit_below():
    rng = np.random.default_rng(1)
    g = _groups([6] * 8)
    y = rng.poisson(3.0, g.size)
    y[g < 2] = 0                                   # clusters 0 and 1: only zeros
    model = GLMM.from_arrays(y, np.ones(g.size), g, family="poisson")
    fit, table = _sample(model)
    b = fit.draws["b"][..., 0].mean(axis=(0, 1))
    assert b[:2].max() < b[2:].min(), b


# ----------------------------------------------------------------- clusters of size 1


@pytest.mark.parametrize("family", ["gaussian",
                                    pytest.param("bernoulli", marks=pytest.mark.slow)])
def test_clusters_of_one_observation(family):
    """30 clusters of one observation and 5 of four: with singletons, sigma and the sd of
    b are told apart only by the larger clusters (gaussian: b integrated out)."""
    rng = np.random.default_rng(2)
    g = _groups([1] * 30 + [4] * 5)
    b = rng.normal(size=35)[g]
    eta = 0.3 + b
    y = eta + 0.5 * rng.normal(size=g.size) if family == "gaussian" else \
        (rng.random(g.size) < 1 / (1 + np.exp(-eta))).astype(float)
    model = GLMM.from_arrays(y, np.ones(g.size), g, family=family)
    fit, table = _sample(model)
    assert fit.draws["b"].shape[2] == 35


# ------------------------------------------------------ one cluster 1000 times larger


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_one_cluster_1000_times_larger(family):
    """5 clusters of 3 observations and one of 3000: that cluster's b is pinned down."""
    rng = np.random.default_rng(3)
    g = _groups([3] * 5 + [3000])
    b = np.array([-1.0, 0.5, 0.0, 1.0, -0.5, 0.8])[g]
    x = rng.normal(size=g.size)
    eta = b + 0.5 * x
    y = eta + rng.normal(size=g.size) if family == "gaussian" else \
        (rng.random(g.size) < 1 / (1 + np.exp(-eta))).astype(float)
    model = GLMM.from_arrays(y, np.ones(g.size), g, X=x, family=family)
    fit, table = _sample(model)
    sd_b = fit.draws["b"][..., 0].std(axis=(0, 1))
    assert sd_b[5] < 0.2 * sd_b[:5].min(), sd_b
    assert abs(table.loc["beta[x1]", "mean"] - 0.5) < 0.15


# ----------------------------------------------------------- responses far from 1


def _lmm_data(seed=4):
    rng = np.random.default_rng(seed)
    g = _groups([5] * 10)
    t = np.tile(np.arange(5.0), 10)
    b0 = 2.0 + 0.8 * rng.normal(size=10)
    y = b0[g] + 0.4 * t + 0.5 * rng.normal(size=g.size)
    return y, np.column_stack([np.ones(g.size), t]), g


@pytest.mark.slow
@pytest.mark.parametrize("scale,method", [(1e6, "collapsed"), (1e-6, "collapsed"),
                                          (1e6, "joint")])
def test_gaussian_posterior_scales_with_the_response(scale, method):
    """y times 1e6 (or 1e-6): the default priors scale with sd(y), so the posterior of mu
    (and sigma, sd(b)) is the unit model's times the scale. Compared in relative terms,
    within 5 Monte Carlo standard errors of the difference."""
    y, Z, g = _lmm_data()
    fits = {}
    for s in (1.0, scale):
        fits[s], _ = _sample(GLMM.from_arrays(y * s, Z, g, z_names=["Intercept", "t"]),
                             method=method)
    from jaxglmm.diagnostics import mcse_mean
    for name in ("mu", "sigma", "sd"):
        unit = np.asarray(fits[1.0].draws[name], dtype=float)
        scaled = np.asarray(fits[scale].draws[name], dtype=float) / scale
        flat_u = unit.reshape(unit.shape[:2] + (-1,))
        flat_s = scaled.reshape(scaled.shape[:2] + (-1,))
        for k in range(flat_u.shape[-1]):
            a, b = flat_u[..., k], flat_s[..., k]
            tol = 5 * np.hypot(mcse_mean(a), mcse_mean(b))
            assert abs(a.mean() - b.mean()) < tol, (name, k, a.mean(), b.mean(), tol)


# ------------------------------------------------------------- near-collinear X


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_near_collinear_predictors(family):
    """x2 = x1 + 1e-6 noise: beta[x1] and beta[x2] are each barely identified (their
    proper priors hold them), their sum is well determined by the data."""
    rng = np.random.default_rng(5)
    g = _groups([6] * 10)
    x1 = rng.normal(size=g.size)
    x2 = x1 + 1e-6 * rng.normal(size=g.size)
    b = 0.3 * rng.normal(size=10)[g]
    eta = 0.5 + b + 0.6 * x1
    y = eta + 0.3 * rng.normal(size=g.size) if family == "gaussian" else \
        rng.poisson(np.exp(eta))
    df = pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g})
    fit, table = _sample(GLMM("y ~ x1 + x2 + (1 | g)", df, family=family))
    total = fit.draws["beta"].sum(axis=-1)
    assert abs(total.mean() - 0.6) < 0.25, total.mean()


# ------------------------------------ random slope without variation within clusters


@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_random_slope_constant_within_clusters(family):
    """t is a cluster-level value: (1 + t | g) puts a random slope on a column that does not
    vary within any cluster, so b_i's intercept and slope are told apart only through the
    prior. It must still sample."""
    rng = np.random.default_rng(6)
    g = _groups([5] * 8)
    t = rng.normal(size=8)[g]
    eta = 0.2 + 0.5 * t + 0.4 * rng.normal(size=8)[g]
    y = eta + 0.5 * rng.normal(size=g.size) if family == "gaussian" else \
        (rng.random(g.size) < 1 / (1 + np.exp(-eta))).astype(float)
    df = pd.DataFrame({"y": y, "t": t, "g": g})
    fit, table = _sample(GLMM("y ~ t + (1 + t | g)", df, family=family))
    assert fit.draws["D"].shape[-2:] == (2, 2)
