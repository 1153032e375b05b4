"""Each family's log density and inverse link against scipy.stats, stability at extreme eta,
and the response checks (DESIGN.md section 8: each density piece equals scipy.stats)."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from jaxglmm import make_family
from jaxglmm.family_registry import FAMILIES

# inverse links computed in numpy/scipy, independently of jaxglmm.families.INVERSE_LINKS
# scipy's oracle forms 1 - p from p, so it is only accurate where 1 - p is not tiny: random
# eta stay in these ranges; the tails are checked against closed forms further down.
ETA_RANGE = {"logit": (-3.0, 3.0), "probit": (-2.5, 2.5), "cloglog": (-3.0, 1.2)}

NUMPY_INVERSE_LINKS = {
    "identity": lambda eta: eta,
    "log": np.exp,
    "logit": scipy.special.expit,
    "probit": scipy.stats.norm.cdf,
    "cloglog": lambda eta: -np.expm1(-np.exp(eta)),
    "inverse": lambda eta: 1.0 / eta,
}

FAMILY_LINKS = [
    ("gaussian", "identity"), ("gaussian", "log"),
    ("bernoulli", "logit"), ("bernoulli", "probit"), ("bernoulli", "cloglog"),
    ("binomial", "logit"), ("binomial", "probit"), ("binomial", "cloglog"),
    ("poisson", "log"), ("negbinomial", "log"), ("gamma", "log"), ("gamma", "inverse"),
    ("beta", "logit"), ("beta", "probit"), ("beta", "cloglog"),
    ("student", "identity"), ("student", "log"), ("zero_inflated_poisson", "log"),
    ("zero_inflated_negbinomial", "log"),
]
NU, ZI = 4.0, 0.3  # the extended families' parameters in the checks below
BINARY_LINKS = ["logit", "probit", "cloglog"]


def _extra(family):
    """The family's parameters besides tau at NU and ZI (None without)."""
    values = {"nu": NU, "zi": ZI}
    return {p.name: jnp.asarray(values[p.name]) for p in family.parameters()} or None


def _log_density(family, y, eta, tau=1.0, trials=None):
    trials = np.ones_like(y) if trials is None else trials
    return np.asarray(family.log_density(jnp.asarray(y), jnp.asarray(eta), jnp.asarray(tau),
                                         jnp.asarray(trials), _extra(family)))


def test_every_registered_family_is_covered():
    covered = {name for name, _ in FAMILY_LINKS}
    assert covered == set(FAMILIES)
    for name in FAMILIES:
        assert {link for fam, link in FAMILY_LINKS if fam == name} == set(FAMILIES[name].links)


@pytest.mark.parametrize("name,link", FAMILY_LINKS)
def test_default_link_is_canonical(name, link):
    canonical = {"gaussian": "identity", "bernoulli": "logit", "binomial": "logit",
                 "poisson": "log", "negbinomial": "log", "gamma": "log",  # gamma: brms' default
                 "beta": "logit", "student": "identity", "zero_inflated_poisson": "log",
                 "zero_inflated_negbinomial": "log"}
    assert make_family(name).link == canonical[name]


