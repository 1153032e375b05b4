"""The exact collapsed sampler for gaussian LMMs (DESIGN.md section 3, "LMM fast path").

b is integrated out in closed form: y_i ~ N(X_i beta + Z_i mu, V_i), V_i = Z_i D Z_i' + I / tau.
With A_i = Omega + tau Z_i'Z_i (q x q), r_i = y_i - X_i beta - Z_i mu, Woodbury's identity and
the matrix determinant lemma give

    r_i' V_i^{-1} r_i = tau r_i'r_i - tau^2 (Z_i'r_i)' A_i^{-1} (Z_i'r_i)
    log|V_i|          = log|A_i| - log|Omega| - m_i log tau

so one evaluation needs per-cluster sufficient statistics (Z'Z, Z'X, Z'y) and global ones
(W'W, W'y, y'y with W = [X, Z]), computed once, and a vmapped q x q Cholesky per cluster: its
cost grows with N and q, not with the number of observations. NUTS moves psi (and the
hyperparameters) only; every kept draw then gets b_i | psi, y ~ N(A_i^{-1}(Omega mu +
tau Z_i'(y_i - X_i beta)), A_i^{-1}) in one vectorised pass.

Prior art: Lai, Domke and Sheldon (NeurIPS 2024), "Hamiltonian Monte Carlo inference of
marginalized linear mixed-effects models", who marginalise random effects of LMMs inside HMC.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .batched import cholesky
from .density import (ModelData, ModelSpec, Psi, TermPsi, TermSpec, log_prior_psi,
                      term_precision, unpack)

Array = jax.Array


class SufficientStats(NamedTuple):
    """Sufficient statistics of a gaussian LMM (N clusters; p fixed, q random columns), each
    sum over observations weighted by the observation weights w (a row of weight w counts as
    w rows: the weighted likelihood prod_ij p(y_ij | b, psi)^w_ij)."""

    ZtZ: Array   # (N, q, q)  sum w z z'
    ZtX: Array   # (N, q, p)
    Zty: Array   # (N, q)   with y - offset
    WtW: Array   # (p + q, p + q)  W = [X, Z] over all observations
    Wty: Array   # (p + q,)
    yty: Array   # ()
    m: Array     # (N,) cluster sizes (sums of weights)


def sufficient_stats(data: ModelData, N: int) -> SufficientStats:
    """Per-cluster and global sums from the observation arrays (one pass, segment sums) of a
    model with one random-effect term (N levels)."""
    y = data.y - data.offset
    X, wt = data.X, data.weights
    (Z, cluster), = data.terms
    seg = lambda v: jax.ops.segment_sum(v, cluster, num_segments=N)  # noqa: E731
    W = jnp.concatenate([X, Z], axis=1)
    # without weights (None) exactly the unweighted sums
    Zw, Ww, yw = (Z, W, y) if wt is None else (Z * wt[:, None], W * wt[:, None], wt * y)
    return SufficientStats(
        ZtZ=seg(Zw[:, :, None] * Z[:, None, :]),
        ZtX=seg(Zw[:, :, None] * X[:, None, :]),
        Zty=seg(Zw * y[:, None]),
        WtW=Ww.T @ W, Wty=W.T @ yw, yty=y @ yw,
        m=seg(jnp.ones_like(y) if wt is None else wt),
    )


def level_precision(t: TermPsi, term: TermSpec, tau: Array, ZtZ: Array):
    """Omega (q, q) of one term and the Cholesky factors of A_i = Omega + tau Z_i'Z_i over
    its N levels (ZtZ (N, q, q))."""
    omega = term_precision(t, term)
    return omega, cholesky(omega + tau * ZtZ)


def _posterior_precision(psi: Psi, stats: SufficientStats, spec: ModelSpec):
    """Omega (q, q) and the Cholesky factors of A_i = Omega + tau Z_i'Z_i (N clusters)."""
    return level_precision(psi.terms[0], spec.terms[0], psi.tau, stats.ZtZ)


def marginal_from_residual(chol_A, logdet_omega: Array, tau: Array, v: Array, rr: Array,
                           n: Array, N: int) -> Array:
    """sum_i log N(r_i | 0, Z_i D Z_i' + I / tau) from v_i = Z_i'r_i (N, q), rr = sum r'r
    and n observations, with chol_A the factors of A_i = Omega + tau Z_i'Z_i, ()."""
    w = chol_A.solve_lower(v)                                         # (N, q)
    quad = tau * rr - tau**2 * jnp.sum(w**2)
    logdet_V = chol_A.log_det() - N * logdet_omega - n * jnp.log(tau)
    return -0.5 * (n * jnp.log(2 * jnp.pi) + logdet_V + quad)


def draw_from_precision(key: Array, chol_A, rhs: Array) -> Array:
    """One draw of b (N, q) from N(A_i^{-1} rhs_i, A_i^{-1}) per level."""
    eps = jax.random.normal(key, rhs.shape, rhs.dtype)
    # A = C C':  mean = C^{-T} C^{-1} rhs,  C^{-T} eps ~ N(0, A^{-1})
    return chol_A.solve_upper(chol_A.solve_lower(rhs) + eps)


def _Zt_residual(psi: Psi, stats: SufficientStats) -> Array:
    """Z_i'(y_i - X_i beta - Z_i mu), (N, q)."""
    out = stats.Zty - stats.ZtZ @ psi.terms[0].mu
    if stats.ZtX.shape[-1]:
        out = out - stats.ZtX @ psi.beta
    return out


def log_marginal_likelihood(psi: Psi, stats: SufficientStats, spec: ModelSpec) -> Array:
    """sum_i log N(y_i | X_i beta + Z_i mu, Z_i D Z_i' + I / tau), ()."""
    _, chol_A = _posterior_precision(psi, stats, spec)
    (t,), (term,) = psi.terms, spec.terms
    w = jnp.concatenate([psi.beta, t.mu])
    rr = stats.yty - 2.0 * w @ stats.Wty + w @ stats.WtW @ w        # sum_i r_i'r_i
    return marginal_from_residual(chol_A, t.logdet_omega, psi.tau,
                                  _Zt_residual(psi, stats), rr, jnp.sum(stats.m), term.N)


def log_posterior_collapsed(position: dict, stats: SufficientStats, spec: ModelSpec) -> Array:
    """log p(psi, hyper | y) up to a constant at an unconstrained position (no "z"/"b"), ()."""
    psi, log_jac = unpack(position, spec)
    return log_marginal_likelihood(psi, stats, spec) + log_prior_psi(psi, spec) + log_jac


def draw_b(key: Array, psi: Psi, stats: SufficientStats, spec: ModelSpec) -> Array:
    """One exact draw of b (N, q) from p(b | psi, y)."""
    omega, chol_A = _posterior_precision(psi, stats, spec)
    rhs = omega @ psi.terms[0].mu + psi.tau * stats.Zty
    if stats.ZtX.shape[-1]:
        rhs = rhs - psi.tau * stats.ZtX @ psi.beta
    return draw_from_precision(key, chol_A, rhs)
