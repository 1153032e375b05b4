"""Stan's windowed adaptation of the step size (dual averaging) and the inverse mass matrix
(Welford; diagonal, dense, or the block form of `jaxglmm.metric`), and the metric a chain's
kernel uses, built from factors computed once per window."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
from blackjax.adaptation.step_size import dual_averaging_adaptation

from .config import SamplerConfig
from .metric import block_factors, block_metric, cholesky_factors, dense_metric, join, split

Array = jax.Array


class WarmupState(NamedTuple):
    """Step-size (dual averaging) and mass-matrix (Welford) adaptation state of one chain."""

    ss_state: Any
    imm_state: Any
    step_size: Array            # ()
    inverse_mass_matrix: Array  # (d,) or (d, d)


def metric_factors(imm: Array, config: SamplerConfig):
    """What a chain's metric needs besides `imm` itself, computed once per adaptation
    window: the Cholesky factors of a dense matrix or of a block matrix's dense block
    (`jaxglmm.metric.cholesky_factors`), () for a diagonal one."""
    if config.mass_block:
        return block_factors(imm, config.mass_block)
    if imm.ndim == 2:
        return cholesky_factors(imm)
    return ()


def as_metric(imm: Array, factors, config: SamplerConfig):
    """The inverse mass matrix as BlackJAX takes it: the diagonal array itself, or the
    metric of a dense or block matrix built from its `metric_factors`."""
    if config.mass_block:
        k = len(config.mass_block)
        return block_metric(imm, config.mass_block, imm.shape[-1] - k * k + k, factors)
    if imm.ndim == 2:
        return dense_metric(imm, factors)
    return imm


class _BlockState(NamedTuple):
    """Welford states of a block mass matrix: dense over psi, diagonal over the rest."""

    dense: Any
    diagonal: Any

    @property
    def inverse_mass_matrix(self) -> Array:
        return join(self.dense.inverse_mass_matrix, self.diagonal.inverse_mass_matrix)


def _block_estimator(psi: tuple):
    """init / update / final / to_x of Stan's windowed mass-matrix estimate for a block
    matrix (`jaxglmm.metric`): BlackJAX's dense estimator on the coordinates `psi`, its
    diagonal one on the others."""
    dense = mass_matrix_adaptation(False)
    diagonal = mass_matrix_adaptation(True)
    psi_idx = np.asarray(psi, int)
    k = len(psi_idx)

    def latent(d: int) -> np.ndarray:
        return np.setdiff1d(np.arange(d), psi_idx)

    def init(d: int) -> _BlockState:
        return _BlockState(dense[0](k), diagonal[0](d - k))

    def update(state: _BlockState, u: Array) -> _BlockState:
        return _BlockState(dense[1](state.dense, u[psi_idx]),
                           diagonal[1](state.diagonal, u[latent(u.shape[0])]))

    def final(state: _BlockState) -> _BlockState:
        return _BlockState(dense[2](state.dense), diagonal[2](state.diagonal))

    def to_x(imm_u: Array, scale: Array) -> Array:
        A, diag = split(imm_u, k)
        s_psi, s_lat = scale[psi_idx], scale[latent(scale.shape[0])]
        return join(A * jnp.outer(s_psi, s_psi), diag * s_lat**2)

    return init, update, final, to_x


DENSE_DRAWS_PER_DIM = 2


def dense_or_diagonal(imm: Array, n) -> Array:
    """A window's dense estimate (d, d), or its diagonal where the window had fewer than
    DENSE_DRAWS_PER_DIM * d draws: a dense covariance of fewer draws than about twice the
    dimension is near singular, and in the next window the chains crawl along its thin
    directions (epil with a dense matrix, d = 66, 4 x 1000/1000: 7.5 s without this rule,
    4.7 s with it; windows of 25, 50 and 100 draws are then diagonal)."""
    d = imm.shape[-1]
    return jnp.where(n >= DENSE_DRAWS_PER_DIM * d, imm, jnp.diag(jnp.diag(imm)))


def warmup_fns(config: SamplerConfig):
    """init(d, step_size, dtype, scale) / update(ws, stage, window_end, x, accept, scale) /
    final(ws) of Stan's windowed adaptation built from BlackJAX's dual averaging and Welford
    estimators.

    The mass matrix is adapted in the coordinates u = x / scale (scale (d,): a typical size
    of each coordinate, from the model): it starts at diag(scale^2), Welford sees u, and
    Stan's regularisation towards 1e-3 I acts in u. With scale = 1 this is Stan's
    adaptation; with the model's scale it no longer depends on the units of the data (a
    coefficient whose posterior sd is 1e-6 was shrunk towards variance 1e-3 and the chains
    stuck)."""
    adapt_mass = config.kernel != "mala"
    if config.mass_block:
        mm_init, mm_update, mm_final, to_x = _block_estimator(config.mass_block)
    else:
        mm_init, mm_update, mm_final = mass_matrix_adaptation(not config.dense_mass)

        def to_x(imm_u, scale):
            """An inverse mass matrix of u as one of x = scale * u."""
            return imm_u * scale**2 if imm_u.ndim == 1 else imm_u * jnp.outer(scale, scale)
    da_init, da_update, da_final = dual_averaging_adaptation(config.target_accept)

    def init(d: int, step_size: float, dtype, scale) -> WarmupState:
        imm_state = mm_init(d)
        imm_state = jax.tree.map(
            lambda a: jnp.asarray(a, dtype) if jnp.issubdtype(jnp.asarray(a).dtype,
                                                               jnp.floating) else a,
            imm_state)
        ss = da_init(jnp.asarray(step_size, dtype))
        return WarmupState(ss, imm_state, jnp.asarray(step_size, dtype),
                           to_x(imm_state.inverse_mass_matrix, jnp.asarray(scale, dtype)))

    def update(ws: WarmupState, stage, window_end, x, accept, scale) -> WarmupState:
        ss = da_update(ws.ss_state, accept)
        imm_state = ws.imm_state
        if adapt_mass:
            imm_state = jax.lax.cond(stage == 1, lambda s: mm_update(s, x / scale),
                                     lambda s: s, imm_state)
        ws = WarmupState(ss, imm_state, jnp.exp(ss.log_step_size), ws.inverse_mass_matrix)

        def end_window(ws):
            imm_state = mm_final(ws.imm_state)
            imm_u = imm_state.inverse_mass_matrix
            if config.dense_mass:
                imm_u = dense_or_diagonal(imm_u, ws.imm_state.wc_state.sample_size)
            ss = da_init(da_final(ws.ss_state))
            return WarmupState(ss, imm_state, jnp.exp(ss.log_step_size), to_x(imm_u, scale))
        if adapt_mass:
            ws = jax.lax.cond(window_end, end_window, lambda w: w, ws)
        return ws

    def final(ws: WarmupState):
        return jnp.exp(ws.ss_state.log_step_size_avg), ws.inverse_mass_matrix

    return init, update, final