@pytest.mark.parametrize("name,link", FAMILY_LINKS)
def test_inverse_link_matches_numpy(name, link):
    eta = np.random.default_rng(0).normal(scale=3.0, size=50)
    eta = np.concatenate([eta, [-30.0, -5.0, 0.0, 5.0, 30.0]])
    got = np.asarray(make_family(name, link).inverse_link(jnp.asarray(eta)))
    np.testing.assert_allclose(got, NUMPY_INVERSE_LINKS[link](eta), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("link", ["identity", "log"])
@pytest.mark.parametrize("tau", [0.3, 1.0, 7.5])
def test_gaussian_log_density_matches_scipy(link, tau):
    rng = np.random.default_rng(1)
    eta = rng.normal(size=40)
    y = NUMPY_INVERSE_LINKS[link](eta) + rng.normal(size=40)
    got = _log_density(make_family("gaussian", link), y, eta, tau)
    want = scipy.stats.norm.logpdf(y, loc=NUMPY_INVERSE_LINKS[link](eta), scale=tau**-0.5)
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("link", BINARY_LINKS)
def test_bernoulli_log_density_matches_scipy(link):
    rng = np.random.default_rng(2)
    lo, hi = ETA_RANGE[link]
    eta = np.concatenate([rng.uniform(lo, hi, size=60), [lo, 0.0, hi] * 2])
    y = np.concatenate([rng.integers(0, 2, 60), [0] * 3 + [1] * 3]).astype(float)
    got = _log_density(make_family("bernoulli", link), y, eta)
    want = scipy.stats.bernoulli.logpmf(y, NUMPY_INVERSE_LINKS[link](eta))
    # scipy forms 1 - p, losing ~1e-16 absolutely: hence the atol
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("link", BINARY_LINKS)
def test_binomial_log_density_matches_scipy(link):
    rng = np.random.default_rng(3)
    n = 80
    eta = rng.uniform(*ETA_RANGE[link], size=n)
    trials = rng.integers(1, 12, n).astype(float)
    y = np.floor(rng.uniform(size=n) * (trials + 1)).astype(float)
    y[:5] = 0.0            # all failures
    y[5:10] = trials[5:10]  # all successes
    got = _log_density(make_family("binomial", link), y, eta, trials=trials)
    want = scipy.stats.binom.logpmf(y, trials, NUMPY_INVERSE_LINKS[link](eta))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)  # atol: see bernoulli


def test_binomial_with_one_trial_equals_bernoulli():
    rng = np.random.default_rng(4)
    eta = rng.normal(size=30)
    y = rng.integers(0, 2, 30).astype(float)
    for link in BINARY_LINKS:
        np.testing.assert_allclose(
            _log_density(make_family("binomial", link), y, eta, trials=np.ones(30)),
            _log_density(make_family("bernoulli", link), y, eta), rtol=1e-12)


def test_poisson_log_density_matches_scipy():
    rng = np.random.default_rng(5)
    eta = rng.normal(scale=1.5, size=60)
    y = rng.poisson(np.exp(eta)).astype(float)
    y[:3] = [0.0, 0.0, 40.0]
    got = _log_density(make_family("poisson"), y, eta)
    want = scipy.stats.poisson.logpmf(y, np.exp(eta))
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("tau", [0.4, 2.7, 60.0])
def test_negbinomial_log_density_matches_scipy(tau):
    """NB2 with mean exp(eta) and size tau: scipy's nbinom(n = tau, p = tau / (tau + mu))."""
    rng = np.random.default_rng(6)
    eta = rng.normal(scale=1.5, size=60)
    mu = np.exp(eta)
    y = rng.negative_binomial(tau, tau / (tau + mu)).astype(float)
    y[:3] = [0.0, 0.0, 80.0]
    got = _log_density(make_family("negbinomial"), y, eta, tau)
    want = scipy.stats.nbinom.logpmf(y, tau, tau / (tau + mu))
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_negbinomial_tends_to_poisson():
    rng = np.random.default_rng(7)
    eta = rng.normal(size=20)
    y = rng.poisson(np.exp(eta)).astype(float)
    # at tau = 1e7 the NB log density is the Poisson's to O(mu^2 / tau) ~ 1e-6 and the
    # rounding of lgamma(y + tau) - lgamma(tau) (~1e-8)
    np.testing.assert_allclose(_log_density(make_family("negbinomial"), y, eta, 1e7),
                               _log_density(make_family("poisson"), y, eta), atol=1e-5)
    got = _log_density(make_family("negbinomial"), y, eta, 1e7)
    mu = np.exp(eta)
    exact = (y * -np.log1p(1e7 / mu) - 1e7 * np.log1p(mu / 1e7)
             + scipy.special.gammaln(y + 1e7) - scipy.special.gammaln(1e7)
             - scipy.special.gammaln(y + 1))
    np.testing.assert_allclose(got, exact, atol=1e-7)


