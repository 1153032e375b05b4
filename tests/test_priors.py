"""Prior log densities against scipy.stats, and the checks on prior specifications."""
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxglmm import Flat, Gamma, Normal, Priors, Wishart
from jaxglmm.log_densities import gamma_logpdf, mvnormal_logpdf_chol, normal_logpdf, wishart_logpdf
from jaxglmm.priors import resolve_priors


def _random_spd(rng, q, scale=1.0):
    A = rng.normal(size=(q, q))
    return scale * (A @ A.T + 0.5 * np.eye(q))


# ------------------------------------------------------------------------ log densities


@pytest.mark.parametrize("shape", [(), (7,)])
@pytest.mark.parametrize("loc,scale", [(0.0, 1.0), (-2.0, 0.05), (3.0, 40.0)])
def test_normal_logpdf_matches_scipy(shape, loc, scale):
    x = loc + scale * np.random.default_rng(0).normal(scale=2.0, size=shape)
    got = normal_logpdf(jnp.asarray(x), loc, scale)
    np.testing.assert_allclose(got, scipy.stats.norm.logpdf(x, loc, scale), rtol=1e-12)


def test_normal_logpdf_vector_parameters_match_scipy():
    rng = np.random.default_rng(1)
    loc, scale = rng.normal(size=5), rng.uniform(0.1, 5.0, 5)
    x = rng.normal(size=5) * 3
    got = normal_logpdf(jnp.asarray(x), jnp.asarray(loc), jnp.asarray(scale))
    np.testing.assert_allclose(got, scipy.stats.norm.logpdf(x, loc, scale), rtol=1e-12)


@pytest.mark.parametrize("shape,rate", [(1.0, 0.005), (0.001, 0.001), (2.5, 3.0), (40.0, 0.7)])
def test_gamma_logpdf_matches_scipy(shape, rate):
    x = np.random.default_rng(2).gamma(shape + 0.5, 1.0 / rate, size=9) + 1e-3
    got = gamma_logpdf(jnp.asarray(x), shape, rate)
    want = scipy.stats.gamma.logpdf(x, a=shape, scale=1.0 / rate)
    np.testing.assert_allclose(got, want, rtol=1e-11)


def test_gamma_logpdf_vector_parameters_match_scipy():
    rng = np.random.default_rng(3)
    shape, rate = rng.uniform(0.1, 5.0, 4), rng.uniform(0.01, 5.0, 4)
    x = rng.uniform(0.01, 10.0, 4)
    got = gamma_logpdf(jnp.asarray(x), jnp.asarray(shape), jnp.asarray(rate))
    np.testing.assert_allclose(got, scipy.stats.gamma.logpdf(x, a=shape, scale=1 / rate),
                               rtol=1e-11)


@pytest.mark.parametrize("q,df", [(1, 0.3), (1, 1.0), (1, 6.0), (2, 1.2), (2, 2.0), (2, 7.5),
                                  (3, 2.01), (3, 3.0), (3, 10.0)])
def test_wishart_logpdf_matches_scipy(q, df):
    rng = np.random.default_rng(10 * q + int(df))
    scale_inv_diag = rng.uniform(0.05, 5.0, q)
    for _ in range(3):
        omega = _random_spd(rng, q, scale=rng.uniform(0.1, 10.0))
        got = wishart_logpdf(jnp.asarray(omega), df, jnp.asarray(scale_inv_diag))
        want = scipy.stats.wishart(df=df, scale=np.diag(1.0 / scale_inv_diag)).logpdf(omega)
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_wishart_logpdf_scalar_scale_broadcasts():
    rng = np.random.default_rng(4)
    omega = _random_spd(rng, 3)
    got = wishart_logpdf(jnp.asarray(omega), 3.0, 0.2)
    want = scipy.stats.wishart(df=3.0, scale=np.eye(3) / 0.2).logpdf(omega)
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("nu,gamma", [(0.5, 0.01), (1.0, 1.0), (3.0, 25.0)])
def test_wishart_1_is_gamma(nu, gamma):
    """W_1(nu, S) = Gamma(nu/2, rate S^{-1}/2) (DESIGN.md section 2)."""
    for omega in (1e-3, 0.4, 2.0, 55.0):
        got = wishart_logpdf(jnp.array([[omega]]), nu, jnp.array([gamma]))
        want = scipy.stats.gamma.logpdf(omega, a=nu / 2, scale=2.0 / gamma)
        np.testing.assert_allclose(got, want, rtol=1e-11)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_mvnormal_logpdf_chol_matches_scipy(q):
    rng = np.random.default_rng(20 + q)
    cov = _random_spd(rng, q)
    mean = rng.normal(size=q)
    x = mean + rng.normal(size=(6, q)) * 2
    got = mvnormal_logpdf_chol(jnp.asarray(x), jnp.asarray(mean),
                               jnp.asarray(np.linalg.cholesky(cov)))
    want = scipy.stats.multivariate_normal(mean, cov).logpdf(x)
    assert got.shape == (6,)
    np.testing.assert_allclose(got, np.atleast_1d(want), rtol=1e-11)
    one = mvnormal_logpdf_chol(jnp.asarray(x[0]), jnp.asarray(mean),
                               jnp.asarray(np.linalg.cholesky(cov)))
    np.testing.assert_allclose(np.sum(one), np.atleast_1d(want)[0], rtol=1e-11)


