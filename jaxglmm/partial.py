"""Partial collapse for gaussian models with several random-effect terms (DESIGN.md section 3).

One term c (the one with the most levels) has its b integrated out exactly; the other terms'
b are sampled with psi. Given them, the rows of level i of term c are

    y_i ~ N(o_i + Z_ci mu_c, Z_ci D_c Z_ci' + I / tau),
    o = offset + X beta + sum_{k != c} z_k' b_k[cluster_k],

so with r = y - o - Z_c mu_c, v_i = Z_ci' r_i (a segment sum) and A_i = Omega_c +
tau Z_ci'Z_ci, the collapsed sampler's Woodbury form (`collapsed.marginal_from_residual`)
gives the likelihood. One evaluation is one pass over the observations, like the joint
sampler's, but NUTS moves N_c q_c fewer coordinates and term c's covariance is no longer
tied to its b. b_c is drawn exactly for every kept draw:
b_ci | rest ~ N(A_i^{-1}(Omega_c mu_c + tau Z_ci'(y_i - o_i)), A_i^{-1}).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .collapsed import draw_from_precision, marginal_from_residual, level_precision
from .design import largest_term
from .density import (ModelData, ModelSpec, Psi, linear_predictor, log_prior_b, log_prior_psi,
                      random_effects_and_log_jacobian, unpack, weighted)

Array = jax.Array


class PartialData(NamedTuple):
    """The observations and the collapsed term's per-level Z'Z."""

    data: ModelData
    ZtZ: Array  # (N_c, q_c, q_c)


def collapsed_term(spec: ModelSpec) -> int:
    """The term whose b is integrated out: the most levels (then the most coefficients,
    N_k q_k; then the first)."""
    return largest_term([(t.N, t.q) for t in spec.terms])


def partial_data(data: ModelData, spec: ModelSpec, c: int) -> PartialData:
    """PartialData for term c (the per-level weighted Z'WZ computed once)."""
    Z, cluster = data.terms[c]
    Zw = Z if data.weights is None else Z * data.weights[:, None]
    ZtZ = jax.ops.segment_sum(Zw[:, :, None] * Z[:, None, :], cluster,
                              num_segments=spec.terms[c].N)
    return PartialData(data, ZtZ)


def _rest(position: dict, psi: Psi, pdata: PartialData, spec: ModelSpec, c: int):
    """(the sampled terms' b with None at c, the log-Jacobian of Laplace-guided ones,
    y - o (n_obs,), Z_c, cluster_c)."""
    data = pdata.data
    bs, log_jac = random_effects_and_log_jacobian(position, psi, spec, data, skip=c)
    Z, cluster = data.terms[c]
    return bs, log_jac, data.y - linear_predictor(bs, psi.beta, data), Z, cluster


def log_posterior_partial(position: dict, pdata: PartialData, spec: ModelSpec,
                          c: int) -> Array:
    """log p(psi, b_{k != c}, hyper | y) up to a constant, at an unconstrained position
    without term c's latent effects, ()."""
    psi, log_jac = unpack(position, spec)
    bs, b_jac, y_o, Z, cluster = _rest(position, psi, pdata, spec, c)
    t, term = psi.terms[c], spec.terms[c]
    r = y_o - Z @ t.mu
    w = pdata.data.weights
    wr = weighted(r, w)  # weighted likelihood: sums over rows carry w
    v = jax.ops.segment_sum(Z * wr[:, None], cluster, num_segments=term.N)
    _, chol_A = level_precision(t, term, psi.tau, pdata.ZtZ)
    n = jnp.asarray(r.shape[0], r.dtype) if w is None else jnp.sum(w)
    loglik = marginal_from_residual(chol_A, t.logdet_omega, psi.tau, v, r @ wr, n, term.N)
    return (loglik + log_prior_b(position, psi, bs, spec) + log_prior_psi(psi, spec) + log_jac
            + b_jac)


def draw_b_partial(key: Array, position: dict, pdata: PartialData, spec: ModelSpec,
                   c: int) -> tuple:
    """Every term's b: the sampled ones from the position, term c's one exact draw from
    p(b_c | psi, the others, y)."""
    psi, _ = unpack(position, spec)
    bs, _, y_o, Z, cluster = _rest(position, psi, pdata, spec, c)
    t, term = psi.terms[c], spec.terms[c]
    omega, chol_A = level_precision(t, term, psi.tau, pdata.ZtZ)
    Zty = jax.ops.segment_sum(Z * weighted(y_o, pdata.data.weights)[:, None], cluster,
                              num_segments=term.N)
    b_c = draw_from_precision(key, chol_A, omega @ t.mu + psi.tau * Zty)
    return tuple(b_c if k == c else b for k, b in enumerate(bs))