@pytest.mark.parametrize("link", ["log", "inverse"])
@pytest.mark.parametrize("tau", [0.5, 3.0, 40.0])
def test_gamma_log_density_matches_scipy(link, tau):
    """Gamma with mean g^-1(eta) and shape tau: scipy's gamma(a = tau, scale = mu / tau)."""
    rng = np.random.default_rng(8)
    eta = rng.normal(size=50) if link == "log" else rng.uniform(0.2, 3.0, size=50)
    mu = NUMPY_INVERSE_LINKS[link](eta)
    y = rng.gamma(tau, mu / tau)
    got = _log_density(make_family("gamma", link), y, eta, tau)
    want = scipy.stats.gamma.logpdf(y, tau, scale=mu / tau)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_gamma_inverse_link_is_minus_infinity_without_a_positive_mean():
    fam = make_family("gamma", "inverse")
    eta = jnp.array([-2.0, 0.0, 0.5])
    y = jnp.array([1.0, 1.0, 1.0])
    value = np.asarray(fam.log_density(y, eta, 2.0, jnp.ones(3)))
    assert value[0] == value[1] == -np.inf and np.isfinite(value[2])
    grad = jax.grad(lambda e: jnp.sum(jnp.where(e > 0, fam.log_density(y, e, 2.0, 1.0), 0.0)))(eta)
    assert np.all(np.isfinite(np.asarray(grad)))  # no NaN leaks from the dropped branch


@pytest.mark.parametrize("name,link,tau", [("negbinomial", "log", 2.5), ("gamma", "log", 4.0),
                                           ("gamma", "inverse", 4.0)])
def test_new_family_draws_have_the_stated_mean_and_variance(name, link, tau):
    """Posterior predictive draws: mean mu and variance mu + mu^2/tau (negbinomial) or
    mu^2/tau (gamma), within 5 standard errors over 200,000 draws."""
    fam = make_family(name, link)
    eta = 0.8 if link != "inverse" else 0.4
    mu = float(NUMPY_INVERSE_LINKS[link](eta))
    n = 200_000
    y = np.asarray(fam.sample(jax.random.key(3), jnp.full(n, eta), jnp.asarray(tau), jnp.ones(n)))
    var = mu + mu**2 / tau if name == "negbinomial" else mu**2 / tau
    assert abs(y.mean() - mu) < 5 * np.sqrt(var / n)
    assert abs(y.var() / var - 1) < 0.03
    if name == "negbinomial":
        assert np.all(y == np.round(y)) and y.min() >= 0
    else:
        assert y.min() > 0


# ------------------------------------------------------------------------- extreme eta


def _extreme_case(name):
    """y and trials covering the support's edges, each against eta = -30 and +30."""
    eta = np.repeat([-30.0, 30.0], 2)
    if name == "binomial":
        return np.array([0.0, 5.0] * 2), eta, np.full(4, 5.0)
    if name == "poisson":
        return np.array([0.0, 3.0] * 2), eta, None
    if name in ("gaussian", "student"):
        return np.array([-1.0, 2.0] * 2), eta, None
    if name in ("negbinomial", "zero_inflated_poisson", "zero_inflated_negbinomial"):
        return np.array([0.0, 3.0] * 2), eta, None
    if name == "gamma":
        return np.array([0.5, 2.0] * 2), eta, None
    if name == "beta":
        return np.array([0.05, 0.9] * 2), eta, None
    return np.array([0.0, 1.0] * 2), eta, None


def _in_mean_support(link, eta):
    """The inverse link has a positive mean only for eta > 0; elsewhere the log density is
    -inf by design."""
    return np.asarray(eta) > 0 if link == "inverse" else np.ones(np.shape(eta), bool)


