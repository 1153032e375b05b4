"""Laplace-guided random effects: an exact change of variables z -> b per cluster (DESIGN.md
section 3).

For one random-effect term with N clusters and q columns, given psi (and the rest of the linear
predictor, eta_rest), cluster i's conditional log density of b_i is

    f_i(b) = sum_j log p(y_ij | eta_rest_ij + z_ij' b) - (b - mu)' Omega (b - mu) / 2.

A fixed number of Newton steps from b = mu gives its mode m_i(psi); the curvature there is

    H_i = Omega + sum_j w_ij z_ij z_ij',   w_ij = -d^2 log p(y_ij | eta) / d eta^2 (>= 0),

and the sampler moves z_i with b_i = m_i + L_i^{-T} z_i, L_i L_i' = H_i. Given psi the map is
affine in z, so it is an exact change of variables with log|db/dz| = -sum_i log|L_i|: the
posterior stays exact however rough the mode is; a good mode only makes z close to N(0, I)
(the Laplace approximation of b_i | psi, y), which is what helps the sampler.

Everything is vectorised over clusters: per-observation derivatives, segment sums by cluster
index into (N, q) and (N, q, q) arrays, and the batched q x q Cholesky of `batched.py`. The
derivatives of the log likelihood in eta come from autodiff of the family's log kernel, which is
elementwise in eta (exact for every family and link).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .batched import cholesky

Array = jax.Array

NEWTON_STEPS = 4  # Newton steps (epil needed 4: see README "Laplace-guided random effects")
MAX_ETA_STEP = 3.0  # a Newton step moves a cluster's linear predictor by at most this much


def eta_derivatives(log_kernel: Callable[[Array], Array], eta: Array) -> tuple[Array, Array]:
    """First derivative s and negative second derivative w (floored at 0) of the elementwise
    log likelihood in eta.

    Args:
        log_kernel: eta (n_obs,) -> log p(y | eta) up to a constant (n_obs,), elementwise.
        eta: (n_obs,).
    Returns:
        s (n_obs,), w (n_obs,) >= 0 (w < 0 only where the family is not log-concave, e.g.
        gaussian with log link; flooring keeps H positive definite and the map exact).
    """
    grad = jax.grad(lambda e: jnp.sum(log_kernel(e)))
    s, second = jax.jvp(grad, (eta,), (jnp.ones_like(eta),))
    return s, jnp.maximum(-second, 0.0)


def _cluster_sums(Z: Array, cluster: Array, w: Array, s: Array | None, N: int
                  ) -> tuple[Array | None, Array]:
    """sum_j s_ij z_ij (N, q) (None when s is None) and sum_j w_ij z_ij z_ij' (N, q, q) per
    cluster, in one segment sum (a scatter over the observations is the costly part on CPU)."""
    q = Z.shape[1]
    rows, cols = np.tril_indices(q)
    parts = [w[:, None] * Z[:, rows] * Z[:, cols]]  # (n_obs, q(q+1)/2) lower triangle
    if s is not None:
        parts.append(s[:, None] * Z)
    sums = jax.ops.segment_sum(jnp.concatenate(parts, axis=1), cluster, num_segments=N)
    tri = sums[:, :rows.size]
    info = jnp.zeros((N, q, q), Z.dtype).at[:, rows, cols].set(tri).at[:, cols, rows].set(tri)
    return (sums[:, rows.size:] if s is not None else None), info


def _eta(eta_rest: Array, Z: Array, cluster: Array, b: Array) -> Array:
    """eta_rest + z_ij' b_i, (n_obs,)."""
    return eta_rest + jnp.sum(Z * b[cluster], axis=1)


def newton_step(b: Array, eta_rest: Array, Z: Array, cluster: Array, mu: Array, omega: Array,
                log_kernel: Callable[[Array], Array], z_max: Array) -> Array:
    """One damped Newton step for every cluster's f_i at b.

    Args:
        b: current points (N, q).
        eta_rest: the linear predictor without this term (n_obs,).
        Z: this term's design (n_obs, q); cluster: its cluster index (n_obs,) in 0..N-1.
        mu: mean of b (q,); omega: precision of b (q, q).
        log_kernel: eta (n_obs,) -> (n_obs,) elementwise log likelihood.
        z_max: max_j |z_ijk| per cluster and column (N, q).
    Returns:
        The next points (N, q): b + t_i H_i^{-1} grad f_i(b), with t_i <= 1 chosen so that no
        observation's eta moves by more than MAX_ETA_STEP (bounded by sum_k |delta_ik| z_max_ik).
    """
    N = b.shape[0]
    s, w = eta_derivatives(log_kernel, _eta(eta_rest, Z, cluster, b))
    score, info = _cluster_sums(Z, cluster, w, s, N)
    chol = cholesky(omega + info)
    delta = chol.solve_upper(chol.solve_lower(score - (b - mu) @ omega))
    move = jnp.sum(jnp.abs(delta) * z_max, axis=1)
    t = MAX_ETA_STEP / jnp.maximum(move, MAX_ETA_STEP)  # (N,) in (0, 1]
    return b + t[:, None] * delta


def conditional_mode(eta_rest: Array, Z: Array, cluster: Array, mu: Array, omega: Array,
                     log_kernel: Callable[[Array], Array], N: int, steps: int) -> Array:
    """`steps` Newton steps from b_i = mu for every cluster: m (N, q), a deterministic function
    of the inputs (arguments as in `newton_step`)."""
    b = jnp.broadcast_to(mu, (N, mu.shape[0]))
    z_max = jax.ops.segment_max(jnp.abs(Z), cluster, num_segments=N)  # data only: no gradient
    for _ in range(steps):  # a fixed small number, unrolled
        b = newton_step(b, eta_rest, Z, cluster, mu, omega, log_kernel, z_max)
    return b


def curvature(m: Array, eta_rest: Array, Z: Array, cluster: Array, omega: Array,
              log_kernel: Callable[[Array], Array]):
    """Cholesky factors of H_i = Omega + sum_j w_ij z_ij z_ij' at m (N, q) (a BatchedChol or
    GeneralChol over N clusters)."""
    _, w = eta_derivatives(log_kernel, _eta(eta_rest, Z, cluster, m))
    return cholesky(omega + _cluster_sums(Z, cluster, w, None, m.shape[0])[1])


def guided_effects(z: Array, eta_rest: Array, Z: Array, cluster: Array, mu: Array,
                   omega: Array, log_kernel: Callable[[Array], Array],
                   steps: int = NEWTON_STEPS) -> tuple[Array, Array]:
    """b = m + L^{-T} z for every cluster and the log-Jacobian of z -> b.

    Args:
        z: the sampler's coordinates (N, q).
        eta_rest, Z, cluster, mu, omega, log_kernel: as in `newton_step`; none may depend on z.
        steps: number of Newton steps for the mode.
    Returns:
        b (N, q) and log|db/dz| = -sum_i log|L_i| (()).
    """
    m = conditional_mode(eta_rest, Z, cluster, mu, omega, log_kernel, z.shape[0], steps)
    chol = curvature(m, eta_rest, Z, cluster, omega, log_kernel)
    return m + chol.solve_upper(z), -0.5 * chol.log_det()
