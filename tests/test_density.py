"""The joint log posterior against an independent NumPy/SciPy oracle, the centred/non-centred
identity, gradients against finite differences, and finiteness far out (DESIGN.md section 8).

The oracle rebuilds everything from the unconstrained position by itself: the Cholesky factor
from its layout (log-diagonal, then the strict lower triangle row by row), D and Omega, b, eta,
scipy.stats log densities for the likelihood and every prior, and the log-Jacobian of the map
(log_tau, log_d, log_gamma, chol) -> (tau, d, gamma, vech(Omega)) as a numerical
jax.jacfwd + slogdet. Non-centred positions are compared with the standard non-centred joint
density: z ~ N(0, I), no Jacobian for z -> b. With factor="D", b_i = mu + L_D z_i; with
factor="omega", b_i = mu + L_Omega^{-T} z_i (the square root of D that jaxglmm.density uses;
it is upper triangular, not the Cholesky factor of D).

Every model here shares one data geometry (N = 6 ragged clusters, so eager JAX reuses its
compiled primitives and the file stays fast); only y, the sizes p and q, and the options vary.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
from jax.flatten_util import ravel_pytree

import jaxglmm
from jaxglmm import Flat, Gamma, Normal, Priors, Wishart

FAMILY_LINKS = [
    ("gaussian", "identity"), ("gaussian", "log"),
    ("bernoulli", "logit"), ("bernoulli", "probit"), ("bernoulli", "cloglog"),
    ("binomial", "logit"), ("binomial", "probit"), ("binomial", "cloglog"),
    ("poisson", "log"),
]
FAMILY_IDS = [f"{f}-{l}" for f, l in FAMILY_LINKS]
PARAMETRISATIONS = [(False, "D"), (False, "omega"), (True, "D"), (True, "omega")]
PARAM_IDS = ["noncentred-D", "noncentred-omega", "centred-D", "centred-omega"]

INVERSE_LINKS = {  # numpy / scipy, independent of jaxglmm.families
    "identity": lambda eta: eta,
    "log": np.exp,
    "logit": scipy.special.expit,
    "probit": scipy.stats.norm.cdf,
    "cloglog": lambda eta: -np.expm1(-np.exp(eta)),
}

# 1 - inverse link, computed without cancellation where it is small
COMPLEMENTS = {
    "logit": lambda eta: scipy.special.expit(-eta),
    "probit": scipy.stats.norm.sf,
    "cloglog": lambda eta: np.exp(-np.exp(eta)),
}

N = 6
SIZES = np.array([1, 5, 3, 2, 4, 1])  # ragged, two singleton clusters
LABELS = np.array([40, 7, 23, 15, 31, 2])  # unsorted labels: cluster order is sorted order


# --------------------------------------------------------------------------- models


@functools.lru_cache(maxsize=None)
def _data(family: str, link: str, p: int, q: int, has_offset: bool):
    """Arrays for from_arrays: rows shuffled so clusters are interleaved."""
    rng = np.random.default_rng(1000 + 17 * p + 5 * q + len(family) + len(link))
    n = int(SIZES.sum())
    groups = np.repeat(LABELS, SIZES)[rng.permutation(n)]
    Z = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(q - 1)])
    X = rng.normal(size=(n, p)) if p else None
    offset = rng.normal(scale=0.3, size=n) if has_offset else None
    eta = rng.normal(scale=0.7, size=n)
    trials = None
    if family == "gaussian":
        y = INVERSE_LINKS[link](eta) + rng.normal(scale=0.5, size=n)
    elif family == "bernoulli":
        y = rng.binomial(1, INVERSE_LINKS[link](eta)).astype(float)
        y[:2] = [0.0, 1.0]
    elif family == "binomial":
        trials = rng.integers(1, 7, n).astype(float)
        y = rng.binomial(trials.astype(int), INVERSE_LINKS[link](eta)).astype(float)
        y[:2] = [0.0, trials[1]]  # an all-failure and an all-success row
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return dict(y=y, Z=Z, groups=groups, X=X, trials=trials, offset=offset)


def _hyper(p: int, q: int, has_dispersion: bool, random_d: bool, random_gamma: bool,
           flat: bool = False) -> dict:
    """Explicit hyperparameters (numpy), known to the oracle without asking jaxglmm."""
    rng = np.random.default_rng(7 + p + 3 * q + 11 * random_d + 13 * random_gamma)
    h = {"q": q, "flat": flat}
    h["beta"] = (rng.normal(size=p), rng.uniform(0.5, 3.0, p))
    h["mu"] = (rng.normal(size=q), rng.uniform(0.5, 3.0, q))
    h["tau"] = None
    if has_dispersion:
        h["tau"] = (1.5, (2.0, 3.0) if random_d else 0.7)
    h["df"] = q + 2.5 if random_gamma else q - 0.5  # larger, and in (q - 1, q]
    h["gamma"] = ((rng.uniform(1.0, 3.0, q), rng.uniform(0.5, 2.0, q)) if random_gamma
                  else rng.uniform(0.2, 2.0, q))
    h["random_d"], h["random_gamma"] = random_d, random_gamma
    return h


def _priors(h: dict) -> Priors:
    if h["flat"]:
        beta = mu = Flat()
    else:
        beta = Normal(tuple(h["beta"][0]), tuple(h["beta"][1])) if h["beta"][0].size \
            else Normal(0.0, 1.0)
        mu = Normal(tuple(h["mu"][0]), tuple(h["mu"][1]))
    tau = None
    if h["tau"] is not None:
        c, d = h["tau"]
        tau = Gamma(c, Gamma(*d) if h["random_d"] else d)
    if h["random_gamma"]:
        gamma = Gamma(tuple(h["gamma"][0]), tuple(h["gamma"][1]))
    else:
        gamma = tuple(h["gamma"])
    return Priors(beta=beta, mu=mu, tau=tau, omega=Wishart(h["df"], gamma))


def _model(family, link, *, centred, factor, p=2, q=2, random_d=False, random_gamma=False,
           flat=False, has_offset=False):
    data = _data(family, link, p, q, has_offset)
    h = _hyper(p, q, family == "gaussian", random_d, random_gamma, flat)
    model = jaxglmm.GLMM.from_arrays(
        data["y"], data["Z"], data["groups"], data["X"], family=family, link=link,
        trials=data["trials"], offset=data["offset"], priors=_priors(h), centred=centred,
        factor=factor)
    return model, data, h


def _position(model, seed: int, spread: float = 0.3) -> dict:
    """initial_position, perturbed by normal noise so that no leaf sits at a box centre."""
    pos = model.initial_position(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    return {k: v + spread * rng.normal(size=np.shape(v)) for k, v in pos.items()}


# --------------------------------------------------------------------------- oracle


def _chol_from_vector(v: np.ndarray, q: int) -> np.ndarray:
    L = np.diag(np.exp(v[:q]))
    k = q
    for i in range(q):
        for j in range(i):
            L[i, j] = v[k]
            k += 1
    return L


def _omega_from_vector(v, q: int, factor: str):
    """Omega (q, q) from the chol vector, in jax.numpy so that jacfwd can differentiate."""
    L = jnp.diag(jnp.exp(v[:q]))
    k = q
    for i in range(q):
        for j in range(i):
            L = L.at[i, j].set(v[k])
            k += 1
    if factor == "D":
        return jnp.linalg.inv(L @ L.T)
    return L @ L.T


def _natural(position: dict, h: dict, factor: str, centred: bool) -> dict:
    """The oracle's own transform to the natural scale."""
    pos = {k: np.asarray(v, dtype=float) for k, v in position.items()}
    q = h["q"]
    L = _chol_from_vector(pos["chol"], q)
    if factor == "D":
        D = L @ L.T
        sqrt_D = L  # b = mu + L z
    else:
        D = np.linalg.inv(L @ L.T)
        sqrt_D = np.linalg.inv(L).T  # b = mu + L^{-T} z: cov L^{-T} L^{-1} = D
    nat = {"beta": pos.get("beta", np.zeros(0)), "mu": pos["mu"], "D": D,
           "omega": np.linalg.inv(D), "sqrt_D": sqrt_D}
    nat["b"] = pos["b"] if centred else pos["mu"] + pos["z"] @ sqrt_D.T
    if "log_tau" in pos:
        nat["tau"] = np.exp(pos["log_tau"])
        nat["d"] = np.exp(pos["log_d"]) if h["random_d"] else h["tau"][1]
    nat["gamma"] = np.exp(pos["log_gamma"]) if h["random_gamma"] else np.asarray(h["gamma"])
    return nat