@pytest.mark.parametrize("name,link", FAMILY_LINKS)
def test_log_density_at_eta_30_is_finite_and_matches_scipy(name, link):
    family = make_family(name, link)
    y, eta, trials = _extreme_case(name)
    got = _log_density(family, y, eta, 2.0, trials)
    inside = _in_mean_support(link, eta)
    assert np.all(np.isfinite(got[inside])) and np.all(got[~inside] == -np.inf), got
    mean = NUMPY_INVERSE_LINKS[link](eta)
    with np.errstate(invalid="ignore", divide="ignore"):  # nb: for the count families only
        nb = (scipy.special.gammaln(y + 2.0) - scipy.special.gammaln(2.0)
              - scipy.special.gammaln(y + 1) - 2.0 * np.log1p(mean / 2.0)
              - y * np.log1p(2.0 / mean))  # scipy's nbinom forms 1 - p: 4e-6 off at e^-30
    if name == "gaussian":
        want = scipy.stats.norm.logpdf(y, mean, 2.0**-0.5)
    elif name == "student":
        want = scipy.stats.t.logpdf(y, NU, mean, 2.0**-0.5)
    elif name == "poisson":
        want = scipy.stats.poisson.logpmf(y, mean)
    elif name == "negbinomial":
        want = nb
    elif name.startswith("zero_inflated"):
        count = scipy.stats.poisson.logpmf(y, mean) if name.endswith("poisson") else nb
        want = np.where(y == 0, np.logaddexp(np.log(ZI), np.log1p(-ZI) + count),
                        np.log1p(-ZI) + count)
    elif name == "gamma":
        want = np.where(inside, scipy.stats.gamma.logpdf(y, 2.0, scale=np.abs(mean) / 2.0),
                        -np.inf)
    elif name == "beta":
        # shapes a = 2 mu, b = 2 (1 - mu) from log mu, log(1 - mu) exact in the tails; scipy's
        # beta.logpdf where b is a float, else (cloglog at eta = 30: b = 2 exp(-exp(30))
        # underflows) lgamma(b) = log(1/b) + O(b): the closed form in log b
        log_mu, log_1m = {
            "logit": (scipy.special.log_expit(eta), scipy.special.log_expit(-eta)),
            "probit": (scipy.special.log_ndtr(eta), scipy.special.log_ndtr(-eta)),
            "cloglog": (np.log(-np.expm1(-np.exp(eta))), -np.exp(eta))}[link]
        a, b = 2.0 * np.exp(log_mu), 2.0 * np.exp(log_1m)
        with np.errstate(invalid="ignore"):
            want = scipy.stats.beta.logpdf(y, a, b)
        tiny = b == 0
        want[tiny] = (np.log(2.0) + log_1m[tiny]  # lgamma(2) = 0 for tau and a
                      + (a[tiny] - 1) * np.log(y[tiny]) - np.log1p(-y[tiny]))
    else:
        # log P(y) in closed form with the stable tails of scipy (log_expit, log_ndtr) and
        # the exact cloglog tails log(1 - p) = -exp(eta), log p = log(-expm1(-exp(eta))).
        n = np.ones_like(y) if trials is None else trials
        if link == "logit":
            log_p, log_q = scipy.special.log_expit(eta), scipy.special.log_expit(-eta)
        elif link == "probit":
            log_p, log_q = scipy.special.log_ndtr(eta), scipy.special.log_ndtr(-eta)
        else:
            log_p, log_q = np.log(-np.expm1(-np.exp(eta))), -np.exp(eta)
        log_choose = (scipy.special.gammaln(n + 1) - scipy.special.gammaln(y + 1)
                      - scipy.special.gammaln(n - y + 1))
        want = log_choose + y * log_p + np.where(n - y > 0, (n - y) * log_q, 0.0)
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("name,link", FAMILY_LINKS)
@pytest.mark.parametrize("eta0", [-50.0, 50.0])
def test_gradient_wrt_eta_is_finite_at_eta_50(name, link, eta0):
    family = make_family(name, link)
    y, _, trials = _extreme_case(name)
    trials = jnp.ones(4) if trials is None else jnp.asarray(trials)
    extra = _extra(family)
    grad = jax.grad(lambda e: jnp.sum(family.log_density(jnp.asarray(y), e, 2.0, trials,
                                                         extra)))(jnp.full(4, eta0))
    assert np.all(np.isfinite(np.asarray(grad))), grad
    value = np.asarray(family.log_density(jnp.asarray(y), jnp.full(4, eta0), 2.0, trials,
                                          extra))
    if _in_mean_support(link, eta0):
        assert np.all(np.isfinite(value)), value
    else:
        assert np.all(value == -np.inf), value


