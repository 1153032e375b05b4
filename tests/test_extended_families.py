"""Student-t and the zero-inflated Poisson and negative binomial: densities against scipy.stats
(t, and the mixtures built from poisson and nbinom), gradients against finite differences, the
family parameters' transforms, priors and draws, option errors, and the families end to end
(printed priors, loo's pointwise likelihood, prior draws, save/load, predict, command line),
with the posterior against an independent NumPyro model of the identical priors (slow)."""
import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.special
import scipy.stats

import jaxglmm
from jaxglmm import diagnostics
from jaxglmm.family_base import FamilyParameter

Z_CRIT = 4.0  # |posterior mean difference| / combined MCSE, over about 5 quantities per model
EXTENDED = ["student", "zero_inflated_poisson", "zero_inflated_negbinomial"]


def _nb_logpmf(y, mu, tau):
    return scipy.stats.nbinom.logpmf(y, tau, tau / (tau + mu))


def _reference(name, y, eta, tau, nu=None, zi=None, link="identity"):
    """log p(y | eta, tau, nu or zi) from scipy.stats."""
    if name == "student":
        mean = eta if link == "identity" else np.exp(eta)
        return scipy.stats.t.logpdf(y, nu, mean, 1 / np.sqrt(tau))
    mu = np.exp(eta)
    count = scipy.stats.poisson.logpmf(y, mu) if name == "zero_inflated_poisson" \
        else _nb_logpmf(y, mu, tau)
    # the mixture zi [y = 0] + (1 - zi) f(y), summed as probabilities
    return np.log(zi * (y == 0) + (1 - zi) * np.exp(count))


def _density(family, y, eta, tau, extra):
    return np.asarray(family.log_density(jnp.asarray(y), jnp.asarray(eta), jnp.asarray(tau),
                                         jnp.ones(len(y)), extra))


@pytest.mark.parametrize("link", ["identity", "log"])
@pytest.mark.parametrize("nu", [1.0, 2.5, 30.0, 1e5])
def test_student_log_density_matches_scipy(link, nu):
    rng = np.random.default_rng(int(nu))
    eta = rng.normal(0.5, 1.0, 60)
    tau = 2.3
    y = (eta if link == "identity" else np.exp(eta)) + rng.standard_t(nu, 60) / np.sqrt(tau)
    fam = jaxglmm.make_family("student", link)
    got = _density(fam, y, eta, tau, {"nu": jnp.asarray(nu)})
    np.testing.assert_allclose(got, _reference("student", y, eta, tau, nu=nu, link=link),
                               rtol=1e-9)


@pytest.mark.parametrize("name", ["zero_inflated_poisson", "zero_inflated_negbinomial"])
@pytest.mark.parametrize("zi", [0.0, 0.05, 0.6, 0.97])
def test_zero_inflated_log_density_matches_the_scipy_mixture(name, zi):
    rng = np.random.default_rng(7)
    eta = rng.normal(0.8, 1.0, 80)
    tau = 1.7
    y = rng.poisson(np.exp(eta)) * (rng.random(80) > 0.4).astype(float)
    fam = jaxglmm.make_family(name)
    got = _density(fam, y, eta, tau, {"zi": jnp.asarray(zi)})
    with np.errstate(divide="ignore"):
        want = _reference(name, y, eta, tau, zi=zi)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert np.any(y == 0) and np.any(y > 0)


def test_zero_inflation_zero_is_the_count_model():
    y = jnp.asarray([0.0, 0.0, 3.0, 7.0])
    eta = jnp.asarray([-2.0, 1.5, 0.3, 2.0])
    for zi_name, plain in (("zero_inflated_poisson", "poisson"),
                           ("zero_inflated_negbinomial", "negbinomial")):
        zi_fam, fam = jaxglmm.make_family(zi_name, zi=0.0), jaxglmm.make_family(plain)
        got = zi_fam.log_density(y, eta, 2.0, jnp.ones(4), {"zi": jnp.asarray(0.0)})
        np.testing.assert_allclose(got, fam.log_density(y, eta, 2.0, jnp.ones(4)), rtol=1e-14)
        grad = jax.grad(lambda e: jnp.sum(zi_fam.log_density(y, e, 2.0, 1.0,
                                                             {"zi": jnp.asarray(0.0)})))(eta)
        np.testing.assert_allclose(grad, jax.grad(lambda e: jnp.sum(
            fam.log_density(y, e, 2.0, 1.0)))(eta), rtol=1e-12)


