"""A block inverse mass matrix: dense over psi, diagonal over the latent effects.

The posterior of the population parameters (beta, mu, the covariance factors, log tau and
the hyperparameters: a few to a few dozen coordinates) is correlated, while the latent
effects (z or b: hundreds to millions of coordinates) are nearly independent given psi. A
dense matrix over everything costs O(d^2) per leapfrog step and a diagonal one cannot follow
psi's correlations; this block form costs O(k^2 + d).

The matrix is held as one flat vector, imm = [A.ravel() (k*k,), diag (d - k,)], A the dense
inverse mass matrix of the k coordinates `psi` of the flat position and diag the diagonal one
of the others (`latent`), so that sampler states and saved fits keep a 1-D array per chain.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.mcmc.metrics import Metric
from jax.flatten_util import ravel_pytree
from jax.scipy.linalg import solve_triangular

Array = jax.Array


def block_size(psi: tuple, d: int) -> int:
    """Length of the flat block matrix of a d-dimensional position with dense block psi."""
    k = len(psi)
    return k * k + d - k


def split(imm: Array, k: int) -> tuple[Array, Array]:
    """(A (k, k), diag (d - k,)) of a flat block matrix."""
    return imm[:k * k].reshape(k, k), imm[k * k:]


def join(A: Array, diag: Array) -> Array:
    """The flat block matrix of A (k, k) and diag (d - k,)."""
    return jnp.concatenate([A.reshape(-1), diag])


def to_dense(imm, psi: tuple, d: int) -> np.ndarray:
    """The (d, d) matrix a flat block matrix stands for (for tests and inspection)."""
    psi = np.asarray(psi, int)
    latent = np.setdiff1d(np.arange(d), psi)
    A, diag = split(np.asarray(imm), len(psi))
    out = np.zeros((d, d))
    out[np.ix_(psi, psi)] = A
    out[latent, latent] = diag
    return out


def cholesky_factors(A: Array) -> tuple[Array, Array]:
    """(L, L^{-1}) of a dense inverse mass matrix A = L L' (k, k): with them a metric's
    leapfrog and momentum draws are matrix-vector products only. They are computed once per
    adaptation window (`jaxglmm.adaptation`), not at every transition: a Cholesky
    factorisation and a triangular solve per NUTS step are LAPACK calls that cost more than
    the gradient of a small model and, with chains on several CPU devices, ran slower than
    on one (epil, d = 66: 1.75 s on two devices against 1.14 s on one)."""
    L = jnp.linalg.cholesky(A)
    return L, solve_triangular(L, jnp.eye(A.shape[-1], dtype=A.dtype), lower=True)


def _turning(velocity):
    def check_turning(momentum_left, momentum_right, momentum_sum, position_left=None,
                      position_right=None):
        m_left, _ = ravel_pytree(momentum_left)
        m_right, _ = ravel_pytree(momentum_right)
        m_sum, _ = ravel_pytree(momentum_sum)
        rho = m_sum - (m_right + m_left) / 2
        return (jnp.dot(velocity(m_left), rho) <= 0) | (jnp.dot(velocity(m_right), rho) <= 0)
    return check_turning


def dense_metric(A: Array, factors: tuple[Array, Array]) -> Metric:
    """BlackJAX's Gaussian Euclidean metric of a dense inverse mass matrix A (d, d), from
    its `cholesky_factors` (L, L^{-1}): M = A^{-1}, M^{1/2} = L^{-T}, M^{-1/2} = L."""
    L, L_inv = factors

    def sample_momentum(key, position):
        x, unravel = ravel_pytree(position)
        return unravel(L_inv.T @ jax.random.normal(key, x.shape, x.dtype))

    def kinetic_energy(momentum, position=None):
        p, _ = ravel_pytree(momentum)
        return 0.5 * jnp.dot(A @ p, p)

    def scale(position, element, *, inv: bool, trans: bool):
        e, unravel = ravel_pytree(element)
        if inv:
            return unravel((L.T if trans else L) @ e)
        return unravel((L_inv if trans else L_inv.T) @ e)

    return Metric(sample_momentum, kinetic_energy, _turning(lambda p: A @ p), scale)


def block_factors(imm: Array, psi: tuple) -> tuple[Array, Array]:
    """`cholesky_factors` of the dense block of a flat block matrix."""
    A, _ = split(imm, len(psi))
    return cholesky_factors(A)


def block_metric(imm: Array, psi: tuple, d: int, factors=None) -> Metric:
    """BlackJAX's Gaussian Euclidean metric for a flat block inverse mass matrix `imm`,
    psi the (static) indices of the dense block in the flat position (d,); factors: the
    block's `block_factors` (computed here when None)."""
    psi_idx = np.asarray(psi, int)
    lat_idx = np.setdiff1d(np.arange(d), psi_idx)
    k = len(psi_idx)
    A, diag = split(imm, k)
    # A = L L': M = A^{-1}, M^{1/2} = L^{-T}, M^{-1/2} = L
    L, L_inv = cholesky_factors(A) if factors is None else factors
    sqrt_diag = jnp.sqrt(diag)

    def assemble(a: Array, b: Array, like: Array) -> Array:
        return jnp.zeros_like(like).at[psi_idx].set(a).at[lat_idx].set(b)

    def velocity(p: Array) -> Array:
        return assemble(A @ p[psi_idx], diag * p[lat_idx], p)

    def sample_momentum(key, position):
        x, unravel = ravel_pytree(position)
        n = jax.random.normal(key, x.shape, x.dtype)
        p_psi = L_inv.T @ n[psi_idx]  # L^{-T} n ~ N(0, M)
        return unravel(assemble(p_psi, n[lat_idx] / sqrt_diag, n))

    def kinetic_energy(momentum, position=None):
        p, _ = ravel_pytree(momentum)
        return 0.5 * jnp.dot(velocity(p), p)

    def scale(position, element, *, inv: bool, trans: bool):
        e, unravel = ravel_pytree(element)
        e_psi, e_lat = e[psi_idx], e[lat_idx]
        if inv:  # M^{-1/2} = L (transposed: L')
            a = (L.T if trans else L) @ e_psi
            b = sqrt_diag * e_lat
        else:    # M^{1/2} = L^{-T} (transposed: L^{-1})
            a = (L_inv if trans else L_inv.T) @ e_psi
            b = e_lat / sqrt_diag
        return unravel(assemble(a, b, e))

    return Metric(sample_momentum, kinetic_energy, _turning(velocity), scale)