@pytest.mark.parametrize("eta0", [-40.0, -200.0, -800.0])
def test_cloglog_is_stable_for_very_negative_eta(eta0):
    """p = 1 - exp(-exp(eta)) ~ exp(eta) as eta -> -inf: log p ~ eta, log(1 - p) ~ -exp(eta).
    The module promises stable forms on the whole real line; exp(eta) underflows below
    eta ~ -745 and log(-expm1(-0)) = -inf, with a NaN gradient that leaks into y = 0 rows
    through jnp.where."""
    e = np.exp(eta0)
    for name in ("bernoulli", "binomial"):
        family = make_family(name, "cloglog")
        y = jnp.array([1.0, 0.0])
        trials = jnp.ones(2)
        got = np.asarray(family.log_density(y, jnp.full(2, eta0), 1.0, trials))
        np.testing.assert_allclose(got, [eta0 - e / 2, -e], rtol=1e-12, atol=1e-300)
        grad = jax.vmap(jax.grad(lambda eta, yy: family.log_density(yy, eta, 1.0, 1.0)))(
            jnp.full(2, eta0), y)
        # d/deta log p = e exp(-e) / (1 - exp(-e)) ~ 1,  d/deta log(1 - p) = -e
        np.testing.assert_allclose(np.asarray(grad), [1.0, -e], rtol=1e-10, atol=1e-300)


ETA_FAR = [-1e4, -800.0, -710.0, -50.0, 0.0, 50.0, 710.0, 800.0, 1e4]


def _far_rows(name):
    """(y, trials) rows covering the support's edges and its middle."""
    if name == "binomial":
        return np.array([0.0, 5.0, 2.0]), np.full(3, 5.0)
    if name == "poisson":
        return np.array([0.0, 3.0]), np.ones(2)
    if name in ("gaussian", "student"):
        return np.array([-1.0, 2.0]), np.ones(2)
    if name in ("negbinomial", "zero_inflated_poisson", "zero_inflated_negbinomial"):
        return np.array([0.0, 3.0, 40.0]), np.ones(3)
    if name == "gamma":
        return np.array([0.5, 2.0]), np.ones(2)
    if name == "beta":
        return np.array([0.05, 0.5, 0.95]), np.ones(3)
    return np.array([0.0, 1.0]), np.ones(2)


def _representable(name, link, y, n, eta):
    """Whether log p(y | eta) is a float64 number: it is below -1.8e308 only where a term
    -exp(eta) with eta > 709.78 enters (log and cloglog links; for cloglog only the failures'
    log(1 - p) = -exp(eta))."""
    if name in ("negbinomial", "zero_inflated_negbinomial"):  # log(tau + mu) grows like eta:
        return True  # finite on the whole line
    if name == "zero_inflated_poisson" and y == 0:  # log(zi + (1 - zi) exp(-mu)) >= log zi
        return True
    if name == "gamma":  # -tau y / mu: -tau y exp(-eta) (log), -tau y eta (inverse)
        return eta > 0 if link == "inverse" else eta > -709.78
    if name == "beta":  # about log(tau (1 - mu)) or log(tau mu): -|eta| (logit), -eta^2/2
        if link == "logit":  # (probit), -exp(eta) (cloglog's 1 - mu) and eta (its mu)
            return True
        if link == "probit":
            return abs(eta) < 1.8e154
        return eta <= 709.78
    if eta <= 709.78:
        return True
    if link == "log":
        return False
    return not (link == "cloglog" and n - y > 0)


