"""Warmup (Stan's windowed adaptation) and sampling of several chains in one jitted program.

Chains are vectorised with vmap (or run one after the other, `chain_method="sequential"`) and
spread over the local devices when there are several. Both phases run as a host loop over
equal chunks of a jitted `lax.scan`, so that a progress bar can move between chunks, memory for the kept draws is
allocated chunk by chunk, and an interrupt keeps what was finished. The random key of step t
of chain c is fold_in(key_c, t): the draws do not depend on the chunking.

The sampler sees a flat vector x (d,) of unconstrained parameters; `make_logdensity(data)`
builds its log density inside the jitted function so that the data enter as arguments rather
than as compile-time constants. Warmup and sampling share ONE compiled chunk function (an
`adapting` flag switches the adaptation off), and compiled chunks are kept in a small cache
keyed by what determines the program (model spec, method, sampler settings, shapes), so a
second `sample` of the same model, or of the same model on other data of the same sizes,
does not compile again.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections import OrderedDict
from typing import Any, Callable, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.window_adaptation import build_schedule

from .adaptation import WarmupState, as_metric, metric_factors, warmup_fns
from .config import SamplerConfig
from .progress import bar_kind, make_bar

Array = jax.Array

COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
_compile_total = [0.0]


def _on_duration(event: str, duration: float, **kwargs) -> None:
    if event in COMPILE_EVENTS:
        _compile_total[0] += duration


jax.monitoring.register_event_duration_secs_listener(_on_duration)


def compile_seconds() -> float:
    """Seconds JAX has spent tracing, lowering and compiling in this process so far (every
    program, the library's and the user's): the difference over a call is what it compiled."""
    return _compile_total[0]


def default_cache_dir() -> str:
    """$JAXGLMM_CACHE_DIR, else $XDG_CACHE_HOME/jaxglmm/xla, else ~/.cache/jaxglmm/xla."""
    if os.environ.get("JAXGLMM_CACHE_DIR"):
        return os.environ["JAXGLMM_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxglmm", "xla")


def use_persistent_cache() -> str | None:
    """Turn on JAX's persistent compilation cache in `default_cache_dir()`, so that a repeat
    fit of the same shapes in a new process loads its programs instead of compiling them.
    Left alone when the user has set a cache directory (jax_compilation_cache_dir) or set
    JAXGLMM_COMPILATION_CACHE=0 (the opt-out). Returns the directory in use, or None."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    if os.environ.get("JAXGLMM_COMPILATION_CACHE", "1").strip().lower() in ("0", "false",
                                                                            "no", "off"):
        return None
    path = default_cache_dir()
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    # every program, the small ones too: a fit runs about 50 eager setup ops (0.01-0.2 s of
    # compiling each) that JAX's default of 1 s would compile again in every new process
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


def default_chain_method(backend: str | None = None) -> str:
    """The chain method for a backend: "sequential" on CPU, "vectorized" elsewhere.

    On CPU a vmapped NUTS step lasts as long as the longest trajectory of its chains and
    batching gains little, so chains one after the other are faster (measured on 2 cores,
    4 chains x 500/500: sim_logit warmup 24.7 -> 11.4 s and sampling 13.2 -> 6.6 s, compile
    6.0 -> 3.3 s; cbpp and sleepstudy warmup -45%, sampling +30%); on a GPU a batch of
    chains costs about what one chain costs, so they are vectorised."""
    backend = jax.default_backend() if backend is None else backend
    return "sequential" if backend == "cpu" else "vectorized"


def map_chains(fn: Callable, chain_method: str, *args):
    """fn applied to every chain (leading axis of each leaf of args): vmapped, or one chain
    after the other with lax.map (then a chain's arithmetic does not depend on how many
    chains run beside it)."""
    if chain_method == "sequential":
        return jax.lax.map(lambda a: fn(*a), args)
    return jax.vmap(fn)(*args)


class ChainState(NamedTuple):
    """Where the chains stand: BlackJAX states and adaptation states, leading axis C."""

    state: Any          # HMCState or MALAState
    warmup: WarmupState  # step_size (C,), inverse_mass_matrix (C, d) or (C, d, d)

    @property
    def step_size(self) -> Array:
        return self.warmup.step_size

    @property
    def inverse_mass_matrix(self) -> Array:
        return self.warmup.inverse_mass_matrix


