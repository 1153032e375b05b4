"""Prior and prior predictive draws (GLMM.sample_prior) against their exact distributions."""
import warnings

import numpy as np
import pytest
from scipy import stats

import jaxglmm
from jaxglmm import Flat, Gamma, Normal, Priors, Wishart

P_MIN = 1e-3  # KS p-value below which a fixed-seed draw is taken as the wrong distribution


def _model(q=1, family="gaussian", priors=None, N=6, m=5, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N), m)
    Z = np.column_stack([np.ones(N * m)] + [rng.normal(size=N * m) for _ in range(q - 1)])
    x = rng.normal(size=(N * m, 1))
    y = rng.normal(size=N * m) if family == "gaussian" else rng.integers(0, 2, N * m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jaxglmm.GLMM.from_arrays(y, Z, g, X=x, family=family, priors=priors)


def test_wishart_q1_is_the_gamma_of_the_precision():
    """For q = 1, Omega ~ Wishart(nu, 1/gamma) is Gamma(nu/2, rate gamma/2)."""
    model = _model(priors=Priors(omega=Wishart(3.0, 0.4), tau=Gamma(2.0, 0.5),
                                 beta=Normal(1.0, 2.0), mu=Normal(-1.0, 0.5)))
    prior = model.sample_prior(4000, seed=3).prior
    omega = 1.0 / prior["D"].values[0, :, 0, 0]
    assert stats.kstest(omega, stats.gamma(1.5, scale=1 / 0.2).cdf).pvalue > P_MIN
    # the check can fail: the rate gamma instead of gamma / 2 is rejected
    assert stats.kstest(omega, stats.gamma(1.5, scale=1 / 0.4).cdf).pvalue < P_MIN
    tau = prior["tau"].values[0]
    assert stats.kstest(tau, stats.gamma(2.0, scale=1 / 0.5).cdf).pvalue > P_MIN
    np.testing.assert_allclose(prior["sigma"].values[0], tau ** -0.5)
    beta = prior["beta"].values[0, :, 0]
    assert stats.kstest(beta, stats.norm(1.0, 2.0).cdf).pvalue > P_MIN
    mu = prior["mu"].values[0, :, 0]
    assert stats.kstest(mu, stats.norm(-1.0, 0.5).cdf).pvalue > P_MIN


def test_wishart_q3_moments_and_b_given_mu_and_D():
    gamma = np.array([0.5, 2.0, 4.0])
    model = _model(q=3, priors=Priors(omega=Wishart(5.0, tuple(gamma))))
    prior = model.sample_prior(6000, seed=4).prior
    D = prior["D"].values[0]
    omega = np.linalg.inv(D)
    S = np.diag(1 / gamma)
    mean, se = omega.mean(0), omega.std(0) / np.sqrt(len(omega))
    assert np.all(np.abs(mean - 5.0 * S) < 5 * se + 1e-12), (mean, 5.0 * S)
    var_diag = omega[:, range(3), range(3)].var(0)
    np.testing.assert_allclose(var_diag, 2 * 5.0 * np.diag(S) ** 2, rtol=0.15)
    # b_l = mu + L_D eps: whitened by each draw's D, every coordinate is N(0, 1)
    b = prior["b"].values[0]                                    # (S, N, q)
    mu = np.zeros((len(b), 3))
    mu[:, :] = prior["mu"].values[0]
    L = np.linalg.cholesky(D)
    white = np.linalg.solve(L[:, None], (b - mu[:, None, :])[..., None])[..., 0]
    assert stats.kstest(white.ravel(), stats.norm().cdf).pvalue > P_MIN


def test_random_hyperparameters_d_and_gamma_follow_their_gammas():
    model = _model(priors=Priors(tau=Gamma(1.0, Gamma(2.0, 4.0)),
                                 omega=Wishart(2.0, Gamma(3.0, 1.5))))
    prior = model.sample_prior(4000, seed=5).prior
    d = prior["d"].values[0]
    assert stats.kstest(d, stats.gamma(2.0, scale=1 / 4.0).cdf).pvalue > P_MIN
    g = prior["gamma"].values[0, :, 0]
    assert stats.kstest(g, stats.gamma(3.0, scale=1 / 1.5).cdf).pvalue > P_MIN
    # tau | d ~ Gamma(1, d): d tau is Exponential(1)
    assert stats.kstest(d * prior["tau"].values[0], stats.expon().cdf).pvalue > P_MIN


def test_prior_predictive_is_the_family_at_each_prior_draw():
    model = _model()
    idata = model.sample_prior(1500, seed=6)
    prior, y = idata.prior, idata.prior_predictive["y"].values[0]     # (S, n)
    a, t = model.arrays, model.arrays.terms[0]
    eta = (prior["beta"].values[0] @ a.X.T
           + np.einsum("snq,nq->sn", prior["b"].values[0][:, t.cluster], t.Z))
    resid = (y - eta) / prior["sigma"].values[0][:, None]
    assert stats.kstest(resid.ravel(), stats.norm().cdf).pvalue > P_MIN
    assert idata.observed_data["y"].shape == (a.y.shape[0],)
    assert idata.prior["b"].dims == ("chain", "draw", "group", "re_dim")
    bern = _model(family="bernoulli").sample_prior(50, seed=1)
    assert set(np.unique(bern.prior_predictive["y"].values)) <= {0, 1}
    assert "tau" not in bern.prior


def test_same_seed_same_draws_and_flat_priors_refused():
    model = _model()
    a, b = (model.sample_prior(20, seed=9).prior["D"].values for _ in range(2))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="priors.beta: flat"):
        _model(priors=Priors(beta=Flat())).sample_prior(10)
    with pytest.raises(ValueError, match="draws: must be an integer"):
        model.sample_prior(0)


def test_formula_model_prior_predictive_names_the_response():
    sleep = jaxglmm.datasets.load_sleepstudy()
    idata = jaxglmm.GLMM("Reaction ~ Days + (1 + Days | Subject)", sleep).sample_prior(
        100, seed=2)
    assert idata.prior_predictive["Reaction"].shape == (1, 100, 180)
    assert list(idata.prior["group"].values)[:2] == [308, 309]


def test_arviz_takes_the_prior_groups():
    import matplotlib
    matplotlib.use("Agg")
    import arviz as az
    import matplotlib.pyplot as plt

    sleep = jaxglmm.datasets.load_sleepstudy()
    idata = jaxglmm.GLMM("Reaction ~ Days + (1 + Days | Subject)", sleep).sample_prior(
        60, seed=1)
    pc = az.plot_ppc_dist(idata, group="prior_predictive", num_samples=10)
    assert "Reaction" in pc.viz["predictive_dist"].data_vars
    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one chain: ArviZ's shape warning
        table = az.summary(idata, group="prior", var_names=["sd"], kind="stats")
    assert list(table.index) == ["sd[Intercept]", "sd[Days]"]