@pytest.mark.parametrize("name,link", FAMILY_LINKS)
def test_value_and_gradient_finite_wherever_representable_up_to_eta_1e4(name, link):
    """Per row and eta far out: the log density is finite wherever its true value is a
    float64 number, -inf where it is not (never NaN or +inf), and its gradient is finite
    wherever the value is. (cloglog with y = 1 at eta > 710 had a NaN gradient: jnp.where
    passed 0 * inf from the unused branch log(1 - p) = -exp(eta).)"""
    family = make_family(name, link)
    y, n = _far_rows(name)

    extra = _extra(family)

    def one(e, yy, nn):
        return family.log_density(yy, e, 2.0, nn, extra)

    for eta in ETA_FAR:
        e = jnp.full(y.shape, eta)
        value = np.asarray(jax.vmap(one)(e, jnp.asarray(y), jnp.asarray(n)))
        grad = np.asarray(jax.vmap(jax.grad(one))(e, jnp.asarray(y), jnp.asarray(n)))
        for k in range(y.size):
            where = f"{name}-{link} y={y[k]} n={n[k]} eta={eta}: value {value[k]}, " \
                    f"gradient {grad[k]}"
            if _representable(name, link, y[k], n[k], eta):
                assert np.isfinite(value[k]) and np.isfinite(grad[k]), where
            else:
                assert value[k] == -np.inf, where


# --------------------------------------------------------------------- make_family


def test_make_family_rejects_unknown_family():
    with pytest.raises(ValueError, match="'negbin'"):
        make_family("negbin")


@pytest.mark.parametrize("name,bad_link", [("gaussian", "logit"), ("bernoulli", "log"),
                                           ("binomial", "identity"), ("poisson", "probit"),
                                           ("poisson", "sqrtx")])
def test_make_family_rejects_unknown_link(name, bad_link):
    with pytest.raises(ValueError, match=f"'{bad_link}'"):
        make_family(name, bad_link)


def test_make_family_accepts_object_and_rejects_disagreeing_link():
    fam = make_family("binomial", "probit")
    assert make_family(fam) is fam
    assert make_family("Poisson").name == "poisson"
    with pytest.raises(ValueError, match="'logit'"):
        make_family(fam, "logit")


# ------------------------------------------------------------------ check_response


def _row_message(row):
    return re.compile(rf"\brow {row}\b")  # "row 3", not "row 30"


@pytest.mark.parametrize("bad", [2.0, -1.0, 0.5])
def test_bernoulli_check_response_names_first_bad_row(bad):
    y = np.array([0.0, 1.0, 1.0, bad, 0.0, bad])
    with pytest.raises(ValueError, match=_row_message(3)):
        make_family("bernoulli").check_response(y, None)
    make_family("bernoulli").check_response(np.array([0.0, 1.0, 1.0]), None)


@pytest.mark.parametrize("bad", [-1.0, 2.5])
def test_poisson_check_response_names_first_bad_row(bad):
    y = np.array([0.0, 3.0, bad, 7.0, bad])
    with pytest.raises(ValueError, match=_row_message(2)):
        make_family("poisson").check_response(y, None)
    make_family("poisson").check_response(np.array([0.0, 3.0, 100.0]), None)


def test_binomial_check_response_names_first_bad_row():
    fam = make_family("binomial")
    trials = np.array([3.0, 3.0, 3.0, 3.0, 3.0])
    with pytest.raises(ValueError, match=_row_message(1)):
        fam.check_response(np.array([0.0, 4.0, 3.0, 5.0, 1.0]), trials)  # y > trials
    with pytest.raises(ValueError, match=_row_message(4)):
        fam.check_response(np.array([0.0, 1.0, 3.0, 2.0, -1.0]), trials)  # y < 0
    with pytest.raises(ValueError, match=_row_message(2)):
        fam.check_response(np.zeros(5), np.array([3.0, 1.0, 0.0, 2.0, 0.0]))  # trials < 1
    with pytest.raises(ValueError, match=_row_message(0)):
        fam.check_response(np.zeros(5), np.array([1.5, 1.0, 2.0, 2.0, 2.0]))  # not whole
    with pytest.raises(ValueError, match="trials"):
        fam.check_response(np.zeros(5), None)
    fam.check_response(np.array([0.0, 1.0, 3.0, 2.0, 3.0]), trials)


