"""Warmup (Stan's windowed adaptation) and sampling of several chains in one jitted program.

Chains are vectorised with vmap. Both phases run as a host loop over equal chunks of a jitted
`lax.scan`, so that a progress bar can move between chunks, memory for the kept draws is
allocated chunk by chunk, and an interrupt keeps what was finished. The random key of step t
of chain c is fold_in(key_c, t): the draws do not depend on the chunking.

The sampler sees a flat vector x (d,) of unconstrained parameters; `make_logdensity(data)`
builds its log density inside the jitted functions so that the data enter as arguments rather
than as compile-time constants.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.adaptation.window_adaptation import build_schedule

Array = jax.Array

KERNELS = ("nuts", "hmc", "mala")


@dataclass(frozen=True)
class SamplerConfig:
    """Sampler settings.

    Attributes:
        kernel: "nuts", "hmc" or "mala" (the BlackJAX algorithms of those names).
        target_accept: acceptance rate targeted by the step-size adaptation (for MALA the
            default is 0.574, the optimal rate of Roberts and Rosenthal).
        max_tree_depth: NUTS's maximum number of trajectory doublings.
        dense_mass: adapt a dense (True) or diagonal (False) inverse mass matrix.
        num_integration_steps: leapfrog steps per HMC transition.
    """

    kernel: str = "nuts"
    target_accept: float | None = None
    max_tree_depth: int = 10
    dense_mass: bool = False
    num_integration_steps: int = 32

    def __post_init__(self):
        kernel = self.kernel
        named = [(blackjax.nuts, "nuts"), (blackjax.hmc, "hmc"), (blackjax.mala, "mala")]
        if not isinstance(kernel, str):
            match = [name for obj, name in named if obj is kernel]
            if not match:
                raise ValueError(
                    "kernel: must be 'nuts', 'hmc', 'mala' or one of blackjax.nuts, "
                    f"blackjax.hmc, blackjax.mala; got {kernel!r}.")
            kernel = match[0]
        if kernel not in KERNELS:
            raise ValueError(f"kernel={kernel!r} is unknown; choose one of {', '.join(KERNELS)}.")
        object.__setattr__(self, "kernel", kernel)
        if self.target_accept is None:
            object.__setattr__(self, "target_accept", 0.574 if kernel == "mala" else 0.8)
        if not 0.0 < self.target_accept < 1.0:
            raise ValueError(f"target_accept: must be in (0, 1), got {self.target_accept}.")
        if int(self.max_tree_depth) != self.max_tree_depth or self.max_tree_depth < 1:
            raise ValueError(f"max_tree_depth: must be a positive integer, "
                             f"got {self.max_tree_depth}.")
        if int(self.num_integration_steps) != self.num_integration_steps \
                or self.num_integration_steps < 1:
            raise ValueError("num_integration_steps: must be a positive integer, "
                             f"got {self.num_integration_steps}.")


class WarmupState(NamedTuple):
    """Step-size (dual averaging) and mass-matrix (Welford) adaptation state of one chain."""

    ss_state: Any
    imm_state: Any
    step_size: Array            # ()
    inverse_mass_matrix: Array  # (d,) or (d, d)


class ChainState(NamedTuple):
    """Where a chain stands after warmup or sampling: the BlackJAX state and its tuning."""

    state: Any                   # HMCState or MALAState, leaves with a leading chain axis
    step_size: Array             # (C,)
    inverse_mass_matrix: Array   # (C, d) or (C, d, d)


def _kernel_fns(config: SamplerConfig):
    """(init(x, logdensity), step(key, state, logdensity, step_size, imm) -> (state, stats))."""
    if config.kernel == "nuts":
        kernel = blackjax.nuts.build_kernel()

        def step(key, state, logdensity, step_size, imm):
            new, info = kernel(key, state, logdensity, step_size, imm,
                               max_num_doublings=config.max_tree_depth)
            return new, {"acceptance_rate": info.acceptance_rate,
                         "diverging": info.is_divergent,
                         "tree_depth": info.num_trajectory_expansions,
                         "n_steps": info.num_integration_steps,
                         "energy": info.energy}
        return blackjax.nuts.init, step
    if config.kernel == "hmc":
        kernel = blackjax.hmc.build_kernel()

        def step(key, state, logdensity, step_size, imm):
            new, info = kernel(key, state, logdensity, step_size, imm,
                               num_integration_steps=config.num_integration_steps)
            return new, {"acceptance_rate": info.acceptance_rate,
                         "diverging": info.is_divergent,
                         "n_steps": jnp.asarray(config.num_integration_steps),
                         "energy": info.energy}
        return blackjax.hmc.init, step
    kernel = blackjax.mala.build_kernel()

    def step(key, state, logdensity, step_size, imm):
        new, info = kernel(key, state, logdensity, step_size)
        return new, {"acceptance_rate": info.acceptance_rate,
                     "diverging": jnp.zeros((), bool),
                     "n_steps": jnp.ones((), jnp.int32)}
    return blackjax.mala.init, step


def _warmup_fns(config: SamplerConfig):
    """init(d, step_size) / update(ws, stage, window_end, x, accept) / final(ws) of Stan's
    windowed adaptation built from BlackJAX's dual averaging and Welford estimators."""
    adapt_mass = config.kernel != "mala"
    mm_init, mm_update, mm_final = mass_matrix_adaptation(not config.dense_mass)
    da_init, da_update, da_final = dual_averaging_adaptation(config.target_accept)

    def init(d: int, step_size: float, dtype) -> WarmupState:
        imm_state = mm_init(d)
        imm_state = jax.tree.map(
            lambda a: jnp.asarray(a, dtype) if jnp.issubdtype(jnp.asarray(a).dtype,
                                                               jnp.floating) else a,
            imm_state)
        ss = da_init(jnp.asarray(step_size, dtype))
        return WarmupState(ss, imm_state, jnp.asarray(step_size, dtype),
                           imm_state.inverse_mass_matrix)

    def update(ws: WarmupState, stage, window_end, x, accept) -> WarmupState:
        ss = da_update(ws.ss_state, accept)
        imm_state = ws.imm_state
        if adapt_mass:
            imm_state = jax.lax.cond(stage == 1, lambda s: mm_update(s, x), lambda s: s,
                                     imm_state)
        ws = WarmupState(ss, imm_state, jnp.exp(ss.log_step_size), ws.inverse_mass_matrix)

        def end_window(ws):
            imm_state = mm_final(ws.imm_state)
            ss = da_init(da_final(ws.ss_state))
            return WarmupState(ss, imm_state, jnp.exp(ss.log_step_size),
                               imm_state.inverse_mass_matrix)
        if adapt_mass:
            ws = jax.lax.cond(window_end, end_window, lambda w: w, ws)
        return ws

    def final(ws: WarmupState):
        return jnp.exp(ws.ss_state.log_step_size_avg), ws.inverse_mass_matrix

    return init, update, final