def _cluster_index(groups):
    return np.unique(groups, return_inverse=True)[1]


def _eta(nat: dict, data: dict) -> np.ndarray:
    n = data["y"].shape[0]
    eta = np.zeros(n) if data["offset"] is None else data["offset"].copy()
    if data["X"] is not None:
        eta += data["X"] @ nat["beta"]
    return eta + np.sum(data["Z"] * nat["b"][_cluster_index(data["groups"])], axis=1)


def _log_likelihood(nat: dict, data: dict, family: str, link: str) -> float:
    eta = _eta(nat, data)
    y = data["y"]
    mean = INVERSE_LINKS[link](eta)
    if family == "gaussian":
        return scipy.stats.norm.logpdf(y, mean, nat["tau"] ** -0.5).sum()
    if family == "poisson":
        return scipy.stats.poisson.logpmf(y, mean).sum()
    # scipy forms 1 - p from p: where p > 1/2 count failures with probability 1 - p instead
    n = np.ones_like(y) if family == "bernoulli" else data["trials"]
    q = COMPLEMENTS[link](eta)
    flip = mean > 0.5
    return np.sum(np.where(flip, scipy.stats.binom.logpmf(n - y, n, q),
                           scipy.stats.binom.logpmf(y, n, mean)))


@functools.lru_cache(maxsize=None)
def _chol_jacobian_fn(q: int, factor: str):
    rows, cols = np.tril_indices(q)
    return jax.jit(jax.jacfwd(lambda v: _omega_from_vector(v, q, factor)[rows, cols]))