# -------------------------------------------------------------------- spec validation


@pytest.mark.parametrize("scale", [0.0, -1.0, (1.0, 0.0)])
def test_normal_rejects_non_positive_scale(scale):
    with pytest.raises(ValueError, match="Normal.scale"):
        Normal(0.0, scale)


@pytest.mark.parametrize("kwargs,name", [({"shape": 0.0}, "Gamma.shape"),
                                         ({"shape": -2.0}, "Gamma.shape"),
                                         ({"rate": 0.0}, "Gamma.rate"),
                                         ({"rate": (1.0, -1.0)}, "Gamma.rate")])
def test_gamma_rejects_non_positive_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Gamma(**kwargs)


def test_gamma_random_rate_must_have_fixed_rate():
    Gamma(1.0, Gamma(2.0, 3.0))
    with pytest.raises(ValueError, match="Gamma.rate"):
        Gamma(1.0, Gamma(2.0, Gamma(1.0, 1.0)))


@pytest.mark.parametrize("df", [0.0, -1.0])
def test_wishart_rejects_non_positive_df(df):
    with pytest.raises(ValueError, match="Wishart.df"):
        Wishart(df, 1.0)


def test_wishart_rejects_bad_scale_and_vector_df():
    with pytest.raises(ValueError, match="Wishart.scale_inv_diag"):
        Wishart(2.0, (1.0, 0.0))
    with pytest.raises(ValueError, match="Wishart.df"):
        Wishart((2.0, 3.0), 1.0)
    with pytest.raises(ValueError, match="finite"):
        Normal(np.nan, 1.0)


def test_priors_rejects_wrong_kinds():
    with pytest.raises(ValueError, match="priors.tau"):
        Priors(tau=Normal(0.0, 1.0))
    with pytest.raises(ValueError, match="priors.omega"):
        Priors(omega=Gamma(1.0, 1.0))


def _defaults(p, q, tau=True):
    return Priors(beta=Normal(0.0, 10.0), mu=Normal(0.0, 10.0),
                  tau=Gamma(1.0, 0.005) if tau else None, omega=Wishart(float(q), 0.1))


@pytest.mark.parametrize("q,df", [(2, 1.0), (2, 0.5), (3, 2.0), (3, 1.5)])
def test_resolve_priors_rejects_df_at_most_q_minus_1(q, df):
    with pytest.raises(ValueError, match="q - 1"):
        resolve_priors(Priors(omega=Wishart(df, 1.0)), _defaults(2, q), 2, q, True)


@pytest.mark.parametrize("q,df", [(1, 0.01), (2, 1.01), (3, 2.5)])
def test_resolve_priors_accepts_df_above_q_minus_1(q, df):
    r = resolve_priors(Priors(omega=Wishart(df, 1.0)), _defaults(2, q), 2, q, True)
    assert r.omega_df == df
    assert r.gamma == (1.0,) * q


@pytest.mark.parametrize("priors,name", [
    (Priors(beta=Normal((0.0, 1.0, 2.0), 1.0)), "priors.beta.loc"),
    (Priors(beta=Normal(0.0, (1.0,) * 3)), "priors.beta.scale"),
    (Priors(mu=Normal((0.0,) * 3, 1.0)), "priors.mu.loc"),
    (Priors(mu=Normal(0.0, (1.0,))), "priors.mu.scale"),
    (Priors(omega=Wishart(2.0, (1.0, 2.0, 3.0))), "priors.omega.scale_inv_diag"),
    (Priors(omega=Wishart(2.0, Gamma((1.0, 2.0, 3.0), 1.0))),
     "priors.omega.scale_inv_diag.shape"),
    (Priors(omega=Wishart(2.0, Gamma(1.0, (1.0,) * 3))), "priors.omega.scale_inv_diag.rate"),
])
def test_resolve_priors_rejects_wrong_lengths(priors, name):
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        resolve_priors(priors, _defaults(2, 2), 2, 2, True)


