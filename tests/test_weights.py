"""Observation weights: each row's log likelihood multiplied by its weight (brms' weights(),
lme4's weights). An integer weight k must equal the row repeated k times, a weight 0 the row
left out, in every sampler's log density (joint, collapsed, one term collapsed, Laplace)."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from jax.flatten_util import ravel_pytree

import jaxglmm
from jaxglmm import Gamma, Normal, Priors, Wishart

PRIORS = Priors(beta=Normal(0.0, 3.0), mu=Normal(0.0, 5.0), tau=Gamma(2.0, 1.0),
                omega=Wishart(2.0, 1.0))
PRIORS_GLMM = Priors(beta=Normal(0.0, 3.0), mu=Normal(0.0, 5.0), omega=Wishart(2.0, 1.0))


def _data(family, seed=0, N=6, m=5):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N), m)
    x = rng.normal(size=N * m)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.7, N)[g]
    y = {"gaussian": eta + rng.normal(size=N * m),
         "bernoulli": rng.binomial(1, 1 / (1 + np.exp(-eta))),
         "poisson": rng.poisson(np.exp(eta))}[family]
    w = rng.integers(0, 4, N * m)
    w[0] = 2  # cluster 0 keeps rows
    return y, x, g, w


def _models(family, centred=None, priors=None):
    """(weighted model, the model with every row repeated w times)."""
    y, x, g, w = _data(family)
    priors = priors or (PRIORS if family == "gaussian" else PRIORS_GLMM)
    Z = np.ones(len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = jaxglmm.GLMM.from_arrays(y, Z, g, X=x[:, None], family=family,
                                            priors=priors, centred=centred, weights=w)
        rep = np.repeat(np.arange(len(y)), w)
        repeated = jaxglmm.GLMM.from_arrays(y[rep], Z[rep], g[rep], X=x[rep, None],
                                            family=family, priors=priors, centred=centred)
    return weighted, repeated


def _same_log_density(a, b, method, seed=3):
    template = a.initial_positions(seed, 1, method)[0]
    x, _ = ravel_pytree(template)
    with jax.enable_x64(True):
        la = float(a.problem(method, template).logdensity()(jnp.asarray(x)))
        lb = float(b.problem(method, template).logdensity()(jnp.asarray(x)))
    assert la == pytest.approx(lb, rel=1e-10, abs=1e-8), (la, lb)
    return la


@pytest.mark.parametrize("family,method,centred", [
    ("bernoulli", "joint", False), ("bernoulli", "joint", True),
    ("poisson", "joint", "laplace"),
    ("gaussian", "joint", False), ("gaussian", "collapsed", None),
])
def test_integer_weights_equal_repeated_rows(family, method, centred):
    weighted, repeated = _models(family, centred)
    _same_log_density(weighted, repeated, method)
    _same_log_density(weighted, repeated, method, seed=7)


def test_weights_with_one_of_two_terms_collapsed():
    rng = np.random.default_rng(2)
    n = 48
    df = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                       "g": np.repeat(list("abcdef"), 8), "h": np.tile(list("uvwx"), 12),
                       "w": rng.integers(0, 3, n)})
    df.loc[0, "w"] = 1
    priors = Priors(beta=Normal(0.0, 3.0), mu=Normal(0.0, 5.0), tau=Gamma(2.0, 1.0),
                    omega=Wishart(2.0, 1.0))
    formula = "y ~ x + (1 | g) + (1 | h)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = jaxglmm.GLMM(formula, df, priors=priors, weights="w")
        repeated = jaxglmm.GLMM(formula, df.loc[df.index.repeat(df["w"])].reset_index(
            drop=True), priors=priors)
    assert weighted.collapsed_terms("collapsed") == (0,)
    _same_log_density(weighted, repeated, "collapsed")
    _same_log_density(weighted, repeated, "joint")


def test_zero_weight_is_a_row_left_out_and_pointwise_loglik_is_weighted():
    y, x, g, w = _data("bernoulli")
    w = np.ones(len(y))
    w[3] = 0.0
    keep = np.arange(len(y)) != 3
    kw = dict(family="bernoulli", priors=PRIORS_GLMM)
    a = jaxglmm.GLMM.from_arrays(y, np.ones(len(y)), g, X=x[:, None], weights=w, **kw)
    b = jaxglmm.GLMM.from_arrays(y[keep], np.ones(keep.sum()), g[keep], X=x[keep, None], **kw)
    _same_log_density(a, b, "joint")
    w = np.where(np.arange(len(y)) % 2, 0.5, 2.0)
    c = jaxglmm.GLMM.from_arrays(y, np.ones(len(y)), g, X=x[:, None], weights=w, **kw)
    plain = jaxglmm.GLMM.from_arrays(y, np.ones(len(y)), g, X=x[:, None], **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = c.sample(chains=1, warmup=30, draws=10, seed=0, progress=False)
    plain_fit = jaxglmm.Fit(fit.draws, fit.sample_stats, plain.model, fit.settings, fit.info,
                            fit.end)
    ll = fit.to_arviz().log_likelihood["y"].values
    np.testing.assert_allclose(ll, w * plain_fit.to_arviz().log_likelihood["y"].values,
                               rtol=1e-12)
    assert "weights: w_ij in [0.5, 2]" in c.describe()


@pytest.mark.parametrize("weights,message", [
    (np.r_[-1.0, np.ones(29)], r"weights: row 0 has -1; weights must be >= 0"),
    (np.r_[np.nan, np.ones(29)], r"weights: contains NaN or inf, first at row 0"),
    (np.zeros(30), r"weights: all weights are 0"),
    (np.ones(29), r"weights: has 29 rows but y has 30"),
    (np.array(["a"] * 30, dtype=object), r"weights: must be numeric"),
])
def test_bad_weights_are_named(weights, message):
    y, x, g, _ = _data("gaussian")
    with pytest.raises(ValueError, match=message):
        jaxglmm.GLMM.from_arrays(y, np.ones(30), g, weights=weights)


def test_formula_weights_by_column_or_array_save_and_load(tmp_path):
    y, x, g, w = _data("gaussian")
    df = pd.DataFrame({"y": y, "x": x, "g": g, "w": w.astype(float)})
    df.loc[5, "x"] = np.nan
    with pytest.warns(UserWarning, match="dropped 1"):
        by_column = jaxglmm.GLMM("y ~ x + (1 | g)", df, weights="w", na_action="drop")
    np.testing.assert_array_equal(by_column.arrays.weights, np.delete(w, 5))
    with pytest.warns(UserWarning, match="dropped 1"):
        by_array = jaxglmm.GLMM("y ~ x + (1 | g)", df, weights=w, na_action="drop")
    np.testing.assert_array_equal(by_array.arrays.weights, np.delete(w, 5))
    with pytest.raises(ValueError, match="weights: must be a column name or one weight per "
                                         "row of data"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, weights=w[:4])
    with pytest.raises(ValueError, match="has no column 'nope'"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, weights="nope")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = by_array.sample(chains=1, warmup=30, draws=10, seed=1, progress=False)
        fit.save(tmp_path / "w.nc")
        loaded = jaxglmm.load(tmp_path / "w.nc")
    np.testing.assert_array_equal(loaded.model.arrays.weights, by_array.arrays.weights)
    assert loaded.model.design is not None  # parsed again with the saved weights
    more_a, more_b = fit.extend(5, progress=False), loaded.extend(5, progress=False)
    np.testing.assert_array_equal(more_a.draws["mu"], more_b.draws["mu"])
