"""Unconstrained parameters and their transforms to the natural scale.

The sampler moves a dict of unconstrained arrays (a pytree); which keys are present depends on
the model (p = 0 has no "beta", families without dispersion have no "log_tau", ...):

    "beta"      (p,)            fixed effects
    "mu"        (q,)            mean of the random effects
    "log_tau"   ()              log precision of a gaussian response
    "log_d"     ()              log of tau's Gamma rate d, when d is random
    "log_gamma" (q,)            log of the Wishart's gamma_j, when random
    "chol"      (q(q+1)/2,)     Cholesky factor of D (or of Omega): log of its diagonal, then
                                the strict lower triangle row by row
    "z"         (N, q)          non-centred random effects, b_i = mu + L_D z_i   (default)
    "b"         (N, q)          centred random effects (on request)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def n_chol(q: int) -> int:
    """Number of free elements of a q x q Cholesky factor."""
    return q * (q + 1) // 2


def vec_to_chol(x: Array, q: int) -> tuple[Array, Array]:
    """Lower-triangular L with positive diagonal from x ((q(q+1)/2,)).

    Returns:
        L (q, q) and log|dL/dx| (()), which is the sum of the log-diagonal.
    """
    diag = jnp.exp(x[:q])
    rows, cols = np.tril_indices(q, -1)
    L = jnp.zeros((q, q), dtype=x.dtype).at[rows, cols].set(x[q:])
    L = L + jnp.diag(diag)
    return L, jnp.sum(x[:q])


def chol_to_vec(L) -> np.ndarray:
    """Inverse of vec_to_chol: (q, q) lower factor -> (q(q+1)/2,) vector."""
    L = np.asarray(L)
    q = L.shape[0]
    rows, cols = np.tril_indices(q, -1)
    return np.concatenate([np.log(np.diag(L)), L[rows, cols]])


def chol_product_log_jacobian(L: Array) -> Array:
    """log|d(L L')/dL| over the free elements of a lower factor L (q, q) with positive diagonal:
    q log 2 + sum_i (q - i) log L_ii for i = 0..q-1. Returns ()."""
    q = L.shape[-1]
    powers = jnp.arange(q, 0, -1, dtype=L.dtype)
    return q * jnp.log(2.0) + jnp.sum(powers * jnp.log(jnp.diagonal(L)))


def cov_to_corr(D: Array) -> tuple[Array, Array]:
    """Standard deviations (q,) and correlation matrix (q, q) of a covariance D (q, q); the
    diagonal of the correlation is exactly 1 (D_jj / sd_j^2 is 1 only up to rounding, and
    that rounding depended on how XLA fused the division)."""
    sd = jnp.sqrt(jnp.diagonal(D))
    q = D.shape[-1]
    return sd, jnp.where(jnp.eye(q, dtype=bool), jnp.ones((), D.dtype),
                         D / (sd[:, None] * sd[None, :]))
