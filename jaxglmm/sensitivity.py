"""How the posterior depends on the prior, from one fit (no refits).

For a hyperparameter h of psi's prior p(psi | h) (the Gamma's c and d, the Wishart's nu and
gamma_j, the normals' loc and scale, ...), the derivative of a posterior mean is a posterior
covariance:

    d E[f | y] / d h = Cov(f, s_h | y),   s_h = d log p(psi | h) / d h,

since p(psi | y, h) is proportional to p(y | psi) p(psi | h) and the likelihood does not
depend on h. s_h is computed by jax.grad of the prior's log density at every draw
(`jaxglmm.density.log_prior_psi` with the hyperparameters as arguments), and the covariance's
Monte Carlo standard error from the effective sample size of the centred products.

`log_prior_draws` gives log p(psi | h) per draw, for ArviZ's `log_prior` group: what
arviz-stats' power-scaling diagnostics (`psense`, as priorsense computes them) need.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from . import diagnostics
from .density import Psi, TermPsi, hyperparameters, log_prior_psi

HYPER_LABELS = {"loc": "mean", "scale": "sd", "shape": "shape", "rate": "rate",
                "df": "degrees of freedom", "gamma": "S^-1 diagonal", "eta": "LKJ shape",
                "a": "Beta a", "b": "Beta b"}


def psi_of_draws(draws: dict, spec, h: dict) -> Psi:
    """Psi at every draw (leading dims (C, S)) from a fit's natural-scale draws."""
    lead = np.shape(draws["sd" + spec.terms[0].key])[:2]
    one = jnp.ones(lead)
    terms = []
    for term in spec.terms:
        key, q = term.key, term.q
        D = jnp.asarray(draws["D" + key])
        omega = jnp.linalg.inv(D)
        mu = jnp.zeros(lead + (q,))
        if term.mu_free:
            mu = mu.at[..., jnp.asarray(term.mu_free)].set(jnp.asarray(draws["mu" + key]))
        gamma = (jnp.asarray(draws["gamma" + key]) if term.priors.random_gamma else
                 jnp.broadcast_to(jnp.asarray(h.get(f"omega{key}.gamma", (0.0,) * q)),
                                  lead + (q,)))
        chol = jnp.linalg.cholesky(D if term.factor == "D" or term.priors.lkj else omega)
        terms.append(TermPsi(mu, gamma, chol, jnp.linalg.slogdet(omega)[1],
                             jnp.diagonal(omega, axis1=-2, axis2=-1)))
    beta = jnp.asarray(draws["beta"]) if "beta" in draws else jnp.zeros(lead + (0,))
    extra = {p.name: jnp.asarray(draws[p.name]) if p.name in draws else
             jnp.broadcast_to(jnp.asarray(float(p.prior)), lead)
             for p in spec.family.parameters()}
    tau = jnp.asarray(draws["tau"]) if "tau" in draws else one
    d = jnp.asarray(draws["d"]) if "d" in draws else \
        jnp.broadcast_to(jnp.asarray(h.get("tau.rate", 1.0), float), lead)
    return Psi(beta, tau, d, tuple(terms), extra)


def _per_draw(fn, psi: Psi):
    """fn applied to every (chain, draw) of psi."""
    return jax.vmap(jax.vmap(fn))(psi)


def log_prior_draws(fit) -> np.ndarray:
    """log p(psi | h) at every draw (C, S): beta, mu, tau (and d), the family's parameters,
    Omega (and gamma); the random effects' density p(b | mu, D) is the likelihood's side of
    a power-scaling analysis and is left out, as priorsense does for hierarchical models."""
    spec = fit.model.spec
    with jax.enable_x64(True):
        h = hyperparameters(spec)
        psi = psi_of_draws(fit.draws, spec, h)
        return np.asarray(_per_draw(lambda p: log_prior_psi(p, spec), psi))


def _as_arrays(h: dict) -> dict:
    return {k: jnp.asarray(v, jnp.float64) for k, v in h.items()}


def scores(fit) -> dict:
    """s_h = d log p(psi | h) / d h at every draw: {hyperparameter: (C, S) or (C, S, k)}."""
    spec = fit.model.spec
    with jax.enable_x64(True):
        h = _as_arrays(hyperparameters(spec))
        psi = psi_of_draws(fit.draws, spec, h)
        grad = jax.grad(lambda hh, p: log_prior_psi(p, spec, hh))
        out = _per_draw(lambda p: grad(h, p), psi)
        return {k: np.asarray(v) for k, v in out.items()}


def _element_names(fit, name: str, size: int) -> list[str]:
    """Names of a vector hyperparameter's elements (the coefficients or columns)."""
    a, spec = fit.model.arrays, fit.model.spec
    block, _ = name.split(".")
    base, _, group = block.partition("|")
    if base == "beta":
        return list(a.x_names)
    for t, ts in zip(a.terms, spec.terms):
        if ts.key == ("|" + group if group else ""):
            if base == "mu":
                return [t.z_names[j] for j in ts.mu_free]
            return list(t.z_names)
    return [str(j) for j in range(size)]


def prior_sensitivity(fit, quantities=None) -> pd.DataFrame:
    """d E[f | y] / d h for every hyperparameter element h and psi quantity f, from the draws.

    Args:
        fit: a `Fit`.
        quantities: names as in `fit.scalar_draws()` (default: every psi scalar, no b).
    Returns:
        A DataFrame indexed by (hyperparameter, quantity), e.g. ("tau.rate", "sigma") or
        ("beta.scale[x]", "beta[x]"), with columns value (h), derivative (d E[f]/d h), mcse
        (its Monte Carlo standard error), elasticity (h d E[f]/d h = d E[f] / d log h: 100
        times the change of E[f] for a 1% change of h; NaN for a location) and
        post_sd (the posterior sd of f, to judge the size of a change).
    """
    spec = fit.model.spec
    h = hyperparameters(spec)
    s = scores(fit)
    draws = fit.scalar_draws()
    names = list(draws) if quantities is None else list(quantities)
    missing = [n for n in names if n not in draws]
    if missing:
        raise ValueError(f"quantities: {', '.join(map(repr, missing))} are not in the fit; "
                         f"choose among {', '.join(draws)}.")
    rows = []
    for name, value in h.items():
        score = s[name]
        values = np.atleast_1d(np.asarray(value, float))
        labels = ([name] if np.ndim(value) == 0 else
                  [f"{name}[{e}]" for e in _element_names(fit, name, len(values))])
        for j, label in enumerate(labels):
            sj = score if score.ndim == 2 else score[..., j]
            sc = sj - sj.mean()
            for q in names:
                f = np.asarray(draws[q], float)
                prod = (f - f.mean()) * sc
                derivative = float(prod.mean())
                location = name.endswith(".loc")
                rows.append({"hyperparameter": label, "quantity": q,
                             "value": float(values[j]), "derivative": derivative,
                             "mcse": float(diagnostics.mcse_mean(prod)),
                             "elasticity": np.nan if location else
                             float(values[j]) * derivative,
                             "post_sd": float(f.std())})
    return pd.DataFrame(rows).set_index(["hyperparameter", "quantity"])