def _chunks(total: int, target: int) -> tuple[int, int]:
    """(number of chunks, chunk length) covering `total` steps with little padding."""
    if total <= 0:
        return 0, 0
    n_chunks = max(1, math.ceil(total / target))
    return n_chunks, math.ceil(total / n_chunks)


def _compiled(fn, timings: dict | None, name: str, *args):
    """Ahead-of-time compile `fn` (a jitted function) for `args`; add the seconds spent to
    timings[name] so that compile and run times are reported apart."""
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
    return compiled


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, delay=2.0, leave=False)


def run_warmup(make_logdensity: Callable, data, x0: Array, chain_keys: Array, num_warmup: int,
               config: SamplerConfig, progress: bool = False, chunk: int = 50,
               timings: dict | None = None) -> ChainState:
    """Adapt step size and mass matrix for every chain.

    Args:
        make_logdensity: data -> (x (d,) -> ()) log density of the flat position.
        data: pytree of arrays passed into the jitted code.
        x0: initial flat positions (C, d).
        chain_keys: one key per chain (C, key).
        num_warmup: number of warmup iterations.
        timings: if given, timings["compile_s"] accumulates the compile seconds.
    Returns:
        ChainState after warmup (leading axis C).
    """
    init_kernel, step = _kernel_fns(config)
    ws_init, ws_update, ws_final = _warmup_fns(config)
    C, d = x0.shape
    if num_warmup == 0:
        eye = jnp.ones((C, d), x0.dtype) if not config.dense_mass else \
            jnp.broadcast_to(jnp.eye(d, dtype=x0.dtype), (C, d, d))
        state = jax.jit(jax.vmap(lambda x, data: init_kernel(x, make_logdensity(data)),
                                 in_axes=(0, None)))(x0, data)
        return ChainState(state, jnp.full((C,), 0.1, x0.dtype), eye)

    schedule = np.asarray(build_schedule(num_warmup), dtype=np.int32)  # (T, 2)
    n_chunks, k = _chunks(num_warmup, chunk)
    pad = n_chunks * k - num_warmup
    stage = np.concatenate([schedule[:, 0], np.zeros(pad, np.int32)])
    window_end = np.concatenate([schedule[:, 1], np.zeros(pad, np.int32)]).astype(bool)
    active = np.arange(n_chunks * k) < num_warmup

    @jax.jit
    def start(x0, data):
        logdensity = make_logdensity(data)
        states = jax.vmap(lambda x: init_kernel(x, logdensity))(x0)
        ws = jax.vmap(lambda _: ws_init(d, 1.0, x0.dtype))(jnp.arange(C))
        return states, ws

    @jax.jit
    def chunk_fn(carry, data, keys, t, stage, window_end, active):
        logdensity = make_logdensity(data)

        def one_chain(state, ws, key):
            def body(carry, xs):
                state, ws = carry
                t, stage, window_end, active = xs
                new_state, info = step(jax.random.fold_in(key, t), state, logdensity,
                                       ws.step_size, ws.inverse_mass_matrix)
                new_ws = ws_update(ws, stage, window_end, new_state.position,
                                   info["acceptance_rate"])
                new = jax.tree.map(lambda a, b: jnp.where(active, a, b),
                                   (new_state, new_ws), (state, ws))
                return new, info["diverging"]
            return jax.lax.scan(body, (state, ws), (t, stage, window_end, active))

        (states, ws), _ = jax.vmap(one_chain)(carry[0], carry[1], keys)
        return states, ws

    carry = start(x0, data)
    args = (carry, data, chain_keys, jnp.arange(k), stage[:k], window_end[:k], active[:k])
    chunk_fn = _compiled(chunk_fn, timings, "compile_s", *args)
    bar = _progress(num_warmup, progress, "warmup")
    try:
        for c in range(n_chunks):
            sl = slice(c * k, (c + 1) * k)
            carry = chunk_fn(carry, data, chain_keys, jnp.arange(c * k, (c + 1) * k),
                             stage[sl], window_end[sl], active[sl])
            if bar is not None:
                jax.block_until_ready(carry[1].step_size)
                bar.update(int(active[sl].sum()))
    finally:
        if bar is not None:
            bar.close()
    states, ws = carry
    step_size, imm = jax.vmap(ws_final)(ws)
    return ChainState(states, step_size, imm)