class ChainEnd(NamedTuple):
    """Where a run's chains stopped, as host arrays: what continuing the run needs (C chains,
    d coordinates of the flat unconstrained position, in the sampler's basis)."""

    position: np.ndarray                   # (C, d)
    step_size: np.ndarray                  # (C,) adapted step sizes
    inverse_mass_matrix: np.ndarray        # (C, d), (C, d, d) or a flat block (C, k*k + d - k)
    logdensity: np.ndarray | None = None   # (C,) log density at `position`
    logdensity_grad: np.ndarray | None = None  # (C, d) its gradient
    sample_keys: np.ndarray | None = None  # (C, 2) key data of the chains' sampling keys
    layout: tuple | None = None            # ((name, shape), ...) blocks of the flat position


def chain_end(chains: ChainState, sample_keys, layout: tuple | None) -> ChainEnd:
    """The ChainEnd of the sampler's final `chains`, with the key data of the sampling keys
    and the position's layout (as ravel_pytree lays out the position dict)."""
    state = chains.state
    return ChainEnd(position=np.asarray(state.position),
                    step_size=np.asarray(chains.step_size),
                    inverse_mass_matrix=np.asarray(chains.inverse_mass_matrix),
                    logdensity=np.asarray(state.logdensity),
                    logdensity_grad=np.asarray(state.logdensity_grad),
                    sample_keys=None if sample_keys is None else np.asarray(sample_keys),
                    layout=layout)


def _kernel_fns(config: SamplerConfig):
    """(init(x, logdensity), step(key, state, logdensity, step_size, imm, factors) ->
    (state, stats)); factors: the `metric_factors` of imm."""
    if config.kernel == "nuts":
        kernel = blackjax.nuts.build_kernel()

        def step(key, state, logdensity, step_size, imm, factors):
            new, info = kernel(key, state, logdensity, step_size, as_metric(imm, factors, config),
                               max_num_doublings=config.max_tree_depth)
            return new, {"acceptance_rate": info.acceptance_rate,
                         "diverging": info.is_divergent,
                         "tree_depth": info.num_trajectory_expansions,
                         "n_steps": info.num_integration_steps,
                         "energy": info.energy}
        return blackjax.nuts.init, step
    if config.kernel == "hmc":
        kernel = blackjax.hmc.build_kernel()

        def step(key, state, logdensity, step_size, imm, factors):
            new, info = kernel(key, state, logdensity, step_size, as_metric(imm, factors, config),
                               num_integration_steps=config.num_integration_steps)
            return new, {"acceptance_rate": info.acceptance_rate,
                         "diverging": info.is_divergent,
                         "n_steps": jnp.asarray(config.num_integration_steps),
                         "energy": info.energy}
        return blackjax.hmc.init, step
    kernel = blackjax.mala.build_kernel()

    def step(key, state, logdensity, step_size, imm, factors):
        new, info = kernel(key, state, logdensity, step_size)
        return new, {"acceptance_rate": info.acceptance_rate,
                     "diverging": jnp.zeros((), bool),
                     "n_steps": jnp.ones((), jnp.int32)}
    return blackjax.mala.init, step


def _chunk_length(num_warmup: int, num_draws: int, target: int) -> int:
    """Scan length shared by both phases: at most `target`, no longer than either phase."""
    return max(1, min(target, max(num_warmup, num_draws)))


def map_batch(fn: Callable, batch: str | None, n_shared: int = 0) -> Callable:
    """fn lifted over a leading data-set axis of its first arguments (all but the last
    `n_shared`, which every data set shares): vmapped ("vectorized"), one data set after the
    other ("sequential", lax.map), or fn itself (batch None)."""
    if batch is None:
        return fn

    def lifted(*args):
        split = len(args) - n_shared
        own, shared = args[:split], args[split:]
        return map_chains(lambda *a: fn(*a, *shared), batch, *own)
    return lifted


