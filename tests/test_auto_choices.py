"""The documented automatic choices: centred vs non-centred b, dense vs diagonal mass matrix."""
import numpy as np
import pytest

import jaxglmm as jg
from jaxglmm.design import CENTRED_THRESHOLD, information_ratio


def _bernoulli(sizes, p=0.5, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(len(sizes)), sizes)
    y = np.zeros(g.size)
    y[rng.permutation(g.size)[: int(round(p * g.size))]] = 1.0   # pooled mean exactly p
    return y, g


@pytest.mark.parametrize("sizes,expected", [([4, 8, 12], 2.0), ([20, 20, 24], 5.0)])
def test_information_ratio_bernoulli_logit(sizes, expected):
    y, g = _bernoulli(sizes)
    model = jg.GLMM.from_arrays(y, np.ones_like(y), g, family="bernoulli")
    # w = p (1 - p) = 1/4 per observation, v = 1: median cluster size / 4
    assert information_ratio(model.arrays, model.spec.family) == pytest.approx(expected)
    assert model.spec.terms[0].centred == (expected >= CENTRED_THRESHOLD)


def test_information_ratio_poisson_and_slope_column():
    g = np.repeat(np.arange(3), 2)
    y = np.array([2.0, 4, 3, 3, 1, 5])              # mean 3
    t = np.array([0.0, 1, 0, 1, 0, 1])               # var(t) = 1/4
    model = jg.GLMM.from_arrays(y, np.column_stack([np.ones(6), t]), g, family="poisson")
    # intercept: 2 obs * w=3 * v=1 = 6; slope: sum t^2 = 1, * 3 * (1 / 0.25) = 12 -> min 6
    assert information_ratio(model.arrays, model.spec.family) == pytest.approx(6.0)
    assert model.spec.terms[0].centred
    assert not jg.GLMM.from_arrays(y, np.ones(6), g, family="poisson", centred=False).spec.terms[0].centred


def test_dense_mass_matrix_for_small_models_and_choice_recorded():
    y, g = _bernoulli([4] * 5)
    small = jg.GLMM.from_arrays(y, np.ones_like(y), g, family="bernoulli")
    fit = small.sample(chains=1, warmup=30, draws=10, progress=False)
    assert fit.info["mass_matrix"] == "dense" and fit.inverse_mass_matrix.shape == (1, 7, 7)
    assert fit.info["parametrisation"] == "non-centred (chosen by the data)"
    y, g = _bernoulli([4] * 120)
    big = jg.GLMM.from_arrays(y, np.ones_like(y), g, family="bernoulli")
    fit = big.sample(chains=1, warmup=30, draws=10, progress=False)
    assert fit.info["mass_matrix"] == "diagonal" and fit.inverse_mass_matrix.shape == (1, 122)
    # on request: dense over psi (mu and chol, 2 x 2), diagonal over the 120 z
    fit = big.sample(chains=1, warmup=30, draws=10, progress=False, mass_matrix="block")
    assert fit.info["mass_matrix"] == "block" and fit.inverse_mass_matrix.shape == (1, 124)
    fit = big.sample(chains=1, warmup=30, draws=10, progress=False, dense_mass=True)
    assert fit.info["mass_matrix"] == "dense"
