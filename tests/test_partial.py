"""Partial collapse (jaxglmm.partial): one term of a gaussian model integrated out exactly.

The marginal density is checked through the Gaussian identity p(y, b_c | rest) =
p(y | rest) p(b_c | y, rest): the joint log posterior with b_c sampled centred, minus the
log density of b_c under the exact conditional, equals the partial log posterior at every
b_c; the exact draws of b_c have that conditional's mean and variance (the mode and the
inverse negative Hessian of the joint density in b_c). The posterior against the joint
sampler and an independent dense marginal is in test_several_terms.py.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxglmm as jg
from jaxglmm.density import log_posterior
from jaxglmm.partial import collapsed_term, draw_b_partial, log_posterior_partial, partial_data


def _models():
    rng = np.random.default_rng(4)
    n = 90
    s = rng.integers(0, 9, n)
    d = rng.integers(0, 4, n)
    t = rng.normal(size=n)
    x = rng.normal(2, 1, n)
    y = 1 + 0.5 * x + rng.normal(0, 1, 9)[s] + 0.3 * t * rng.normal(0, 1, 9)[s] \
        + rng.normal(0, 0.5, 4)[d] + rng.normal(0, 0.7, n)
    df = pd.DataFrame({"y": y, "x": x, "t": t, "s": s, "d": d})
    formula = "y ~ x + (1 + t | s) + (1 | d)"
    return jg.GLMM(formula, df, centred=True), jg.GLMM(formula, df, centred=False)


def test_collapsed_term_is_the_one_with_most_levels():
    centred, _ = _models()
    assert collapsed_term(centred.spec) == 0
    assert centred.collapsed_terms("collapsed") == (0,) and centred.collapsed_terms("joint") == ()
    assert centred.collapsed_terms() == (0,)  # auto: gaussian models collapse


@pytest.mark.parametrize("sampled", ["centred", "non-centred"])
def test_partial_density_is_the_joint_minus_the_exact_conditional(sampled):
    centred, noncentred = _models()
    other = centred if sampled == "centred" else noncentred  # how b|d is sampled
    spec = centred.spec
    data = centred.model_data()
    pdata = partial_data(data, spec, 0)
    base = other.initial_position(jax.random.key(2))
    rest = {k: v for k, v in base.items() if k not in ("z|s", "b|s")}
    partial = float(log_posterior_partial(rest, pdata, other.spec, 0))

    # the joint density of (rest, b|s) with b|s as the centred term of the same model
    spec_joint = spec.__class__(spec.family, spec.priors, spec.p,
                                (spec.terms[0],) + other.spec.terms[1:])

    def joint(b_s):
        return log_posterior(dict(rest, **{"b|s": b_s}), data, spec_joint)
    b0 = jnp.zeros((9, 2))
    g = jax.grad(joint)(b0).reshape(-1)
    H = jax.hessian(joint)(b0).reshape(18, 18)
    cov = np.linalg.inv(-np.asarray(H))
    mean = np.asarray(b0).reshape(-1) + cov @ np.asarray(g)
    rng = np.random.default_rng(0)
    for _ in range(3):
        b = mean + rng.normal(size=18)
        lc = jax.scipy.stats.multivariate_normal.logpdf(b, mean, cov)
        np.testing.assert_allclose(float(joint(jnp.asarray(b).reshape(9, 2))) - float(lc),
                                   partial, rtol=1e-9)

    keys = jax.random.split(jax.random.key(5), 4000)
    draws = jax.vmap(lambda k: draw_b_partial(k, rest, pdata, other.spec, 0)[0])(keys)
    draws = np.asarray(draws).reshape(4000, 18)
    se = np.sqrt(np.diag(cov) / 4000)
    assert np.all(np.abs(draws.mean(0) - mean) < 4.5 * se)
    np.testing.assert_allclose(draws.var(0), np.diag(cov), rtol=0.12)
    # the sampled term's b comes from the position unchanged
    b_d = draw_b_partial(keys[0], rest, pdata, other.spec, 0)[1]
    expect = rest["b|d"] if sampled == "centred" else None
    if expect is not None:
        np.testing.assert_array_equal(b_d, expect)


def test_partial_fit_records_and_draws_every_term():
    centred, _ = _models()
    fit = centred.sample(chains=2, warmup=100, draws=50, seed=0, progress=False)
    assert fit.info["method"] == "collapsed"
    assert fit.info["parametrisation"].startswith("b|s integrated out; centred d")
    assert fit.draws["b|s"].shape == (2, 50, 9, 2) and fit.draws["b|d"].shape == (2, 50, 4, 1)
    assert "z|s" not in centred.initial_positions(0, 1, "collapsed")[0]
    fit2 = fit.extend(10, progress=False)
    assert fit2.draws["b|s"].shape[1] == 60
    lean = centred.sample(chains=1, warmup=20, draws=5, seed=0, progress=False, keep_b=False)
    assert not any(k.startswith("b|") for k in lean.draws)