def _make_chunk_fn(make_logdensity: Callable, transform: Callable, config: SamplerConfig,
                   mesh=None, batch: str | None = None):
    """The jitted chunk: `k` steps of every chain (vmapped or in sequence, see
    `SamplerConfig.chain_method`), adapting or not. With a mesh the chains are split over its
    devices (shard_map along "chain"), each device running its own block of chains.

    (states, ws, (data, scale (d,)), keys (C,), t (k,), stage (k,), window_end (k,),
     active (k,), adapting ()) -> ((states, ws), (kept: dict of (C, k, ...), stats: dict of
     (C, k)))
    With `batch` ("vectorized" or "sequential") every argument but t, stage, window_end,
    active and adapting has a leading data-set axis B, and so have the outputs (B, C, ...).
    """
    _, step = _kernel_fns(config)
    _, ws_update, _ = warmup_fns(config)

    def chunk(states, ws, data_scale, keys, t, stage, window_end, active, adapting):
        data, scale = data_scale
        logdensity = make_logdensity(data)

        def one_chain(state, ws, key):
            def body(carry, xs):
                state, ws, factors = carry
                t, stage, window_end, active = xs
                step_key, draw_key = jax.random.split(jax.random.fold_in(key, t))
                new_state, info = step(step_key, state, logdensity, ws.step_size,
                                       ws.inverse_mass_matrix, factors)
                # `adapting`, `stage` and `window_end` are the same for every chain (not
                # batched by the vmap), so these conds really skip work while sampling
                new_ws = jax.lax.cond(
                    adapting,
                    lambda ws: ws_update(ws, stage, window_end, new_state.position,
                                         info["acceptance_rate"], scale),
                    lambda ws: ws, ws)
                new = jax.tree.map(lambda a, b: jnp.where(active, a, b),
                                   (new_state, new_ws), (state, ws))
                info["lp"] = new[0].logdensity
                # the matrix changes only at a window's end: factorise it there
                factors = jax.lax.cond(
                    adapting & window_end,
                    lambda: metric_factors(new[1].inverse_mass_matrix, config),
                    lambda: factors)
                return (*new, factors), (transform(new[0].position, data, draw_key), info)
            factors = metric_factors(ws.inverse_mass_matrix, config)
            (state, ws, _), out = jax.lax.scan(body, (state, ws, factors),
                                               (t, stage, window_end, active))
            return (state, ws), out

        return map_chains(one_chain, config.chain_method, states, ws, keys)

    chunk = map_batch(chunk, batch, n_shared=5)
    if mesh is None:
        return jax.jit(chunk)
    P = jax.sharding.PartitionSpec
    # the leading axis (chains, or data sets with `batch`) is split over the mesh
    lead, rest = P("chain"), P()
    data_spec = rest if batch is None else lead
    return jax.jit(jax.shard_map(
        chunk, mesh=mesh, in_specs=(lead, lead, data_spec, lead, rest, rest, rest, rest, rest),
        out_specs=lead, check_vma=False))


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 8


def _cached(key, build: Callable):
    """The value of `key` in the in-memory program cache, built now when absent (key None:
    always built, never kept)."""
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = build()
    if key is not None:
        _CACHE[key] = value
        while len(_CACHE) > 2 * _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def _init_program(cache_key, make_logdensity: Callable, config: SamplerConfig,
                  batch: str | None = None):
    """jit of the kernel's initial states of every chain ((C, d) positions, data; with
    `batch` both with a leading data-set axis): one jitted function per model and method,
    so that another seed does not compile again."""
    init_kernel, _ = _kernel_fns(config)

    def init(x0, data):
        return map_chains(lambda x: init_kernel(x, make_logdensity(data)),
                          config.chain_method, x0)

    def build():
        return jax.jit(map_batch(init, batch))
    key = None if cache_key is None else ("init", cache_key, config.kernel,
                                          config.chain_method, batch)
    return _cached(key, build)


def tree_shapes(tree) -> tuple:
    """(tree structure, ((shape, dtype), ...) of the leaves): what a compiled program of
    `tree` depends on."""
    leaves, treedef = jax.tree.flatten(tree)
    return (treedef, tuple((np.shape(x), jnp.result_type(x)) for x in leaves))


def _compiled_chunk(cache_key, make_logdensity, transform, config, args, mesh=None,
                    batch: str | None = None):
    """The compiled chunk for `args`, from the cache or compiled now. `cache_key` must
    determine make_logdensity and transform."""
    devices = None if mesh is None else tuple(d.id for d in mesh.devices.flat)
    key = None if cache_key is None else (cache_key, config, tree_shapes(args), devices,
                                          bool(jax.config.jax_enable_x64), batch)

    def build():
        return _make_chunk_fn(make_logdensity, transform, config, mesh,
                              batch).lower(*args).compile()
    return _cached(key, build)


