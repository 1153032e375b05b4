"""The joint log posterior log p(b, psi, hyper | y) as one pure JAX function (DESIGN.md section 3).

Pieces (likelihood, prior of b, prior of psi, log-Jacobian) are separate functions so that tests
check each one; `log_posterior` adds them up. Ragged clusters are handled by gathering b by the
cluster index of each observation: no loop over clusters or observations and no padding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .families import Family
from .parameters import chol_product_log_jacobian, cov_to_corr, vec_to_chol
from .priors import (ResolvedPriors, gamma_logpdf, mvnormal_logpdf_chol, normal_logpdf,
                     wishart_logpdf_parts)

Array = jax.Array


class ModelData(NamedTuple):
    """Observation-level arrays (n_obs observations, N clusters; p fixed, q random columns)."""

    y: Array        # (n_obs,)
    X: Array        # (n_obs, p)
    Z: Array        # (n_obs, q)
    cluster: Array  # (n_obs,) int, 0..N-1 in the order of the sorted group labels
    trials: Array   # (n_obs,) binomial trials (ones for other families)
    offset: Array   # (n_obs,) added to the linear predictor
    log_base: Array  # () sum of the data-only terms of the likelihood (family.log_base)


@dataclass(frozen=True)
class ModelSpec:
    """Static description of the model: sizes, family, priors and parametrisation.

    Attributes:
        centred: sample b directly (True) or z with b = mu + L z (False, default).
        factor: which Cholesky factor the sampler moves: "D" (of D = Omega^{-1}, default)
            or "omega" (of Omega). Same prior either way; the geometry differs.
    """

    family: Family
    priors: ResolvedPriors
    p: int
    q: int
    N: int
    centred: bool = False
    factor: str = "D"


class Psi(NamedTuple):
    """Natural-scale parameters entering the density (absent ones are placeholders)."""

    beta: Array           # (p,)
    mu: Array             # (q,)
    tau: Array            # ()  (1 for families without dispersion)
    d: Array              # ()  rate of tau's Gamma prior
    gamma: Array          # (q,) S^{-1} diagonal of the Wishart prior
    chol: Array           # (q, q) lower Cholesky factor of D or of Omega (spec.factor)
    logdet_omega: Array   # () log|Omega|
    diag_omega: Array     # (q,) diagonal of Omega


def unpack(position: dict, spec: ModelSpec) -> tuple[Psi, Array]:
    """Natural parameters from the unconstrained position, and the log-Jacobian (()) of the
    map from the unconstrained space to (tau, d, gamma, Omega) where the priors are stated."""
    q = spec.q
    dtype = position["mu"].dtype
    L, log_jac = vec_to_chol(position["chol"], q)
    log_jac = log_jac + chol_product_log_jacobian(L)
    log_diag_sum = jnp.sum(position["chol"][:q])
    if spec.factor == "D":
        L_inv = solve_triangular(L, jnp.eye(q, dtype=dtype), lower=True)
        diag_omega = jnp.sum(L_inv**2, axis=0)
        logdet_omega = -2.0 * log_diag_sum
        # density stated for Omega = D^{-1}: |dOmega/dD| = |D|^{-(q+1)}
        log_jac = log_jac + (q + 1) * logdet_omega
    else:
        diag_omega = jnp.sum(L**2, axis=1)
        logdet_omega = 2.0 * log_diag_sum
    one = jnp.ones((), dtype)
    tau, d = one, one
    if "log_tau" in position:
        tau = jnp.exp(position["log_tau"])
        log_jac = log_jac + position["log_tau"]
    pri = spec.priors
    if pri.random_d:
        d = jnp.exp(position["log_d"])
        log_jac = log_jac + position["log_d"]
    elif pri.tau is not None:
        d = jnp.asarray(pri.tau[1], dtype)
    if pri.random_gamma:
        gamma = jnp.exp(position["log_gamma"])
        log_jac = log_jac + jnp.sum(position["log_gamma"])
    else:
        gamma = jnp.asarray(pri.gamma, dtype)
    beta = position.get("beta", jnp.zeros((0,), dtype))
    psi = Psi(beta, position["mu"], tau, d, gamma, L, logdet_omega, diag_omega)
    return psi, log_jac


def random_effects(position: dict, psi: Psi, spec: ModelSpec) -> Array:
    """Cluster coefficients b (N, q) from the position."""
    if spec.centred:
        return position["b"]
    z = position["z"]
    if spec.factor == "D":
        return psi.mu + z @ psi.chol.T
    # D = L^{-T} L^{-1} for L = chol(Omega): b - mu = L^{-T} z
    return psi.mu + solve_triangular(psi.chol.T, z.T, lower=False).T


def linear_predictor(b: Array, beta: Array, data: ModelData) -> Array:
    """eta = offset + X beta + z_ij' b_i, (n_obs,)."""
    eta = data.offset + jnp.sum(data.Z * b[data.cluster], axis=1)
    if data.X.shape[1]:
        eta = eta + data.X @ beta
    return eta