def _log_jacobian(position: dict, h: dict, factor: str) -> float:
    """log|det| of d(tau, d, gamma, vech Omega) / d(log_tau, log_d, log_gamma, chol): the
    chol block numerically (jacfwd + slogdet), plus log|d exp(x)/dx| = x for the others."""
    J = _chol_jacobian_fn(h["q"], factor)(jnp.asarray(position["chol"], jnp.float64))
    sign, logdet = np.linalg.slogdet(np.asarray(J))
    assert sign != 0
    for name in ("log_tau", "log_d", "log_gamma"):
        if name in position:
            logdet += float(np.sum(position[name]))
    return logdet


def oracle_log_posterior(position: dict, data: dict, h: dict, family: str, link: str,
                         centred: bool, factor: str) -> float:
    nat = _natural(position, h, factor, centred)
    total = _log_likelihood(nat, data, family, link)
    if centred:
        total += scipy.stats.multivariate_normal(nat["mu"], nat["D"]).logpdf(nat["b"]).sum()
    else:
        total += scipy.stats.norm.logpdf(np.asarray(position["z"])).sum()
    if not h["flat"]:
        if nat["beta"].size:
            total += scipy.stats.norm.logpdf(nat["beta"], *h["beta"]).sum()
        total += scipy.stats.norm.logpdf(nat["mu"], *h["mu"]).sum()
    if h["tau"] is not None:
        c, d = h["tau"]
        total += scipy.stats.gamma.logpdf(nat["tau"], a=c, scale=1.0 / nat["d"])
        if h["random_d"]:
            total += scipy.stats.gamma.logpdf(nat["d"], a=d[0], scale=1.0 / d[1])
    total += scipy.stats.wishart(df=h["df"], scale=np.diag(1.0 / nat["gamma"])).logpdf(
        nat["omega"])
    if h["random_gamma"]:
        g, rate = h["gamma"]
        total += scipy.stats.gamma.logpdf(nat["gamma"], a=g, scale=1.0 / rate).sum()
    return total + _log_jacobian(position, h, factor)