def test_what_each_family_knows_besides_its_density():
    """Support type, exact collapse, data scale, working weight and text live on the family."""
    y01, ones = np.array([0.0, 1.0, 1.0, 1.0]), np.ones(4)
    p = 0.75
    cases = {  # name, link -> (discrete, collapsible, weight of the first row, v)
        ("gaussian", "identity"): (False, True, 1 / np.var(y01), np.var(y01) / 2),
        ("gaussian", "log"): (False, False, 1 / np.var(y01), np.var(y01) / 2),
        ("bernoulli", "logit"): (True, False, p * (1 - p), 1.0),
        ("bernoulli", "probit"): (True, False, scipy.stats.norm.pdf(scipy.stats.norm.ppf(p)) ** 2
                                  / (p * (1 - p)), 1.0),
        ("bernoulli", "cloglog"): (True, False, np.log1p(-p) ** 2 * (1 - p) / p, 1.0),
        ("binomial", "logit"): (True, False, p * (1 - p), 1.0),
        ("poisson", "log"): (True, False, np.mean(y01), 1.0),
    }
    for (name, link), (discrete, collapsible, w0, v) in cases.items():
        fam = make_family(name, link)
        assert fam.discrete is discrete and fam.collapsible is collapsible, (name, link)
        w, v_got = fam.working_weight(y01, ones)
        np.testing.assert_allclose([w[0], v_got], [w0, v], rtol=1e-12, err_msg=f"{name} {link}")
        s, m = fam.data_scale(np.array([1.0, 3.0]))
        assert (s, m) == ((1.0, 2.0) if collapsible else (1.0, 0.0)), (name, link)
        assert "mu_text" in fam.distribution_text("mu_text")
    assert {n for n, cls in FAMILIES.items() if cls().discrete} == {
        "bernoulli", "binomial", "poisson", "negbinomial", "zero_inflated_poisson",
        "zero_inflated_negbinomial"}
    assert {n for n, cls in FAMILIES.items() if cls.has_dispersion} == {
        "gaussian", "negbinomial", "gamma", "beta", "student", "zero_inflated_negbinomial"}
    assert not make_family("student").collapsible  # a gaussian subclass, but not gaussian


def test_dispersion_hooks():
    """A family with a dispersion owns tau's default prior, its starting value and what is
    reported beside it; the gaussian's are the seed's Gamma(1, 0.005) on standardised y,
    log(1 / var(y)) and sigma = 1 / sqrt(tau)."""
    y = np.array([1.0, 4.0, 2.0, 9.0])
    for name, cls in FAMILIES.items():
        fam = cls()
        if not fam.has_dispersion:
            assert fam.dispersion_draws(jnp.asarray(2.0)) == {}
            continue
        c, d = fam.tau_prior(y)
        assert c > 0 and d > 0 and np.isfinite(fam.log_tau_start(y)), name
    gauss = make_family("gaussian")
    assert gauss.tau_prior(y) == (1.0, 0.005 * np.std(y) ** 2)
    assert make_family("gaussian", "log").tau_prior(y) == (1.0, 0.005)
    np.testing.assert_allclose(gauss.log_tau_start(y), -np.log(np.var(y)), rtol=1e-14)
    np.testing.assert_allclose(float(gauss.dispersion_draws(jnp.asarray(4.0))["sigma"]), 0.5)