def pointwise_log_likelihood(b: Array, psi: Psi, data: ModelData, family: Family) -> Array:
    """log p(y_ij | b_i, beta, tau) per observation, (n_obs,)."""
    eta = linear_predictor(b, psi.beta, data)
    return family.log_density(data.y, eta, psi.tau, data.trials)


def log_prior_b(position: dict, psi: Psi, b: Array, spec: ModelSpec) -> Array:
    """log p(z) (non-centred: standard normal) or log p(b | mu, D) (centred), ()."""
    if not spec.centred:
        return jnp.sum(normal_logpdf(position["z"], 0.0, 1.0))
    if spec.factor == "D":
        return jnp.sum(mvnormal_logpdf_chol(b, psi.mu, psi.chol))
    white = (b - psi.mu) @ psi.chol  # rows (b_i - mu)' L, squared norm = (b-mu)' Omega (b-mu)
    return jnp.sum(-0.5 * jnp.sum(white**2, axis=1) + 0.5 * psi.logdet_omega
                   - 0.5 * spec.q * jnp.log(2 * jnp.pi))


def log_prior_psi(psi: Psi, priors: ResolvedPriors) -> Array:
    """log p(beta) + log p(mu) + log p(tau | d) p(d) + log p(Omega | gamma) p(gamma), ()."""
    total = jnp.zeros((), psi.mu.dtype)
    if priors.beta is not None:
        total += jnp.sum(normal_logpdf(psi.beta, jnp.asarray(priors.beta[0]),
                                       jnp.asarray(priors.beta[1])))
    if priors.mu is not None:
        total += jnp.sum(normal_logpdf(psi.mu, jnp.asarray(priors.mu[0]),
                                       jnp.asarray(priors.mu[1])))
    if priors.tau is not None:
        total += gamma_logpdf(psi.tau, priors.tau[0], psi.d)
        if priors.random_d:
            g, h = priors.tau[1]
            total += gamma_logpdf(psi.d, g, h)
    total += wishart_logpdf_parts(psi.logdet_omega, psi.diag_omega, priors.omega_df, psi.gamma)
    if priors.random_gamma:
        g, h = priors.gamma
        total += jnp.sum(gamma_logpdf(psi.gamma, jnp.asarray(g), jnp.asarray(h)))
    return total


def log_posterior(position: dict, data: ModelData, spec: ModelSpec) -> Array:
    """Joint log posterior (up to a constant) at an unconstrained position, ()."""
    psi, log_jac = unpack(position, spec)
    b = random_effects(position, psi, spec)
    eta = linear_predictor(b, psi.beta, data)
    loglik = jnp.sum(spec.family.log_kernel(data.y, eta, psi.tau, data.trials)) + data.log_base
    return loglik + log_prior_b(position, psi, b, spec) + log_prior_psi(psi, spec.priors) + log_jac


def covariance(psi: Psi, spec: ModelSpec) -> Array:
    """D (q, q) from the Cholesky factor in psi."""
    L = psi.chol
    if spec.factor == "D":
        return L @ L.T
    L_inv = solve_triangular(L, jnp.eye(spec.q, dtype=L.dtype), lower=True)
    return L_inv.T @ L_inv


def natural_draw(position: dict, spec: ModelSpec, b: Array | None = None) -> dict:
    """One draw on the natural scale: beta, mu, tau (and sigma for gaussian), D, sd, corr, b,
    and the random hyperparameters d, gamma. `b` (N, q) is given when the position has none
    (collapsed sampler)."""
    psi, _ = unpack(position, spec)
    D = covariance(psi, spec)
    sd, corr = cov_to_corr(D)
    out = {"mu": psi.mu, "D": D, "sd": sd, "corr": corr,
           "b": random_effects(position, psi, spec) if b is None else b}
    if spec.p:
        out["beta"] = psi.beta
    if spec.family.has_dispersion:
        out["tau"] = psi.tau
        if spec.family.name == "gaussian":
            out["sigma"] = 1.0 / jnp.sqrt(psi.tau)
    if spec.priors.random_d:
        out["d"] = psi.d
    if spec.priors.random_gamma:
        out["gamma"] = psi.gamma
    return out