# ------------------------------------------------------------------- a. the oracle


def _check_against_oracle(family, link, centred, factor, seeds=(0,), **kw):
    model, data, h = _model(family, link, centred=centred, factor=factor, **kw)
    for seed in seeds:
        position = _position(model, seed)
        got = float(model.logdensity_fn(position))
        want = oracle_log_posterior(position, data, h, family, link, centred, factor)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("centred,factor", PARAMETRISATIONS, ids=PARAM_IDS)
@pytest.mark.parametrize("family,link", FAMILY_LINKS, ids=FAMILY_IDS)
def test_log_posterior_matches_oracle(family, link, centred, factor):
    """p = 2, q = 2; fixed hyperparameters (Wishart df in (q - 1, q]), then random ones:
    tau ~ Gamma(c, d), d ~ Gamma(g, h) (gaussian), gamma_j ~ Gamma(g_j, h_j), with an offset."""
    _check_against_oracle(family, link, centred, factor, seeds=(0,))
    _check_against_oracle(family, link, centred, factor, seeds=(2,),
                          random_d=family == "gaussian", random_gamma=True, has_offset=True)


# q = 1 with p = 0 (fixed gamma, df in (0, 1]) and q = 3 with p = 1 (random d and gamma, an
# offset); p = 2, q = 2 above. Two parametrisations each, all four over the pairs.
SIZE_CASES = [
    (("gaussian", "identity"), (0, 1), False, "D"),
    (("bernoulli", "probit"), (0, 1), True, "omega"),
    (("gaussian", "log"), (1, 3), False, "omega"),
    (("binomial", "cloglog"), (1, 3), True, "D"),
]


@pytest.mark.parametrize("family_link,pq,centred,factor", SIZE_CASES,
                         ids=[f"{f}-{l}-p{p}q{q}-{'c' if c else 'nc'}-{fa}"
                              for (f, l), (p, q), c, fa in SIZE_CASES])
def test_log_posterior_matches_oracle_other_sizes(family_link, pq, centred, factor):
    (family, link), (p, q) = family_link, pq
    _check_against_oracle(family, link, centred, factor, seeds=(3,), p=p, q=q,
                          random_d=q == 3, random_gamma=q == 3, has_offset=p == 1)


@pytest.mark.parametrize("centred,factor", PARAMETRISATIONS, ids=PARAM_IDS)
def test_log_posterior_matches_oracle_flat_priors(centred, factor):
    _check_against_oracle("gaussian", "identity", centred, factor, seeds=(3,), flat=True)
    _check_against_oracle("poisson", "log", centred, factor, seeds=(3,), flat=True)


@pytest.mark.parametrize("centred,factor", PARAMETRISATIONS, ids=PARAM_IDS)
@pytest.mark.parametrize("family,link", [("gaussian", "identity"), ("binomial", "logit")])
def test_constrain_matches_oracle_transform(family, link, centred, factor):
    model, data, h = _model(family, link, centred=centred, factor=factor,
                            random_d=family == "gaussian", random_gamma=True)
    position = _position(model, 4)
    nat = _natural(position, h, factor, centred)
    out = {k: np.asarray(v) for k, v in model.constrain(position).items()}
    for name in ("beta", "mu", "D", "b", "gamma"):
        np.testing.assert_allclose(out[name], nat[name], rtol=1e-11, atol=1e-13)
    sd = np.sqrt(np.diag(nat["D"]))
    np.testing.assert_allclose(out["sd"], sd, rtol=1e-11)
    np.testing.assert_allclose(out["corr"], nat["D"] / np.outer(sd, sd), rtol=1e-11,
                               atol=1e-13)
    if family == "gaussian":
        np.testing.assert_allclose(out["tau"], nat["tau"], rtol=1e-12)
        np.testing.assert_allclose(out["sigma"], nat["tau"] ** -0.5, rtol=1e-12)
        np.testing.assert_allclose(out["d"], nat["d"], rtol=1e-12)
    else:
        assert "tau" not in out and "d" not in out


# ------------------------------------------- b. centred and non-centred densities agree