def _run_phase(compiled, states, ws, data, keys, num_steps: int, k: int, start_step: int,
               schedule, adapting: bool, keep: bool, bar, thin: int = 1, lead: int = 1):
    """Run `num_steps` steps in chunks of `k`. Returns states, ws, kept draws and stats as
    lists of numpy chunks (when keep; every `thin`-th step, counted from step 0 of the
    phase), and the number of steps done (an interrupt stops early between chunks only when
    keep is True; during warmup it propagates). `lead`: the number of axes before the draw
    axis (1: chains; 2: data sets and chains)."""
    n_chunks = math.ceil(num_steps / k) if num_steps else 0
    total = n_chunks * k
    active = np.arange(total) < num_steps
    if schedule is None:
        stage = np.zeros(total, np.int32)
        window_end = np.zeros(total, bool)
    else:
        pad = total - num_steps
        stage = np.concatenate([schedule[:, 0], np.zeros(pad, np.int32)]).astype(np.int32)
        window_end = np.concatenate([schedule[:, 1], np.zeros(pad, np.int32)]).astype(bool)
    kept: dict[str, list] = {}
    stats: dict[str, list] = {}
    done = 0
    adapting = np.asarray(adapting)
    try:
        for c in range(n_chunks):
            sl = slice(c * k, (c + 1) * k)
            t = np.arange(start_step + c * k, start_step + (c + 1) * k)
            (states, ws), (draws, info) = compiled(states, ws, data, keys, t, stage[sl],
                                                   window_end[sl], active[sl], adapting)
            n_active = int(active[sl].sum())
            if keep:
                take = np.flatnonzero((t[:n_active] + 1) % thin == 0)
                for name, value in draws.items():
                    kept.setdefault(name, []).append(np.take(np.asarray(value), take, lead))
                for name, value in info.items():
                    stats.setdefault(name, []).append(np.take(np.asarray(value), take, lead))
            else:
                jax.block_until_ready(ws.step_size)
            done += n_active
            if bar is not None:
                bar.update(n_active)
    except KeyboardInterrupt:
        if not keep or not kept:
            raise
        warnings.warn(f"sampling interrupted: returning the {done} draws per chain finished "
                      "so far.", RuntimeWarning, stacklevel=4)
    return states, ws, kept, stats, done


