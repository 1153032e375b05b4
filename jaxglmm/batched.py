"""Cholesky factors of many small q x q matrices at once (one per cluster), for the collapsed
sampler and the Laplace-guided random effects."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

Array = jax.Array


UNROLL_MAX_Q = 4  # batched q x q algebra written out element by element up to this q


class BatchedChol(NamedTuple):
    """Cholesky factors of N small q x q matrices, as rows[i][j] = L[:, i, j] ((N,) arrays,
    j <= i). Written out element by element: XLA's batched linalg kernels on CPU cost far more
    than the few multiply-adds of a 2 x 2 or 3 x 3 factor."""

    rows: tuple

    @property
    def q(self) -> int:
        return len(self.rows)

    def log_det(self) -> Array:
        """sum over the batch of log|A_i|, ()."""
        return 2.0 * sum(jnp.sum(jnp.log(self.rows[i][i])) for i in range(self.q))

    def solve_lower(self, b: Array) -> Array:
        """L_i^{-1} b_i for b (N, q)."""
        L, x = self.rows, []
        for i in range(self.q):
            x.append((b[:, i] - sum(L[i][k] * x[k] for k in range(i))) / L[i][i])
        return jnp.stack(x, axis=1)

    def solve_upper(self, b: Array) -> Array:
        """L_i^{-T} b_i for b (N, q)."""
        L, q = self.rows, self.q
        x = [None] * q
        for i in reversed(range(q)):
            x[i] = (b[:, i] - sum(L[k][i] * x[k] for k in range(i + 1, q))) / L[i][i]
        return jnp.stack(x, axis=1)


def batched_cholesky(A: Array) -> BatchedChol:
    """Cholesky factors of A (N, q, q), q <= UNROLL_MAX_Q, element by element."""
    q = A.shape[-1]
    L = [[None] * (i + 1) for i in range(q)]
    for j in range(q):
        L[j][j] = jnp.sqrt(A[:, j, j] - sum(L[j][k] ** 2 for k in range(j)))
        for i in range(j + 1, q):
            L[i][j] = (A[:, i, j] - sum(L[i][k] * L[j][k] for k in range(j))) / L[j][j]
    return BatchedChol(tuple(tuple(row) for row in L))


class GeneralChol(NamedTuple):
    """The same interface through jnp.linalg, for q > UNROLL_MAX_Q."""

    L: Array  # (N, q, q)

    def log_det(self) -> Array:
        return 2.0 * jnp.sum(jnp.log(jnp.diagonal(self.L, axis1=1, axis2=2)))

    def solve_lower(self, b: Array) -> Array:
        return jax.vmap(lambda c, x: solve_triangular(c, x, lower=True))(self.L, b)

    def solve_upper(self, b: Array) -> Array:
        return jax.vmap(lambda c, x: solve_triangular(c.T, x, lower=False))(self.L, b)


def cholesky(A: Array):
    """Cholesky factors of A (N, q, q): unrolled (BatchedChol) up to UNROLL_MAX_Q, else through
    jnp.linalg (GeneralChol); both have log_det, solve_lower and solve_upper."""
    if A.shape[-1] <= UNROLL_MAX_Q:
        return batched_cholesky(A)
    return GeneralChol(jnp.linalg.cholesky(A))