@pytest.mark.parametrize("factor", ["D", "omega"])
@pytest.mark.parametrize("family,link", FAMILY_LINKS, ids=FAMILY_IDS)
def test_centred_equals_noncentred_minus_log_jacobian_of_z_to_b(family, link, factor):
    """log p_centred(b, psi) = log p_noncentred(z, psi) - N log|D|^{1/2}: b_i = mu + R z_i
    with R R' = D (R = L_D, or L_Omega^{-T} for factor="omega"), |R| = |D|^{1/2}."""
    nc, data, h = _model(family, link, centred=False, factor=factor, random_gamma=True)
    c, _, _ = _model(family, link, centred=True, factor=factor, random_gamma=True)
    for seed in (5, 6):
        pos_nc = _position(nc, seed)
        nat = _natural(pos_nc, h, factor, centred=False)
        pos_c = {k: v for k, v in pos_nc.items() if k != "z"}
        pos_c["b"] = jnp.asarray(nat["b"])
        log_det_sqrt_D = 0.5 * np.linalg.slogdet(nat["D"])[1]
        np.testing.assert_allclose(float(c.logdensity_fn(pos_c)),
                                   float(nc.logdensity_fn(pos_nc)) - N * log_det_sqrt_D,
                                   rtol=1e-11, atol=1e-9)


@pytest.mark.parametrize("centred", [False, True])
def test_factors_d_and_omega_differ_only_by_the_jacobian_of_the_factor(centred):
    """Same (b or z, D) moved through chol(D) or chol(Omega): the densities differ by
    log|d vech(Omega)/d x_D| - log|d vech(Omega)/d x_Omega| only (for z: with the same b)."""
    m_D, data, h = _model("poisson", "log", centred=centred, factor="D", random_gamma=True)
    m_O, _, _ = _model("poisson", "log", centred=centred, factor="omega", random_gamma=True)
    pos_D = _position(m_D, 8)
    nat = _natural(pos_D, h, "D", centred)
    L_omega = np.linalg.cholesky(nat["omega"])
    chol_O = np.concatenate([np.log(np.diag(L_omega)), L_omega[np.tril_indices(2, -1)]])
    pos_O = dict(pos_D, chol=jnp.asarray(chol_O))
    if not centred:  # the same b: z_O = L_Omega' (b - mu)
        pos_O["z"] = jnp.asarray((nat["b"] - nat["mu"]) @ L_omega)
    np.testing.assert_allclose(_natural(pos_O, h, "omega", centred)["b"], nat["b"],
                               rtol=1e-11, atol=1e-12)
    got = float(m_O.logdensity_fn(pos_O)) - float(m_D.logdensity_fn(pos_D))
    want = _log_jacobian(pos_O, h, "omega") - _log_jacobian(pos_D, h, "D")
    if not centred:  # standard-normal z terms differ as the two z differ
        want += (scipy.stats.norm.logpdf(np.asarray(pos_O["z"])).sum()
                 - scipy.stats.norm.logpdf(np.asarray(pos_D["z"])).sum())
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)


# ------------------------------------------------- c. gradients vs finite differences

# each family centred and non-centred, each with both factors across the pair
GRADIENT_CASES = [(f, l, *PARAMETRISATIONS[(i + k) % 4])
                  for i, (f, l) in enumerate(FAMILY_LINKS) for k in (0, 2)]
GRADIENT_IDS = [f"{f}-{l}-{'centred' if c else 'noncentred'}-{fa}"
                for f, l, c, fa in GRADIENT_CASES]