def run_sampling(make_logdensity: Callable, data, chain: ChainState, chain_keys: Array,
                 num_draws: int, config: SamplerConfig, transform: Callable,
                 progress: bool = False, chunk: int = 50, start_step: int = 0,
                 timings: dict | None = None):
    """Draw `num_draws` states per chain with the tuned kernel.

    Args:
        transform: (x (d,), data, key) -> dict of arrays, applied to every kept state on
            the device (the natural-scale draw; the key serves draws of b given psi), so
            only what is kept comes back to the host.
        start_step: index of the first step (keys are fold_in(key_c, start_step + t)).
        timings: if given, timings["compile_s"] accumulates the compile seconds.
    Returns:
        (draws: dict name -> (C, S, ...) numpy, stats: dict name -> (C, S) numpy,
         last ChainState, number of draws finished).
    """
    _, step = _kernel_fns(config)
    n_chunks, k = _chunks(num_draws, chunk)
    active = np.arange(n_chunks * k) < num_draws

    @jax.jit
    def chunk_fn(states, data, step_size, imm, keys, t, active):
        logdensity = make_logdensity(data)

        def one_chain(state, step_size, imm, key):
            def body(state, xs):
                t, active = xs
                step_key, draw_key = jax.random.split(jax.random.fold_in(key, t))
                new_state, info = step(step_key, state, logdensity, step_size, imm)
                new_state = jax.tree.map(lambda a, b: jnp.where(active, a, b),
                                         new_state, state)
                info["lp"] = new_state.logdensity
                return new_state, (transform(new_state.position, data, draw_key), info)
            return jax.lax.scan(body, state, (t, active))

        return jax.vmap(one_chain)(states, step_size, imm, keys)

    draws: dict[str, list] = {}
    stats: dict[str, list] = {}
    states = chain.state
    done = 0
    t = jnp.arange(start_step, start_step + k)
    chunk_fn = _compiled(chunk_fn, timings, "compile_s", states, data, chain.step_size,
                         chain.inverse_mass_matrix, chain_keys, t, active[:k])
    bar = _progress(num_draws, progress, "sampling")
    try:
        for c in range(n_chunks):
            sl = slice(c * k, (c + 1) * k)
            t = jnp.arange(start_step + c * k, start_step + (c + 1) * k)
            states, (kept, info) = chunk_fn(states, data, chain.step_size,
                                            chain.inverse_mass_matrix, chain_keys, t,
                                            active[sl])
            n_active = int(active[sl].sum())
            for name, value in kept.items():
                draws.setdefault(name, []).append(np.asarray(value[:, :n_active]))
            for name, value in info.items():
                stats.setdefault(name, []).append(np.asarray(value[:, :n_active]))
            done += n_active
            if bar is not None:
                bar.update(n_active)
    except KeyboardInterrupt:
        warnings.warn(f"sampling interrupted: returning the {done} draws per chain finished "
                      "so far.", RuntimeWarning, stacklevel=3)
    finally:
        if bar is not None:
            bar.close()
    out_draws = {name: np.concatenate(v, axis=1) for name, v in draws.items()}
    out_stats = {name: np.concatenate(v, axis=1) for name, v in stats.items()}
    last = ChainState(states, chain.step_size, chain.inverse_mass_matrix)
    return out_draws, out_stats, last, done
