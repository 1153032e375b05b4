"""Laplace-guided random effects (jaxglmm/laplace.py): the change of variables z -> b, its
log-Jacobian against jax.jacfwd + slogdet, the density against the centred one, the Newton mode
against closed forms, and the posterior against the non-centred sampler and Stan references.

With b = m(psi) + L(psi)^{-T} z, the Laplace-guided density at (z, psi) must equal the centred
density at (b(z), psi) plus log|db/dz|; everything else (likelihood, priors, Jacobians of psi)
is the centred parametrisation's, which tests/test_density.py checks against scipy.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from jax.flatten_util import ravel_pytree

import jaxglmm as jg
import catalogue
from jaxglmm import FAMILIES, diagnostics, laplace
from jaxglmm.density import random_effects_and_log_jacobian, term_precision, unpack

FAMILY_LINKS = [(name, link) for name, family in FAMILIES.items() for link in family.links]
FAMILY_IDS = [f"{f}-{l}" for f, l in FAMILY_LINKS]
SIZES = np.array([1, 5, 3, 2, 4, 1, 6])  # ragged, two singleton clusters


@functools.lru_cache(maxsize=None)
def _arrays(family: str, link: str, q: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed + 7 * q + len(family) + len(link))
    n = int(SIZES.sum())
    groups = np.repeat(np.arange(SIZES.size) * 3 + 1, SIZES)[rng.permutation(n)]
    Z = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(q - 1)])
    X = rng.normal(size=(n, 2))
    eta = 0.3 + rng.normal(scale=0.8, size=n)
    trials = None
    if family == "gaussian":
        mean = np.exp(eta) if link == "log" else eta
        y = mean + rng.normal(scale=0.5, size=n)
    elif family == "bernoulli":
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    elif family == "binomial":
        trials = rng.integers(1, 7, n).astype(float)
        y = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
        y[:2] = [0.0, trials[1]]
    elif family == "gamma":
        y = rng.gamma(3.0, np.exp(eta) / 3.0)
    elif family == "beta":
        p = 1 / (1 + np.exp(-eta))
        y = rng.beta(6.0 * p, 6.0 * (1 - p))
    else:  # poisson, negbinomial
        y = rng.poisson(np.exp(eta)).astype(float)
    return y, Z, groups, X, trials


def _model(family, link, centred, q=2, factor="D", offset=False):
    y, Z, groups, X, trials = _arrays(family, link, q)
    off = np.linspace(-0.3, 0.3, y.size) if offset else None
    return jg.GLMM.from_arrays(y, Z, groups, X, family=family, link=link, trials=trials,
                               offset=off, centred=centred, factor=factor)


def _position(model, seed=0, spread=0.3):
    pos = model.initial_position(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    return {k: v + spread * rng.normal(size=np.shape(v)) for k, v in pos.items()}


def _crossed(seed=1, family="bernoulli"):
    """Two crossed terms: (1 + x | s) and (1 | d)."""
    rng = np.random.default_rng(seed)
    n_s, n_d, reps = 5, 4, 2
    s = np.repeat(np.arange(n_s), n_d * reps)
    d = np.tile(np.repeat(np.arange(n_d), reps), n_s)
    x = rng.normal(size=s.size)
    eta = 0.2 + 0.5 * x + rng.normal(0, 1.0, n_s)[s] + rng.normal(0, 0.7, n_d)[d]
    y = rng.poisson(np.exp(eta)) if family == "poisson" else rng.uniform(size=s.size) < 1 / (
        1 + np.exp(-eta))
    return pd.DataFrame({"y": y.astype(float), "x": x, "s": [f"s{i}" for i in s],
                         "d": [f"d{j}" for j in d]})


def _crossed_model(centred, family="bernoulli"):
    return jg.GLMM("y ~ x + (1 + x | s) + (1 | d)", _crossed(family=family), family=family,
                   centred=centred)


# ----------------------------------------------------------------- a. the change of variables


def _map_z_to_b(model, position):
    """z (flat, all Laplace-guided terms) -> (b (flat), summed log-Jacobian) at fixed psi."""
    spec, data = model.spec, model.model_data()
    z_keys = [t.name("z") for t in spec.terms]
    psi, _ = unpack(position, spec)
    z0, unravel = ravel_pytree({k: position[k] for k in z_keys})

    def b_of(z_flat):
        pos = dict(position, **unravel(z_flat))
        b, log_jac = random_effects_and_log_jacobian(pos, psi, spec, data)
        return ravel_pytree({t.name("b"): b_k for t, b_k in zip(spec.terms, b)})[0], log_jac
    return z0, b_of


@pytest.mark.parametrize("family,link", FAMILY_LINKS, ids=FAMILY_IDS)
def test_log_jacobian_matches_jacfwd_slogdet(family, link):
    model = _model(family, link, "laplace")
    z0, b_of = _map_z_to_b(model, _position(model, 1))
    J = jax.jacfwd(lambda z: b_of(z)[0])(z0)
    sign, logdet = jnp.linalg.slogdet(J)
    assert sign == 1.0
    np.testing.assert_allclose(b_of(z0)[1], logdet, rtol=1e-10)


def test_log_jacobian_of_several_terms_matches_jacfwd_slogdet():
    """Two terms: b_2's mode depends on b_1 (so on z_1), never on z_2's own value; the whole
    map's log-determinant is the sum of the terms' and its Jacobian is block triangular."""
    model = _crossed_model("laplace")
    pos = _position(model, 2)
    z0, b_of = _map_z_to_b(model, pos)
    J = np.asarray(jax.jacfwd(lambda z: b_of(z)[0])(z0))
    n1 = pos["z|s"].size  # ravel_pytree orders the keys: "b|d" ("z|d") first, then "b|s"
    n2 = pos["z|d"].size
    assert np.abs(J[:n2, n2:]).max() > 1e-6        # b|d depends on z|s through b|s ...
    np.testing.assert_array_equal(J[n2:, :n2], 0)   # ... b|s does not depend on z|d
    assert J.shape == (n1 + n2, n1 + n2)
    sign, logdet = np.linalg.slogdet(J)
    assert sign == 1.0
    np.testing.assert_allclose(b_of(z0)[1], logdet, rtol=1e-10)


@pytest.mark.parametrize("family,link", FAMILY_LINKS, ids=FAMILY_IDS)
@pytest.mark.parametrize("factor", ["D", "omega"])
def test_laplace_density_is_centred_density_plus_log_jacobian(family, link, factor):
    lap = _model(family, link, "laplace", factor=factor, offset=True)
    cen = _model(family, link, True, factor=factor, offset=True)
    pos = _position(lap, 3)
    psi, _ = unpack(pos, lap.spec)
    (b,), log_jac = random_effects_and_log_jacobian(pos, psi, lap.spec, lap.model_data())
    pos_c = {("b" if k == "z" else k): (b if k == "z" else v) for k, v in pos.items()}
    want = cen.logdensity_fn(pos_c) + log_jac
    np.testing.assert_allclose(lap.logdensity_fn(pos), want, rtol=1e-11)
    draw = lap.constrain(pos)
    np.testing.assert_allclose(draw["b"], b, rtol=1e-12)


def test_several_terms_density_is_centred_density_plus_log_jacobian():
    lap, cen = _crossed_model("laplace"), _crossed_model(True)
    pos = _position(lap, 4)
    psi, _ = unpack(pos, lap.spec)
    b, log_jac = random_effects_and_log_jacobian(pos, psi, lap.spec, lap.model_data())
    pos_c = {k: v for k, v in pos.items() if not k.startswith("z")}
    pos_c.update({"b|s": b[0], "b|d": b[1]})
    np.testing.assert_allclose(lap.logdensity_fn(pos), cen.logdensity_fn(pos_c) + log_jac,
                               rtol=1e-11)


@pytest.mark.parametrize("family,link", [("bernoulli", "probit"), ("binomial", "cloglog"),
                                         ("poisson", "log"), ("gaussian", "log")])
def test_gradient_matches_central_finite_differences(family, link):
    model = _model(family, link, "laplace")
    pos = _position(model, 5)
    x0, unravel = ravel_pytree(pos)
    f = jax.jit(lambda x: model.logdensity_fn(unravel(x)))
    g = jax.grad(f)(x0)
    h = 1e-5
    eye = np.eye(x0.size)
    fd = np.array([(f(x0 + h * e) - f(x0 - h * e)) / (2 * h) for e in eye])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-5)


# the inverse link has a positive mean only for eta > 0: far out its log density is -inf
FAR_OUT = [(f, l) for f, l in FAMILY_LINKS if l != "inverse"]


@pytest.mark.parametrize("family,link", FAR_OUT, ids=[f"{f}-{l}" for f, l in FAR_OUT])
def test_log_density_and_gradient_finite_far_out(family, link):
    """psi far from the data (large |beta|, tiny and huge sd of b): the Newton steps stay
    finite (each moves a cluster's eta by at most laplace.MAX_ETA_STEP)."""
    model = _model(family, link, "laplace")
    pos = _position(model, 6)
    for beta_scale, log_sd in [(8.0, -6.0), (-8.0, 3.0), (3.0, 0.0)]:
        far = dict(pos, beta=jnp.full_like(pos["beta"], beta_scale),
                   chol=pos["chol"].at[:2].set(log_sd))
        x0, unravel = ravel_pytree(far)
        value, grad = jax.value_and_grad(lambda x: model.logdensity_fn(unravel(x)))(x0)
        assert np.isfinite(value) and np.all(np.isfinite(grad)), (beta_scale, log_sd)


# ----------------------------------------------------------------- b. the Newton mode


def test_one_newton_step_is_exact_for_the_gaussian_identity_model():
    """Gaussian identity: f_i is quadratic, so one step from mu reaches the mode and H is the
    exact conditional precision A_i = Omega + tau Z_i'Z_i: b | psi, y = m + L^{-T} z with
    z ~ N(0, I) exactly (compared with the closed form of collapsed.py's conditional)."""
    model = _model("gaussian", "identity", "laplace")
    pos = _position(model, 7)
    spec, data = model.spec, model.model_data()
    psi, _ = unpack(pos, spec)
    t, term = psi.terms[0], spec.terms[0]
    omega = term_precision(t, term)
    eta_rest = data.offset + data.X @ psi.beta
    kernel = lambda eta: spec.family.log_kernel(data.y, eta, psi.tau, data.trials)  # noqa: E731
    m = laplace.conditional_mode(eta_rest, data.terms[0][0], data.terms[0][1], t.mu, omega, kernel,
                                 spec.terms[0].N, steps=1)
    Z, r, c = np.asarray(data.terms[0][0]), np.asarray(data.y - eta_rest), np.asarray(data.terms[0][1])
    for i in range(spec.terms[0].N):
        Zi = Z[c == i]
        A = np.asarray(omega) + psi.tau * Zi.T @ Zi
        want = np.linalg.solve(A, np.asarray(omega) @ t.mu + psi.tau * Zi.T @ r[c == i])
        np.testing.assert_allclose(m[i], want, rtol=1e-9)


@pytest.mark.parametrize("family,link", [("bernoulli", "logit"), ("binomial", "probit"),
                                         ("poisson", "log")])
def test_newton_steps_converge_to_the_conditional_mode(family, link):
    """After enough steps the gradient of every f_i at m vanishes (the mode); 3 steps already
    bring it within a small fraction of its size at the start."""
    model = _model(family, link, "laplace")
    spec, data = model.spec, model.model_data()
    psi, _ = unpack(_position(model, 8), spec)
    t = psi.terms[0]
    omega = term_precision(t, spec.terms[0])
    eta_rest = data.offset + data.X @ psi.beta
    kernel = lambda eta: spec.family.log_kernel(data.y, eta, psi.tau, data.trials)  # noqa: E731

    def grad_f(b):
        def f(b):
            eta = eta_rest + jnp.sum(data.terms[0][0] * b[data.terms[0][1]], axis=1)
            return jnp.sum(kernel(eta)) - 0.5 * jnp.sum(((b - t.mu) @ omega) * (b - t.mu))
        return jax.grad(f)(b)
    m = {k: laplace.conditional_mode(eta_rest, data.terms[0][0], data.terms[0][1], t.mu, omega, kernel,
                                     spec.terms[0].N, steps=k) for k in (0, 3, 12)}
    assert np.abs(grad_f(m[12])).max() < 1e-8
    assert np.abs(grad_f(m[3])).max() < 0.05 * np.abs(grad_f(m[0])).max()


# ----------------------------------------------------------------- c. the model and posterior


def test_laplace_option_and_record():
    model = _model("poisson", "log", "laplace")
    assert model.spec.terms[0].laplace and not model.spec.terms[0].centred
    assert set(model.initial_position(0)) == {"beta", "mu", "chol", "z"}
    fit = model.sample(chains=1, warmup=20, draws=5, progress=False)
    assert fit.info["parametrisation"] == "laplace"
    assert fit.draws["b"].shape == (1, 5, SIZES.size, 2)
    with pytest.raises(ValueError, match="'laplace'"):
        _model("poisson", "log", "Laplace")


def test_saved_fit_keeps_the_laplace_parametrisation(tmp_path):
    fit = _model("bernoulli", "logit", "laplace").sample(chains=1, warmup=20, draws=5,
                                                          progress=False)
    fit.save(tmp_path / "fit.nc")
    loaded = jg.load(tmp_path / "fit.nc")
    assert loaded.model.spec.terms[0].laplace
    more = loaded.extend(draws=3)
    assert more.info["parametrisation"] == "laplace"


def _psi_draws(fit):
    d = fit.draws
    out = {f"beta[{k}]": d["beta"][..., k] for k in range(d["beta"].shape[-1])}
    out.update({f"mu[{k}]": d["mu"][..., k] for k in range(d["mu"].shape[-1])})
    q = d["D"].shape[-1]
    out.update({f"D[{j},{k}]": d["D"][..., j, k] for j in range(q) for k in range(j, q)})
    return out


def _poisson_slopes(centred, N=16, seed=4):
    """Poisson counts with a random intercept and slope over N ragged clusters."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 9, N)
    g = np.repeat(np.arange(N), sizes)
    t = rng.uniform(-1, 1, g.size)
    x = rng.normal(size=(g.size, 1))
    b = np.array([0.5, 0.3]) + rng.normal(size=(N, 2)) * [0.6, 0.4]
    y = rng.poisson(np.exp(b[g, 0] + b[g, 1] * t + 0.3 * x[:, 0])).astype(float)
    return jg.GLMM.from_arrays(y, np.column_stack([np.ones(g.size), t]), g, x,
                               family="poisson", centred=centred)


def test_posterior_of_psi_matches_the_non_centred_sampler():
    """A small poisson model with a random intercept and slope: the Laplace-guided posterior
    of psi (beta, mu, D) and of two b agrees with the non-centred one within 4 combined
    MCSE."""
    fits = [_poisson_slopes(c).sample(chains=4, warmup=500, draws=500, seed=3,
                                      progress=False) for c in ("laplace", False)]
    ours, ref = (_psi_draws(f) for f in fits)
    for f, draws in zip(fits, (ours, ref)):
        draws["b[0,0]"], draws["b[3,1]"] = f.draws["b"][..., 0, 0], f.draws["b"][..., 3, 1]
    bad = []
    for name, x in ours.items():
        y = ref[name]
        z = (x.mean() - y.mean()) / np.hypot(diagnostics.mcse_mean(x), diagnostics.mcse_mean(y))
        if abs(z) > 4:
            bad.append((name, x.mean(), y.mean(), z))
    assert not bad, bad
    assert max(diagnostics.rhat(x) for f in fits for x in _psi_draws(f).values()) < 1.02
    assert fits[0].num_divergences == 0, fits[0].num_divergences


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cbpp", "epil"])
def test_posterior_matches_stan_reference(name):
    import json
    with open(catalogue.bench_root() / "refs" / f"{name}.json") as f:
        ref = json.load(f)
    fit = catalogue.load_model(name, centred="laplace").sample(chains=4, warmup=1000, draws=1000,
                                                           seed=11, progress=False)
    draws = catalogue.reference_draws(fit)
    rows = []
    for key, r in ref["params"].items():
        x = draws[key]
        z = (x.mean() - r["mean"]) / np.hypot(diagnostics.mcse_mean(x), r["mcse_mean"])
        rows.append((key, x.mean(), r["mean"], z, diagnostics.rhat(x)))
    report = "\n".join(f"{n:10s} ours {m:10.4f} ref {r:10.4f} z {z:+.2f} rhat {h:.4f}"
                       for n, m, r, z, h in rows)
    assert all(abs(z) < 4 for _, _, _, z, _ in rows), report
    assert all(h < 1.01 for *_, h in rows), report
    assert fit.num_divergences == 0