@pytest.mark.parametrize("family,link,centred,factor", GRADIENT_CASES, ids=GRADIENT_IDS)
def test_gradient_matches_central_finite_differences(family, link, centred, factor):
    """Directional derivatives along 3 random directions through the whole position."""
    model, _, _ = _model(family, link, centred=centred, factor=factor,
                         random_d=family == "gaussian", random_gamma=True, has_offset=True)
    position = _position(model, 9)
    x, unravel = ravel_pytree(position)
    x = np.asarray(x)
    f = lambda v: float(model.logdensity_fn(unravel(jnp.asarray(v))))  # noqa: E731
    value, grad = jax.value_and_grad(model.logdensity_fn)(position)
    grad = np.asarray(ravel_pytree(grad)[0])
    directions = np.random.default_rng(9).normal(size=(3, x.size))
    step = 1e-6
    fd = np.array([(f(x + step * v) - f(x - step * v)) / (2 * step) for v in directions])
    want = directions @ grad
    # round-off of the differences is about eps |f| / step; allow 50 times that
    atol = 50 * np.finfo(float).eps * (1 + abs(float(value))) / step
    np.testing.assert_allclose(fd, want, rtol=1e-5, atol=atol)
    assert np.max(np.abs(grad)) > 1.0  # a gradient that could be wrong


# --------------------------------------------------------- d. finiteness far out


def _extreme_positions(model, data, h, family, link, centred, factor):
    """Positions far from the data: every leaf times 10; the chol log-diagonal at +-8 with
    log_tau, log_d, log_gamma at -+8. For the log and cloglog links the linear predictor is
    then shrunk (beta, mu and z or b - mu scaled down together) to |eta| <= 200, where the true
    log density (about -exp(eta)) is still a float64 number."""
    q = h["q"]
    base = _position(model, 11)
    points = [{k: 10.0 * v for k, v in base.items()}]
    for sign in (1.0, -1.0):
        pos = dict(base)
        pos["chol"] = pos["chol"].at[:q].set(8.0 * sign)
        for name in ("log_tau", "log_d", "log_gamma"):
            if name in pos:
                pos[name] = jnp.full_like(pos[name], -8.0 * sign)
        points.append(pos)
    if link not in ("log", "cloglog"):
        return points
    shrunk = []
    for pos in points:
        nat = _natural(pos, h, factor, centred)
        offset = 0.0 if data["offset"] is None else data["offset"]
        scale = min(1.0, 200.0 / np.max(np.abs(_eta(nat, data) - offset)))
        pos = dict(pos, mu=pos["mu"] * scale)
        if "beta" in pos:
            pos["beta"] = pos["beta"] * scale
        if centred:
            pos["b"] = pos["b"] * scale
        else:
            pos["z"] = pos["z"] * scale
        assert np.max(np.abs(_eta(_natural(pos, h, factor, centred), data))) <= 201.0
        shrunk.append(pos)
    return shrunk


@pytest.mark.parametrize("family,link,centred,factor", GRADIENT_CASES, ids=GRADIENT_IDS)
def test_log_posterior_and_gradient_finite_far_out(family, link, centred, factor):
    model, data, h = _model(family, link, centred=centred, factor=factor,
                            random_d=family == "gaussian", random_gamma=True, has_offset=True)
    value_and_grad = jax.value_and_grad(model.logdensity_fn)
    values = []
    for pos in _extreme_positions(model, data, h, family, link, centred, factor):
        value, grads = value_and_grad(pos)
        values.append(float(value))
        assert np.isfinite(values[-1]), (values[-1], pos)
        for name, g in grads.items():
            assert np.all(np.isfinite(np.asarray(g))), (name, g)
    # ten times the base point is far less probable than the base point
    assert values[0] < float(model.logdensity_fn(_position(model, 11))) - 100


# ------------------------------------- e. every leaf at +-30, log-scale leaves at +-300

LOG_SCALE = ("log_tau", "log_d", "log_gamma")  # and the chol log-diagonal


def _set_leaves(base: dict, q: int, factor: str, location=None, log_sd=None) -> dict:
    """base with every location leaf (beta, mu, z or b, the chol off-diagonal) set to
    `location` and every log-scale leaf to `log_sd` (None: kept). log_sd is the log of a
    scale: the chol log-diagonal is log sd(b) for factor "D" and -log sd(b) for "omega";
    log_gamma (gamma has the units of D) follows it, log_tau and log_d too."""
    out = {}
    for name, v in base.items():
        v = np.array(v, dtype=float)
        if name == "chol":
            if log_sd is not None:
                v[:q] = log_sd if factor == "D" else -log_sd
            if location is not None:
                v[q:] = location
        elif name in LOG_SCALE:
            if log_sd is not None:
                v[...] = log_sd
        elif location is not None:
            v[...] = location
        out[name] = jnp.asarray(v)
    return out