@pytest.mark.parametrize("bad", [-1.0, 2.5, np.nan])
def test_negbinomial_check_response_names_first_bad_row(bad):
    y = np.array([0.0, 3.0, bad, 1.0, bad])
    with pytest.raises(ValueError, match=r"'negbinomial' needs non-negative whole counts; "
                                         r"row 2 has"):
        make_family("negbinomial").check_response(y, None)


@pytest.mark.parametrize("bad", [0.0, -1.5, np.nan])
def test_gamma_check_response_names_first_bad_row(bad):
    y = np.array([0.3, 3.0, 1.0, bad, bad])
    with pytest.raises(ValueError, match=r"'gamma' needs positive responses \(y > 0\); row 3"):
        make_family("gamma").check_response(y, None)
    make_family("gamma", "inverse").check_response(np.array([0.1, 5.0]), None)


def test_new_families_default_tau_priors_are_written_from_the_data():
    y = np.array([0.0, 2.0, 5.0, 1.0, 12.0])
    c, d = make_family("negbinomial").tau_prior(y)
    assert (c, d) == (1.0, 0.1 / np.mean(y))  # exponential, mean 10 mean(y)
    yg = np.array([0.5, 1.5, 2.0, 4.0])
    k = np.mean(yg) ** 2 / np.var(yg)
    assert make_family("gamma").tau_prior(yg) == (1.0, 0.1 / k)
    np.testing.assert_allclose(make_family("gamma").log_tau_start(yg), np.log(k))
    # NB's start: the moment estimate m^2 / (v - m) when the counts are overdispersed
    m, v = np.mean(y), np.var(y)
    np.testing.assert_allclose(make_family("negbinomial").log_tau_start(y),
                               np.log(m * m / (v - m)))


def test_count_draws_are_right_for_any_rate():
    """jax.random.poisson gives 0 at rate 1e300 and garbage at inf; the families' draws
    use the normal approximation past 1e15 and keep inf and NaN."""
    rate = np.array([3.0, 1e12, 1e16, 1e300, np.inf, np.nan])
    eta = jnp.asarray(np.log(rate))
    for fam, tau in ((make_family("poisson"), 1.0), (make_family("negbinomial"), 1e12)):
        y = np.asarray(fam.sample(jax.random.key(0), eta, jnp.asarray(tau), jnp.ones(6)))
        assert y[0] == np.round(y[0]) and y[0] >= 0
        np.testing.assert_allclose(y[1:4], rate[1:4], rtol=1e-4)
        assert y[4] == np.inf and np.isnan(y[5])


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
@pytest.mark.parametrize("tau", [0.8, 6.0, 150.0])
def test_beta_log_density_matches_scipy(link, tau):
    rng = np.random.default_rng(9)
    eta = rng.uniform(*ETA_RANGE[link], size=50)
    mu = NUMPY_INVERSE_LINKS[link](eta)
    y = np.clip(rng.beta(mu * tau, (1 - mu) * tau), 1e-12, 1 - 1e-12)
    got = _log_density(make_family("beta", link), y, eta, tau)
    want = scipy.stats.beta.logpdf(y, mu * tau, (1 - mu) * tau)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.2, np.nan])
def test_beta_check_response_names_first_bad_row(bad):
    y = np.array([0.3, 0.5, bad, 0.1])
    with pytest.raises(ValueError, match=r"'beta' needs responses strictly between 0 and 1; "
                                         r"row 2"):
        make_family("beta").check_response(y, None)


def test_beta_draws_have_the_stated_mean_and_variance():
    fam, tau, n = make_family("beta"), 7.0, 200_000
    mu = float(scipy.special.expit(0.6))
    y = np.asarray(fam.sample(jax.random.key(4), jnp.full(n, 0.6), jnp.asarray(tau), jnp.ones(n)))
    var = mu * (1 - mu) / (1 + tau)
    assert abs(y.mean() - mu) < 5 * np.sqrt(var / n) and abs(y.var() / var - 1) < 0.03
    assert y.min() > 0 and y.max() < 1