def _central_difference(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("name", EXTENDED)
def test_gradients_equal_finite_differences(name):
    """d/d eta (each row), d/d tau and d/d nu or zi of the summed log density."""
    fam = jaxglmm.make_family(name)
    rng = np.random.default_rng(3)
    eta = rng.normal(0.5, 0.8, 12)
    if name == "student":
        y, param, value = eta + rng.standard_t(3, 12), "nu", 3.7
    else:
        y, param, value = rng.poisson(2.0, 12) * (rng.random(12) > 0.3), "zi", 0.35
    y = jnp.asarray(y, float)

    def total(eta, tau, v):
        return jnp.sum(fam.log_density(y, eta, tau, jnp.ones(12), {param: v}))

    g_eta, g_tau, g_v = jax.grad(total, argnums=(0, 1, 2))(jnp.asarray(eta), 1.9, value)
    for k in range(12):
        unit = np.eye(12)[k]
        fd = _central_difference(lambda h: float(total(jnp.asarray(eta + h * unit), 1.9, value)),
                                 0.0)
        np.testing.assert_allclose(g_eta[k], fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g_tau, _central_difference(
        lambda t: float(total(jnp.asarray(eta), t, value)), 1.9), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g_v, _central_difference(
        lambda v: float(total(jnp.asarray(eta), 1.9, v)), value), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------ family parameters


PARAMETERS = [FamilyParameter("nu", jaxglmm.Gamma(2.0, 0.1), lower=1.0),
              FamilyParameter("nu", jaxglmm.Gamma(0.7, 2.0), lower=1.0),
              FamilyParameter("zi", jaxglmm.Beta(1.0, 1.0), lower=0.0, upper=1.0),
              FamilyParameter("zi", jaxglmm.Beta(2.0, 7.0), lower=0.0, upper=1.0)]


def _truncated_gamma_logpdf(x, shape, rate, lower):
    g = scipy.stats.gamma(shape, scale=1 / rate)
    return g.logpdf(x) - g.logsf(lower)


@pytest.mark.parametrize("param", PARAMETERS, ids=lambda p: f"{p.name}-{p.prior}")
def test_parameter_transform_jacobian_and_prior(param):
    x = jnp.linspace(-3.0, 3.0, 7)
    value, log_jac = jax.vmap(param.natural)(x)
    np.testing.assert_allclose(jax.vmap(param.unconstrained)(value), x, rtol=1e-12, atol=1e-12)
    # the log-Jacobian is log |d value / dx| (jacfwd, a 1-d map)
    np.testing.assert_allclose(log_jac, np.log(np.abs(jax.vmap(jax.jacfwd(
        lambda t: param.natural(t)[0]))(x))), rtol=1e-12)
    got = jax.vmap(param.log_prior)(value)
    pri = param.prior
    if isinstance(pri, jaxglmm.Gamma):
        want = _truncated_gamma_logpdf(np.asarray(value), pri.shape, pri.rate, param.lower)
    else:
        want = scipy.stats.beta.logpdf(np.asarray(value), pri.a, pri.b)
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("param", PARAMETERS, ids=lambda p: f"{p.name}-{p.prior}")
def test_parameter_prior_draws_follow_the_prior(param):
    keys = jax.random.split(jax.random.key(5), 4000)
    draws = np.asarray(jax.jit(jax.vmap(lambda k: param.draw(k, jnp.float64)))(keys))
    pri = param.prior
    if isinstance(pri, jaxglmm.Gamma):
        g = scipy.stats.gamma(pri.shape, scale=1 / pri.rate)
        lo = g.cdf(param.lower)

        def cdf(x):
            return (g.cdf(x) - lo) / (1 - lo)
        assert draws.min() > param.lower
    else:
        cdf = scipy.stats.beta(pri.a, pri.b).cdf
        assert 0 < draws.min() and draws.max() < 1
    assert scipy.stats.kstest(draws, cdf).pvalue > 1e-3


@pytest.mark.parametrize("bad,message", [
    (0.5, r"nu: family 'student' needs a jaxglmm.Gamma prior, or a fixed number >= 1; got 0.5"),
    ("4", r"nu: family 'student' needs"),
    (np.inf, r"nu: family 'student' needs"),
    (jaxglmm.Beta(1, 1), r"nu: family 'student' needs a jaxglmm.Gamma prior"),
    (jaxglmm.Gamma(2.0, jaxglmm.Gamma(1, 1)), r"nu: the Gamma prior of family 'student' takes "
                                             r"numbers"),
])
def test_student_options_are_checked(bad, message):
    with pytest.raises(ValueError, match=message):
        jaxglmm.Student(nu=bad)


@pytest.mark.parametrize("cls", [jaxglmm.ZeroInflatedPoisson, jaxglmm.ZeroInflatedNegBinomial])
@pytest.mark.parametrize("bad", [1.0, -0.1, jaxglmm.Gamma(1, 1), None])
def test_zero_inflation_options_are_checked(cls, bad):
    with pytest.raises(ValueError, match=rf"zi: family '{cls.name}' needs a jaxglmm.Beta "
                                         r"prior, or a fixed number >= 0 and < 1"):
        cls(zi=bad)


def test_make_family_takes_options_and_refuses_unknown_ones():
    assert jaxglmm.make_family("student", nu=4).nu == 4.0
    assert jaxglmm.make_family("zero_inflated_poisson", zi=jaxglmm.Beta(1, 9)).zi == \
        jaxglmm.Beta(1.0, 9.0)
    with pytest.raises(ValueError, match="nu: family 'poisson' takes no such option"):
        jaxglmm.make_family("poisson", nu=4)
    with pytest.raises(ValueError, match="zi: family 'student' takes no such option; it takes nu"):
        jaxglmm.make_family("student", zi=0.1)
    with pytest.raises(ValueError, match="set options on the family object"):
        jaxglmm.make_family(jaxglmm.Student(), nu=3)


@pytest.mark.parametrize("bad", [-1.0, 2.5])
@pytest.mark.parametrize("name", ["zero_inflated_poisson", "zero_inflated_negbinomial"])
def test_zero_inflated_check_response_names_first_bad_row(name, bad):
    y = np.array([0.0, 3.0, 0.0, bad, 1.0])
    with pytest.raises(ValueError, match=rf"'{name}' needs non-negative whole counts; row 3"):
        jaxglmm.make_family(name).check_response(y, None)


def test_draws_have_the_stated_moments():
    n, eta, tau = 200_000, 0.7, 2.0
    mu = np.exp(eta)
    e = jnp.full(n, eta)
    key = jax.random.key(8)
    # Student-t with nu = 5: mean mu (identity link: eta), variance nu / (nu - 2) / tau
    y = np.asarray(jaxglmm.make_family("student").sample(key, e, tau, 1.0,
                                                          {"nu": jnp.asarray(5.0)}))
    var = 5.0 / 3.0 / tau
    assert abs(y.mean() - eta) < 5 * np.sqrt(var / n) and abs(y.var() / var - 1) < 0.03
    for name, var0 in (("zero_inflated_poisson", mu), ("zero_inflated_negbinomial",
                                                       mu + mu**2 / tau)):
        fam = jaxglmm.make_family(name)
        y = np.asarray(fam.sample(key, e, tau, 1.0, {"zi": jnp.asarray(0.3)}))
        p0 = np.exp(_reference(name, np.zeros(1), np.array([eta]), tau, zi=0.3))[0]
        assert abs(np.mean(y == 0) - p0) < 5 * np.sqrt(p0 * (1 - p0) / n), name
        mean = 0.7 * mu  # (1 - zi) mu; variance (1 - zi)(var0 + mu^2) - mean^2
        var = 0.7 * (var0 + mu**2) - mean**2
        assert abs(y.mean() - mean) < 5 * np.sqrt(var / n), name
        assert np.all(y == np.round(y)) and y.min() == 0
        np.testing.assert_allclose(fam.mean(jnp.asarray(eta), {"zi": 0.3}), mean, rtol=1e-14)


# ------------------------------------------------------------------- end to end


def simulated(family: str, seed: int = 0, N: int = 14, m: int = 8) -> pd.DataFrame:
    """eta = 0.6 + 0.4 x + b_g (b_g ~ N(0, 0.5^2)); student: y = eta + t_4 / sqrt(2);
    zero-inflated: 0 with probability 0.3, else Poisson(exp(eta)) or NB2(exp(eta), 3)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N), m)
    x = rng.normal(size=N * m)
    eta = 0.6 + 0.4 * x + rng.normal(0, 0.5, N)[g]
    if family == "student":
        y = eta + rng.standard_t(4.0, eta.size) / np.sqrt(2.0)
    else:
        mu = np.exp(eta)
        count = rng.poisson(mu) if family == "zero_inflated_poisson" \
            else rng.negative_binomial(3.0, 3.0 / (3.0 + mu))
        y = (count * (rng.random(eta.size) > 0.3)).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": [f"c{k}" for k in g]})


@pytest.fixture(scope="module", params=EXTENDED)
def fitted(request):
    family = request.param
    model = jaxglmm.GLMM("y ~ x + (1 | g)", simulated(family), family=family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxglmm.SamplingWarning)
        fit = model.sample(chains=2, warmup=200, draws=100, seed=1, progress=False)
    return family, model, fit


def _param_name(family):
    return "nu" if family == "student" else "zi"


def test_priors_and_parameters_are_printed(fitted):
    family, model, fit = fitted
    text = str(model)
    name = _param_name(family)
    prior = "nu ~ Gamma(2, 0.1), nu > 1 (default)" if family == "student" \
        else "zi ~ Beta(1, 1) (default)"
    assert prior in text, text
    tau = ", tau" if family != "zero_inflated_poisson" else ""
    assert f"psi = (beta, mu{tau}, {name}, Omega)" in text, text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxglmm.SamplingWarning)  # a short run
        assert name in fit.summary().index
    assert fit.draws[name].shape == (2, 100)


def test_pointwise_log_likelihood_equals_scipy(fitted):
    family, model, fit = fitted
    a, d = model.model.arrays, fit.draws
    t, = a.terms
    eta = d["beta"] @ a.X.T + d["b"][:, :, t.cluster, 0]
    tau = d["tau"][..., None] if "tau" in d else None
    name = _param_name(family)
    kwargs = {name: d[name][..., None]}
    with np.errstate(divide="ignore"):
        want = _reference(family, a.y, eta, tau, **kwargs)
    tree = fit.to_arviz(posterior_predictive=True)
    np.testing.assert_allclose(tree["log_likelihood"]["y"].values, want, rtol=1e-9)
    assert tree["posterior"][name].dims == ("chain", "draw")


def test_prior_draws_of_the_parameters_follow_their_priors(fitted):
    family, model, _ = fitted
    prior = model.sample_prior(draws=3000, seed=2)
    name = _param_name(family)
    draws = prior["prior"][name].values.ravel()
    if family == "student":
        g = scipy.stats.gamma(2.0, scale=10.0)
        assert draws.min() > 1.0
        assert scipy.stats.kstest(draws, lambda x: (g.cdf(x) - g.cdf(1)) / g.sf(1)).pvalue > 1e-3
    else:
        assert scipy.stats.kstest(draws, scipy.stats.uniform.cdf).pvalue > 1e-3
    y = prior["prior_predictive"]["y"].values[0]
    assert y.shape == (3000, len(model.model.arrays.y)) and not np.any(np.isnan(y))


def test_save_load_and_predict(fitted, tmp_path):
    family, model, fit = fitted
    path = tmp_path / f"{family}.nc"
    fit.save(path)
    loaded = jaxglmm.load(path)
    assert loaded.model.spec.family == fit.model.spec.family
    for k in fit.draws:
        np.testing.assert_array_equal(loaded.draws[k], fit.draws[k])
    new = model.model.data.iloc[:4]
    mean = loaded.predict(new, kind="mean")
    link = loaded.predict(new, kind="link")
    if family == "student":
        np.testing.assert_allclose(mean, link, rtol=1e-12)
    else:  # (1 - zi) exp(eta), draw by draw
        np.testing.assert_allclose(mean, (1 - fit.draws["zi"][..., None]) * np.exp(link),
                                   rtol=1e-12)
    y = loaded.predict(new, kind="response", seed=1)
    assert y.shape == mean.shape and np.all(np.isfinite(y))


def test_a_fixed_parameter_is_not_sampled_and_survives_save_and_load(tmp_path):
    df = simulated("student")
    model = jaxglmm.GLMM("y ~ x + (1 | g)", df, family=jaxglmm.Student(nu=4))
    assert "nu = 4 (fixed)" in str(model) and "psi = (beta, mu, tau, Omega)" in str(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxglmm.SamplingWarning)
        fit = model.sample(chains=1, warmup=100, draws=50, seed=1, progress=False)
    assert "nu" not in fit.draws
    a, d = model.model.arrays, fit.draws
    eta = d["beta"] @ a.X.T + d["b"][:, :, a.terms[0].cluster, 0]
    want = _reference("student", a.y, eta, d["tau"][..., None], nu=4.0)
    np.testing.assert_allclose(fit.to_arviz()["log_likelihood"]["y"].values, want, rtol=1e-9)
    fit.save(tmp_path / "fixed.nc")
    loaded = jaxglmm.load(tmp_path / "fixed.nc")
    assert loaded.model.spec.family == jaxglmm.Student(nu=4.0)
    zi_model = jaxglmm.GLMM("y ~ x + (1 | g)", simulated("zero_inflated_poisson"),
                            family=jaxglmm.ZeroInflatedPoisson(zi=jaxglmm.Beta(1, 9)))
    assert "zi ~ Beta(1, 9)\n" in str(zi_model) + "\n"


def test_bad_responses_are_refused_naming_the_row():
    df = simulated("zero_inflated_poisson")
    df.loc[5, "y"] = -1.0
    with pytest.raises(ValueError, match="'zero_inflated_poisson' needs non-negative whole "
                                         "counts; row 5"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, family="zero_inflated_poisson")
    df.loc[5, "y"] = 1.5
    with pytest.raises(ValueError, match="'zero_inflated_negbinomial' needs non-negative whole "
                                         "counts; row 5"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, family="zero_inflated_negbinomial")


@pytest.mark.parametrize("family", ["student", "zero_inflated_negbinomial"])
def test_command_line_fits_the_family(tmp_path, family):
    csv = tmp_path / "data.csv"
    simulated(family).to_csv(csv, index=False)
    env = dict(os.environ, JAXGLMM_PROGRESS="0")
    out = subprocess.run([sys.executable, "-m", "jaxglmm", "fit", str(csv),
                          "--formula", "y ~ x + (1 | g)", "--family", family,
                          "--chains", "2", "--warmup", "100", "--draws", "50"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert _param_name(family) in out.stdout and "beta[x]" in out.stdout


# --------------------------------------------------------- against NumPyro (independent)


def numpyro_draws(family, model, seed=2, chains=4, warmup=1000, draws=1000) -> dict:
    """The same model in NumPyro: beta, mu ~ Normal, tau ~ Gamma(c, d), omega = 1/D ~
    Gamma(nu_W/2, rate gamma/2) (the q = 1 Wishart), b_g ~ N(mu, D) non-centred; Student's
    nu ~ Gamma(2, 0.1) truncated to nu > 1 (numpyro's LeftTruncatedGamma), zi ~
    Beta(1, 1) and numpyro's ZeroInflatedDistribution. Draws (chains, draws) by name."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    a, pri = model.model.arrays, model.model.priors
    t, = a.terms
    X, y, cluster = a.X, a.y, t.cluster
    resolved = model.model.spec.terms[0].priors
    df, gamma = float(resolved.omega_df), float(resolved.gamma[0])

    def npm():
        beta = numpyro.sample("beta", dist.Normal(np.asarray(pri.beta.loc, float),
                                                  np.asarray(pri.beta.scale, float)).to_event(1))
        mu = numpyro.sample("mu", dist.Normal(float(np.ravel(pri.mu.loc)[0]),
                                              float(np.ravel(pri.mu.scale)[0])))
        omega = numpyro.sample("omega", dist.Gamma(df / 2, gamma / 2))
        sd = numpyro.deterministic("sd", 1 / jnp.sqrt(omega))
        z = numpyro.sample("z", dist.Normal(0, 1).expand([len(t.groups)]).to_event(1))
        eta = X @ beta + (mu + sd * z)[cluster]
        if family != "zero_inflated_poisson":
            tau = numpyro.sample("tau", dist.Gamma(pri.tau.shape, pri.tau.rate))
        if family == "student":
            nu = numpyro.sample("nu", dist.LeftTruncatedGamma(dist.Gamma(2.0, 0.1), low=1.0))
            numpyro.sample("y", dist.StudentT(nu, eta, 1 / jnp.sqrt(tau)), obs=y)
            return
        zi = numpyro.sample("zi", dist.Beta(1.0, 1.0))
        base = dist.Poisson(jnp.exp(eta)) if family == "zero_inflated_poisson" \
            else dist.NegativeBinomial2(jnp.exp(eta), tau)
        numpyro.sample("y", dist.ZeroInflatedDistribution(base, gate=zi), obs=y)

    mcmc = MCMC(NUTS(npm, target_accept_prob=0.9), num_warmup=warmup, num_samples=draws,
                num_chains=chains, chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.key(seed))
    s = mcmc.get_samples(group_by_chain=True)
    out = {"beta[x]": np.asarray(s["beta"][..., 0]), "mu[Intercept]": np.asarray(s["mu"]),
           "sd[Intercept]": np.asarray(s["sd"])}
    for name in ("tau", "nu", "zi"):
        if name in s:
            out[name] = np.asarray(s[name])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("family", EXTENDED)
def test_posterior_matches_numpyro(family):
    model = jaxglmm.GLMM("y ~ x + (1 | g)", simulated(family, seed=5), family=family)
    fit = model.sample(chains=4, warmup=1000, draws=1000, seed=3, progress=False)
    ours = fit.scalar_draws()
    theirs = numpyro_draws(family, model)
    report, bad = [], []
    for name, x in theirs.items():
        mine = ours[name]
        z = (mine.mean() - x.mean()) / np.hypot(diagnostics.mcse_mean(mine),
                                                diagnostics.mcse_mean(x))
        report.append(f"{name}: jaxglmm {mine.mean():.4f} numpyro {x.mean():.4f} z {z:+.2f}")
        bad += [name] if abs(z) >= Z_CRIT else []
    assert not bad, "\n".join(report)
    assert fit.num_divergences <= 2, fit.num_divergences


@pytest.mark.parametrize("family,omega", [("student", None), ("zero_inflated_poisson", None),
                                          ("zero_inflated_negbinomial", "lkj")])
def test_log_posterior_gradient_equals_finite_differences(family, omega):
    """The whole log posterior (likelihood, priors, the log nu / logit zi and LKJ transforms
    with their Jacobians) against central differences in every coordinate."""
    jax.config.update("jax_enable_x64", True)
    df = simulated(family, N=5, m=6)
    df["x2"] = np.random.default_rng(99).normal(size=len(df))
    priors = jaxglmm.Priors(omega=jaxglmm.LKJ(1.5)) if omega else None
    model = jaxglmm.GLMM("y ~ x + (1 + x2 | g)", df, family=family, priors=priors)
    position = model.initial_position(jax.random.key(1))
    from jax.flatten_util import ravel_pytree
    x, unravel = ravel_pytree(position)

    def f(v):
        return model.logdensity_fn(unravel(v))

    grad = np.asarray(jax.grad(f)(x))
    step = 1e-5
    eye = np.eye(x.size)
    fd = np.array([(float(f(x + step * e)) - float(f(x - step * e))) / (2 * step) for e in eye])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5 * (1 + np.abs(grad).max()))
    assert any(k.startswith(("log_nu", "logit_zi")) for k in position)