def _far_points(model, h, factor):
    """(label, position): location leaves at +30, -30 and alternating +-30 (unit scales);
    log-scale leaves all at +300 and all at -300 (location leaves 0); one log-scale leaf
    at a time at +-300 (the others at a random base point)."""
    q = h["q"]
    base = _position(model, 13)
    points = []
    for loc in (30.0, -30.0):
        points.append((f"location {loc:+g}", _set_leaves(base, q, factor, loc, 0.0)))
    alt = {k: jnp.asarray(30.0 * np.resize([1.0, -1.0], np.size(v)).reshape(np.shape(v)))
           for k, v in _set_leaves(base, q, factor, 0.0, 0.0).items()}
    points.append(("location +-30", {k: (alt[k] if k not in LOG_SCALE else v)
                                     for k, v in _set_leaves(base, q, factor, None,
                                                             0.0).items()}))
    points[-1][1]["chol"] = points[-1][1]["chol"].at[:q].set(0.0)
    for s in (300.0, -300.0):
        points.append((f"log scales {s:+g}", _set_leaves(base, q, factor, 0.0, s)))
    for name in [n for n in base if n in LOG_SCALE] + ["chol"]:
        for i in range(q if name == "chol" else np.size(base[name])):
            # one Cholesky log-diagonal at -+300 beside O(1) off-diagonals makes D's factor
            # mix scales e^300 apart: the value (~ -1e260) is finite, but reverse-mode AD of
            # the triangular solves forms e^900 intermediates and overflows. Up to 235 it
            # does not; see README "Numerics".
            far = 200.0 if name == "chol" else 300.0
            for s in (far, -far):
                v = np.array(base[name], dtype=float)
                v.reshape(-1)[i] = s
                points.append((f"{name}[{i}] {s:+g}", dict(base, **{name: jnp.asarray(v)})))
    return points


def _eta_max(position: dict, h: dict, factor: str, centred: bool, data: dict) -> float:
    """max eta at a position, in NumPy (b without inverting D, which may be singular in
    float64 here)."""
    pos = {k: np.asarray(v, dtype=float) for k, v in position.items()}
    if centred:
        b = pos["b"]
    else:
        L = _chol_from_vector(pos["chol"], h["q"])
        with np.errstate(all="ignore"):
            sqrt_D = L if factor == "D" else scipy.linalg.solve_triangular(
                L, np.eye(h["q"]), lower=True).T
            b = pos["mu"] + pos["z"] @ sqrt_D.T
    with np.errstate(all="ignore"):
        return float(np.max(_eta({"beta": pos.get("beta", np.zeros(0)), "b": b}, data)))


@pytest.mark.parametrize("family,link,centred,factor", GRADIENT_CASES, ids=GRADIENT_IDS)
def test_log_posterior_finite_at_extreme_points(family, link, centred, factor):
    """At points of the prior's support far beyond test d (leaves +-30, log scales
    +-300), the log density is never NaN or +inf, it is finite with a finite gradient
    wherever its true value is a float64 number, and -inf only where it is not: where a log
    or cloglog link puts eta above 709.78 (the likelihood's -exp(eta) is below -1.8e308)."""
    model, data, h = _model(family, link, centred=centred, factor=factor,
                            random_d=family == "gaussian", random_gamma=True, has_offset=True)
    value_and_grad = jax.value_and_grad(model.logdensity_fn)
    for label, pos in _far_points(model, h, factor):
        value, grads = value_and_grad(pos)
        value = float(value)
        eta_max = _eta_max(pos, h, factor, centred, data)
        where = f"{label}: log density {value}, max eta {eta_max:.3g}"
        assert not np.isnan(value) and value != np.inf, where
        if link in ("log", "cloglog") and eta_max > 709.78:
            assert value == -np.inf or np.isfinite(value), where
            continue
        assert np.isfinite(value), where
        for name, g in grads.items():
            assert np.all(np.isfinite(np.asarray(g))), (where, name, g)