def _chain_sharding(chains: int, chain_method: str = "sequential"):
    """A sharding that spreads the chain axis (or with a batch of data sets, the data-set
    axis) over the local devices (the most of them that divide its length evenly), or None
    when that is one. Vectorised chains on CPU stay on
    one device: split over CPU devices, the vmapped program of epil with a dense matrix
    (d = 66) hung with every XLA thread waiting (jaxlib 0.10), and on CPU a batch of chains
    is the slower layout anyway (`default_chain_method`)."""
    devices = jax.local_devices()
    if chain_method == "vectorized" and devices[0].platform == "cpu":
        return None
    n = max(k for k in range(1, min(len(devices), chains) + 1) if chains % k == 0)
    if n < 2:
        return None
    mesh = jax.sharding.Mesh(np.asarray(devices[:n]), ("chain",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("chain"))


def sample_chains(make_logdensity: Callable, transform: Callable, data, x0: Array,
                  warmup_keys: Array, sample_keys: Array, num_warmup: int, num_draws: int,
                  config: SamplerConfig, *, cache_key=None, progress: bool = False,
                  chunk: int = 50, timings: dict | None = None, thin: int = 1,
                  resume: tuple | None = None, start_step: int = 0, scale=None,
                  batch: str | None = None, label: str = ""):
    """Warm up and sample every chain.

    Args:
        make_logdensity: data -> (x (d,) -> ()) log density of the flat position.
        transform: (x (d,), data, key) -> dict of arrays kept per draw (the natural-scale draw;
            the key serves draws of b given psi); computed on the device.
        data: pytree of arrays passed into the jitted code.
        x0: initial flat positions (C, d).
        warmup_keys, sample_keys: one key per chain (C,) for each phase; step t of chain c
            uses fold_in(key_c, t).
        num_warmup, num_draws: iterations of each phase.
        cache_key: hashable value that determines make_logdensity and transform, for the
            compile cache (None: no caching).
        timings: if given, filled with compile_s (everything JAX traced, lowered and
            compiled during the call), warmup_s and sampling_s (without compilation), and
            chunk (the scan length used).
        thin: keep every thin-th draw.
        resume: (state, step_size (C,), inverse_mass_matrix) of an earlier run, state a dict
            of position (C, d), logdensity (C,), logdensity_grad (C, d): no warmup, the
            chains go on from there with these settings (see `Fit.extend`).
        start_step: index of the first sampling step (a continued run goes on with the
            keys of the steps after the ones done, so it equals one longer run).
        scale: (d,) typical size of each coordinate of x (default 1): the mass matrix is
            adapted in x / scale, so that warmup does not depend on the units of the data.
        batch: None, or "vectorized" / "sequential": B data sets at once (vmapped, or one
            after the other in the same program): every leaf of data, x0 (B, C, d), the
            keys (B, C) and scale (B, d) have a leading data-set axis, and so have the
            returned draws (B, C, S, ...), stats and state; no resume, one device.
        label: text before the progress bars' phase names (e.g. "data sets 1-64").
    When there are several devices and they divide the chains, the chains are spread over
    them (sharded along the chain axis, each device running its block of chains). With
    config.chain_method="sequential" the draws are bit-identical to one device's; with
    "vectorized" they agree up to rounding (XLA:CPU rounds batched products and sums of
    other batch sizes differently), so long runs differ in their draws but not in their
    posterior. On a fixed device layout both are reproducible bit for bit.
    Returns:
        (draws: dict name -> (C, S, ...) numpy, stats: dict name -> (C, S) numpy,
         ChainState after the last draw, number of draws finished per chain).
    """
    init_kernel, _ = _kernel_fns(config)
    ws_init, _, ws_final = warmup_fns(config)
    timings = {} if timings is None else timings
    timings.setdefault("compile_s", 0.0)
    C, d = x0.shape[-2:]
    lead = 1 if batch is None else 2

    t0, c0 = time.perf_counter(), compile_seconds()
    sharding = _chain_sharding(x0.shape[0], config.chain_method if batch is None else batch)
    if sharding is not None:
        x0, warmup_keys, sample_keys = (jax.device_put(a, sharding)
                                        for a in (x0, warmup_keys, sample_keys))
        if batch is not None:
            data = jax.device_put(data, sharding)
    states = _init_program(cache_key, make_logdensity, config, batch)(x0, data)
    initial_step = 1.0 if num_warmup else 0.1
    scale = jnp.ones(x0.shape[:-2] + (d,), x0.dtype) if scale is None else \
        jnp.asarray(scale, x0.dtype)

    def chains_ws(scale):
        return jax.vmap(lambda _: ws_init(d, initial_step, x0.dtype, scale))(jnp.arange(C))
    ws = chains_ws(scale) if batch is None else jax.vmap(chains_ws)(scale)
    if resume is not None:
        if num_warmup or batch is not None:
            raise ValueError("resume: a continued run has no warmup and one data set.")
        chain_state, step_size, imm = resume
        # the saved log density and gradient, not recomputed ones: the first step then
        # starts from exactly the numbers the earlier run ended with
        states = states._replace(**{k: jnp.asarray(v, x0.dtype)
                                    for k, v in chain_state.items()})
        ws = ws._replace(step_size=jnp.asarray(step_size, x0.dtype),
                         inverse_mass_matrix=jnp.asarray(imm, x0.dtype))
    if sharding is not None:  # (lax.map's outputs come back replicated)
        states, ws = jax.device_put((states, ws), sharding)
        if batch is not None:
            scale = jax.device_put(scale, sharding)
    # a continued run uses the chunk length of the run it continues: the same compiled
    # program, so the same floating-point results
    k = chunk if resume is not None else _chunk_length(num_warmup, num_draws, chunk)
    probe = np.arange(k)
    data = (data, scale)
    args = (states, ws, data, warmup_keys, probe, np.zeros(k, np.int32), np.zeros(k, bool),
            np.ones(k, bool), np.asarray(True))
    compiled = _compiled_chunk(cache_key, make_logdensity, transform, config, args,
                               None if sharding is None else sharding.mesh, batch)

    kind = bar_kind(progress)
    bar = make_bar(num_warmup, label + "warmup", kind)
    try:
        schedule = np.asarray(build_schedule(num_warmup), np.int32) if num_warmup else None
        states, ws, *_ = _run_phase(compiled, states, ws, data, warmup_keys, num_warmup, k,
                                    0, schedule, True, False, bar)
    finally:
        if bar is not None:
            bar.close()
    if num_warmup:
        # elementwise: no rounding that depends on C (or B)
        final = jax.vmap(ws_final) if batch is None else jax.vmap(jax.vmap(ws_final))
        step_size, imm = final(ws)
        ws = ws._replace(step_size=step_size, inverse_mass_matrix=imm)
    jax.block_until_ready(ws.step_size)
    t1, c1 = time.perf_counter(), compile_seconds()

    bar = make_bar(num_draws, label + "sampling", kind)
    try:
        states, ws, kept, stats, done = _run_phase(
            compiled, states, ws, data, sample_keys, num_draws, k, start_step, None, False,
            True, bar, thin, lead)
    finally:
        if bar is not None:
            bar.close()
    t2, c2 = time.perf_counter(), compile_seconds()
    timings["compile_s"] += c2 - c0
    timings["warmup_s"] = t1 - t0 - (c1 - c0)
    timings["chunk"] = k
    timings["devices"] = 1 if sharding is None else len(sharding.mesh.devices)
    timings["sampling_s"] = t2 - t1 - (c2 - c1)
    draws = {name: np.concatenate(v, axis=lead) for name, v in kept.items()}
    out_stats = {name: np.concatenate(v, axis=lead) for name, v in stats.items()}
    return draws, out_stats, ChainState(states, ws), done