def test_resolve_priors_rejects_tau_without_dispersion():
    with pytest.raises(ValueError, match="priors.tau"):
        resolve_priors(Priors(tau=Gamma(1.0, 1.0)), _defaults(2, 2, tau=False), 2, 2, False)


def test_resolve_priors_broadcasts_and_fills_defaults():
    user = Priors(beta=Normal(1.5, (2.0, 3.0)), tau=Gamma(2.0, Gamma(3.0, 4.0)),
                  omega=Wishart(1.5, Gamma(2.0, (0.5, 0.25))))
    r = resolve_priors(user, _defaults(2, 2), 2, 2, True)
    assert r.beta == ((1.5, 1.5), (2.0, 3.0))
    assert r.mu == ((0.0, 0.0), (10.0, 10.0))       # from the defaults
    assert r.tau == (2.0, (3.0, 4.0)) and r.random_d
    assert r.random_gamma and r.gamma == ((2.0, 2.0), (0.5, 0.25))
    assert r.omega_df == 1.5
    assert r.spec.defaults == ("mu",)
    flat = resolve_priors(Priors(beta=Flat(), mu=Flat()), _defaults(2, 2), 2, 2, True)
    assert flat.beta is None and flat.mu is None
    assert flat.tau == (1.0, 0.005) and not flat.random_d and not flat.random_gamma
    no_tau = resolve_priors(None, _defaults(0, 1, tau=False), 0, 1, False)
    assert no_tau.tau is None and no_tau.beta is None  # p = 0: no beta prior


# ------------------------------------------------------------------------ serialisation

ROUND_TRIP = [
    Priors(),
    Priors(beta=Flat(), mu=Flat()),
    Priors(beta=Normal(0.0, 2.5), mu=Normal([1.0, -2.0], [10.0, 0.3]), tau=Gamma(1.0, 0.005),
           omega=Wishart(2.0, 0.01)),
    Priors(beta=Normal([0.1], [1e-300]), tau=Gamma(0.001, Gamma(2.0, 1.0 / 3.0)),
           omega=Wishart(1.5, [0.1, 7.25])),
    Priors(omega=Wishart(2.0, Gamma([1.0, 2.0], [0.5, 0.25])), mu=Normal(np.pi, 1e10)),
    Priors(omega=Wishart(1.0, Gamma(2.0, 4.0)), defaults=("beta", "mu")),
]


@pytest.mark.parametrize("priors", ROUND_TRIP)
def test_priors_dict_round_trip_through_json(priors):
    import json
    from jaxglmm.prior_dicts import priors_from_dict, priors_to_dict
    text = json.dumps(priors_to_dict(priors), allow_nan=False)
    back = priors_from_dict(json.loads(text))
    assert back == priors
    assert back.defaults == priors.defaults
    for name in ("beta", "mu", "tau", "omega"):  # same kinds, values and (float/tuple) shapes
        assert repr(getattr(back, name)) == repr(getattr(priors, name))


def test_priors_to_dict_layout():
    from jaxglmm.prior_dicts import priors_to_dict
    d = priors_to_dict(Priors(beta=Flat(), tau=Gamma(1.0, Gamma(2.0, 3.0)),
                              omega=Wishart(2.0, [0.5, 1.0])))
    assert d == {"beta": {"kind": "Flat"}, "mu": None,
                 "tau": {"kind": "Gamma", "shape": 1.0,
                         "rate": {"kind": "Gamma", "shape": 2.0, "rate": 3.0}},
                 "omega": {"kind": "Wishart", "df": 2.0, "scale_inv_diag": [0.5, 1.0]},
                 "defaults": []}


@pytest.mark.parametrize("data,match", [
    ({"beta": {"kind": "Gamma", "shape": 1.0, "rate": 1.0}}, r"priors\.beta: kind 'Gamma'"),
    ({"tau": {"kind": "Lognormal"}}, r"priors\.tau: must be None or a dict"),
    ({"tau": {"kind": "Gamma", "shape": 1.0, "scale": 2.0}}, r"priors\.tau: unknown .*scale"),
    ({"omega": {"kind": "Wishart", "df": 2.0, "scale_inv_diag": "big"}},
     r"priors\.omega\.scale_inv_diag: must be a number"),
    ({"mu": {"kind": "Normal", "loc": 0.0, "scale": -1.0}}, r"priors\.mu: Normal\.scale"),
    ({"sigma": None}, r"unknown key\(s\) 'sigma'"),
    ({"defaults": ["beta", "nu"]}, r"priors\.defaults"),
])
def test_priors_from_dict_rejects_bad_data(data, match):
    from jaxglmm.prior_dicts import priors_from_dict
    with pytest.raises(ValueError, match=match):
        priors_from_dict(data)
