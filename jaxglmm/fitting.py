"""Sampling a Model: the choices a run makes (method, mass matrix, basis, initial positions),
the `Problem` it samples, and `sample` / `extend`, which return a `Run` record.

`jaxglmm.sampling` is the generic driver underneath; `jaxglmm.results.Fit` wraps a Run.
"""
from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .basis import BASES, NONE as NONE_BASIS, centring, describe as describe_basis, to_sampler
from .config import RunSettings, SamplerConfig
from .density import natural_draw
from .keys import as_key
from .model import Model
from .parameters import LATENT, box_draw, is_latent, psi_indices
from .partial import collapsed_term
from .problem import Problem, build_problem
from .progress import report
from .sampling import (ChainEnd, chain_end, compile_seconds, default_chain_method,
                       sample_chains, use_persistent_cache)

Array = jax.Array

METHODS = ("auto", "joint", "collapsed")
# dense mass matrix up to this many sampled coordinates: cbpp (20) mixes 1.5x better per
# second with dense, epil (66) 1.8x better with diagonal (4 x 1000/1000, two CPU devices:
# the dense matrix's warmup windows hold fewer draws than coordinates, and each step costs more)
DENSE_MAX_DIM = 40
MASS_MATRICES = ("auto", "dense", "diagonal", "block")


class Run(NamedTuple):
    """What a run returns: natural-scale draws (C, S, ...), sample stats (C, S), its
    settings, info (method, parametrisation, sizes, seed, timings) and the chains' end."""

    draws: dict
    sample_stats: dict
    settings: RunSettings
    info: dict
    end: ChainEnd | None


def check_count(value, name: str, minimum: int) -> int:
    """`value` as an int, or a ValueError naming `name` unless it is an integer >= minimum."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}.")
    return int(value)


# ------------------------------------------------------------------ the run's choices


def resolve_method(model: Model, method: str) -> str:
    """"joint" or "collapsed" for `method` ("auto": collapsed when b can be integrated out)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of "
                         f"{', '.join(map(repr, METHODS))}.")
    if method == "collapsed" and not model.can_collapse:
        raise ValueError("method='collapsed': b can be integrated out only for the "
                         "gaussian family with the identity link; use method='joint'.")
    if method == "auto":
        return "collapsed" if model.can_collapse else "joint"
    return method


def collapsed_terms(model: Model, method: str = "auto") -> tuple:
    """Indices of the random-effect terms whose b `method` integrates out: none for "joint";
    for "collapsed" the only term, or with several terms the one with the most levels
    (`jaxglmm.partial`)."""
    method = resolve_method(model, method)
    if method == "joint":
        return ()
    return (0,) if len(model.spec.terms) == 1 else (collapsed_term(model.spec),)


def integrated_names(model: Model, method: str) -> set:
    """Position names of the latent effects that `method` integrates out."""
    terms = [model.spec.terms[k] for k in collapsed_terms(model, method)]
    return {t.name(base) for t in terms for base in LATENT}


def n_sampled(model: Model, method: str, latent: bool = True) -> int:
    """Number of unconstrained parameters the sampler moves under `method` (without the
    random effects when not `latent`)."""
    gone = integrated_names(model, method)
    return int(sum(np.size(v) for k, v in model.init_loc.items()
                   if k not in gone and (latent or not is_latent(k))))


def mass_matrix_form(model: Model, method: str, mass_matrix: str = "auto",
                     dense_mass: bool | None = None) -> str:
    """The inverse mass matrix warmup adapts under `method`: "dense", "diagonal" or
    "block" (see `GLMM.sample`; "auto": dense up to DENSE_MAX_DIM sampled parameters,
    diagonal for the joint sampler of a gaussian identity model)."""
    if dense_mass is not None:
        if not isinstance(dense_mass, (bool, np.bool_)):
            raise ValueError(f"dense_mass: must be True, False or None, got {dense_mass!r}.")
        return "dense" if dense_mass else "diagonal"
    if mass_matrix not in MASS_MATRICES:
        raise ValueError(f"mass_matrix={mass_matrix!r} is unknown; choose one of "
                         f"{', '.join(map(repr, MASS_MATRICES))}.")
    sampled_b = n_sampled(model, method) > n_sampled(model, method, latent=False)
    if mass_matrix == "block" and not sampled_b:
        raise ValueError("mass_matrix='block': needs sampled random effects "
                         "(method='joint'); b is integrated out here.")
    if mass_matrix != "auto":
        return mass_matrix
    if method == "joint" and model.spec.family.collapsible:
        return "diagonal"
    return "dense" if n_sampled(model, method) <= DENSE_MAX_DIM else "diagonal"


def sampler_basis(model: Model, method: str, basis: str) -> tuple:
    """(Basis, shift: nested dict of numpy arrays) of the sampler's basis for the population
    effects (see `jaxglmm.basis`); basis="none" keeps the user's."""
    if basis not in BASES:
        raise ValueError(f"basis={basis!r} is unknown; choose one of "
                         f"{', '.join(map(repr, BASES))}.")
    if basis == "none":
        return NONE_BASIS, {"alpha": {}, "levels": {}}
    return centring(model.arrays, model.spec, collapsed_terms(model, method))


def describe_parametrisation(model: Model, method: str) -> str:
    """fit.info["parametrisation"]: how each term's b is handled."""
    spec, gone = model.spec, collapsed_terms(model, method)
    if len(spec.terms) == 1 and gone:
        return "b integrated out"
    sampled = [t for k, t in enumerate(spec.terms) if k not in gone]
    kinds = {t.parametrisation for t in sampled}
    text = kinds.pop() if len(kinds) == 1 and not gone else ", ".join(
        f"{t.parametrisation} {t.key[1:]}" for t in sampled)
    if model.centred_auto:
        text += " (chosen by the data)"
    if gone:
        text = f"b{spec.terms[gone[0]].key} integrated out; " + text
    return text


# ---------------------------------------------------------------- positions and problem


def initial_position(model: Model, key) -> dict:
    """A random unconstrained position (dict of arrays) near the data's scale: each leaf
    uniform in the model's initial box (see README "Initial values")."""
    f = np.float64 if jax.config.jax_enable_x64 else np.float32
    loc = {k: np.asarray(v, f) for k, v in model.init_loc.items()}
    scale = {k: np.asarray(model.init_scale[k], f) for k in loc}
    return box_draw(as_key(key), loc, scale)


def initial_positions(model: Model, seed, chains: int, method: str = "auto") -> list[dict]:
    """The starting positions `sample(chains=..., seed=seed, method=method)` uses, one dict
    per chain (without the random effects when b is integrated out)."""
    method = resolve_method(model, method)
    init_key = jax.random.split(as_key(seed), 3)[0]
    gone = integrated_names(model, method)
    return [{k: v for k, v in initial_position(model, k_c).items() if k not in gone}
            for k_c in jax.random.split(init_key, chains)]


def initial_points(model: Model, seed, chains: int, method: str = "auto",
                   basis: str = "centred") -> np.ndarray:
    """The flat starting points (chains, d) that `sample(chains=..., seed=seed, method=...,
    basis=...)` starts from, in the sampler's basis: what `problem(...).make_logdensity`
    takes (`initial_positions` as flat vectors)."""
    method = resolve_method(model, method)
    with jax.enable_x64(model.dtype == "float64"):
        return _starts(model, seed, chains, method, sampler_basis(model, method, basis))[1]


def _starts(model: Model, seed, chains: int, method: str, basis: tuple):
    """(the starting positions (dicts), the same as flat points (chains, d) in the sampler's
    `basis` = (layout, shift)) for a resolved `method`."""
    layout, shift = basis
    starts = initial_positions(model, seed, chains, method)
    return starts, np.stack([np.asarray(ravel_pytree(to_sampler(s, layout, shift))[0])
                             for s in starts])


def sampler_scale(model: Model, template: dict) -> np.ndarray:
    """A typical size of each coordinate of the flat position (as ravel_pytree orders
    `template`): the half-widths of the initial box, which follow the data's units (prior
    sds of beta and mu, sd guesses of b, 0.5 for log scales). Warmup adapts the mass matrix
    relative to them, so rescaling y does not change how well it mixes."""
    flat, _ = ravel_pytree({k: np.broadcast_to(np.asarray(model.init_scale[k], float),
                                               np.shape(v))
                            for k, v in template.items()})
    return np.asarray(flat)


def constrain(model: Model, position: dict) -> dict:
    """Natural-scale parameters of one unconstrained position: beta, mu, tau, sigma, D, sd,
    corr, b, and the random hyperparameters d, gamma."""
    laplace = any(t.laplace for t in model.spec.terms)  # only their b needs the data
    return natural_draw(position, model.spec, data=model.model_data() if laplace else None)


def problem(model: Model, method: str, template: dict, keep_b: bool = True,
            basis: str = "none") -> Problem:
    """The `Problem` (data for the jitted code, unravel, make_logdensity, transform) that
    `method` samples, for positions shaped like `template` (an `initial_position`); without
    `keep_b` the draws leave out b (and the collapsed sampler does not draw it). The flat
    position is in the sampler's `basis` (`jaxglmm.basis`); the log density there equals
    the user's at the mapped point (a shear: unit Jacobian)."""
    method = resolve_method(model, method)
    return build_problem(model.spec, model.model_data(), *sampler_basis(model, method, basis),
                         method, template, keep_b)


# ------------------------------------------------------------------------- sampling


class Prepared(NamedTuple):
    """What a run of one model starts from: its settings, the sampler's basis (layout,
    shift), the position template, the flat starting points x0 (C, d) and the keys."""

    settings: RunSettings
    basis: tuple
    template: dict
    x0: Array
    warmup_keys: Array   # (C,) keys
    sample_keys: np.ndarray  # (C, 2) key data


def prepare(model: Model, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed=0, *,
            kernel="nuts", target_accept: float | None = None, max_tree_depth: int = 10,
            dense_mass: bool | None = None, num_integration_steps: int = 32,
            method: str = "auto", chunk: int = 50, thin: int = 1, keep_b: bool = True,
            chain_method: str = "auto", basis: str = "centred",
            mass_matrix: str = "auto") -> Prepared:
    """The checked choices and starting state of `sample`'s run (arguments as there)."""
    method = resolve_method(model, method)
    form = mass_matrix_form(model, method, mass_matrix, dense_mass)
    chains = check_count(chains, "chains", 1)
    check_count(warmup, "warmup", 0)
    draws = check_count(draws, "draws", 1)
    chunk = check_count(chunk, "chunk", 1)
    thin = check_count(thin, "thin", 1)
    if draws < thin:
        raise ValueError(f"draws: {draws} iterations with thin={thin} keep no draw.")
    if chain_method == "auto":
        chain_method = default_chain_method()
    config = SamplerConfig(kernel=kernel, target_accept=target_accept,
                           max_tree_depth=max_tree_depth, dense_mass=form == "dense",
                           num_integration_steps=num_integration_steps,
                           chain_method=chain_method)
    key = as_key(seed)
    layout, shift = sampler_basis(model, method, basis)
    with jax.enable_x64(model.dtype == "float64"):
        _, warmup_key, sample_key = jax.random.split(key, 3)
        starts, x0 = _starts(model, key, chains, method, (layout, shift))
        template = starts[0]
        if form == "block":
            config = replace(config, mass_block=psi_indices(template))
        settings = RunSettings(method=method, sampler=config, chains=chains,
                               warmup=int(warmup), chunk=chunk, thin=thin, keep_b=bool(keep_b),
                               basis=basis, seed=seed if isinstance(seed, int) else None)
        sample_keys = np.asarray(jax.random.key_data(jax.random.split(sample_key, chains)))
        return Prepared(settings, (layout, shift), template, jnp.asarray(x0),
                        jax.random.split(warmup_key, chains), sample_keys)


def sample(model: Model, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed=0, *,
           progress: bool = True, **options) -> Run:
    """Window adaptation then `draws` draws of every chain, in one jitted program: the Run
    (arguments as documented at `jaxglmm.GLMM.sample`; `options` those of `prepare`)."""
    compile_start = compile_seconds()
    use_persistent_cache()
    ready = prepare(model, chains, warmup, draws, seed, **options)
    with jax.enable_x64(model.dtype == "float64"):
        run = _run(model, ready.settings, ready.basis, ready.template, ready.x0,
                   ready.warmup_keys, ready.sample_keys, ready.settings.warmup, draws,
                   progress)
    run = run._replace(info=dict(run.info, compile_s=compile_seconds() - compile_start))
    report(run.info, int(np.sum(run.sample_stats["diverging"])), progress)
    return run


def cache_key(model: Model, settings: RunSettings, layout) -> tuple:
    """What determines a model's compiled programs besides the shapes of their arguments."""
    return (model.spec, settings.method, settings.keep_b, layout)


def run_info(model: Model, settings: RunSettings, basis: tuple, stats: dict, timings: dict,
             steps: int) -> dict:
    """fit.info of a run of `model` (`steps`: its sampling iterations so far)."""
    layout, shift = basis
    config = settings.sampler
    return {"method": settings.method,
            "parametrisation": describe_parametrisation(model, settings.method),
            "factor": model.factor, "chains": settings.chains, "warmup": settings.warmup,
            "draws": next(iter(stats.values())).shape[1], "thin": settings.thin,
            "steps": steps, "keep_b": settings.keep_b,
            "mass_matrix": ("dense" if config.dense_mass else
                            "block" if config.mass_block else "diagonal"),
            "chain_method": config.chain_method, "seed": settings.seed, "dtype": model.dtype,
            "basis": settings.basis,
            "basis_detail": describe_basis(layout, shift, model.position_names()),
            **timings}


def position_layout(template: dict) -> tuple:
    """((name, shape), ...) of the position dict, as ravel_pytree lays it out."""
    return tuple((name, tuple(int(n) for n in np.shape(template[name])))
                 for name in sorted(template))


def _run(model: Model, settings: RunSettings, basis: tuple, template: dict, x0, warmup_keys,
         sample_keys: np.ndarray, warmup: int, steps: int, progress: bool,
         resume: ChainEnd | None = None, start_step: int = 0) -> Run:
    """Sample `steps` iterations (after `warmup` adaptation ones, or continuing from the
    chains' end `resume` at step `start_step`) from the flat positions x0 (C, d)."""
    layout, shift = basis
    data, unravel, make_logdensity, transform = build_problem(
        model.spec, model.model_data(), layout, shift, settings.method, template,
        settings.keep_b)
    timings: dict = {}
    state = None if resume is None else (
        {"position": resume.position, "logdensity": resume.logdensity,
         "logdensity_grad": resume.logdensity_grad},
        resume.step_size, resume.inverse_mass_matrix)
    out, stats, last, done = sample_chains(
        make_logdensity, transform, data, x0, warmup_keys,
        jax.random.wrap_key_data(jnp.asarray(sample_keys)), warmup, steps, settings.sampler,
        cache_key=cache_key(model, settings, layout), progress=progress,
        chunk=settings.chunk, timings=timings, thin=settings.thin, resume=state,
        start_step=start_step, scale=sampler_scale(model, template))
    info = run_info(model, settings, basis, stats, timings, start_step + done)
    # the chunk length used: a continued run must use the same compiled program
    settings = replace(settings, chunk=int(timings["chunk"]))
    return Run(draws=out, sample_stats=stats, settings=settings, info=info,
               end=chain_end(last, sample_keys, position_layout(template)))


def extend(model: Model, run: Run, draws: int, progress: bool = True) -> Run:
    """`run` continued by `draws` iterations from the chains' end, with the adapted step
    size and mass matrix and no new warmup: the joined Run (old draws then new ones) equals
    one run of the combined length with the same seed."""
    draws = check_count(draws, "draws", 1)
    end, settings, info = run.end, run.settings, run.info
    if end is None or end.logdensity is None or end.sample_keys is None or settings is None:
        raise ValueError("extend: this fit does not hold the chains' last state.")
    template = initial_positions(model, 0, 1, settings.method)[0]
    with jax.enable_x64(model.dtype == "float64"):
        f = jnp.float64 if model.dtype == "float64" else jnp.float32
        x0 = jnp.asarray(end.position, f)
        dummy = jax.random.split(jax.random.key(0), settings.chains)
        more = _run(model, settings, sampler_basis(model, settings.method, settings.basis),
                    template, x0, dummy, end.sample_keys, 0, draws, progress, resume=end,
                    start_step=info["steps"])
    joined = {k: np.concatenate([run.draws[k], v], axis=1) for k, v in more.draws.items()}
    stats = {k: np.concatenate([run.sample_stats[k], v], axis=1)
             for k, v in more.sample_stats.items()}
    new_info = dict(more.info, draws=info["draws"] + more.info["draws"],
                    warmup_s=info.get("warmup_s", 0.0),
                    sampling_s=info.get("sampling_s", 0.0) + more.info["sampling_s"],
                    compile_s=info.get("compile_s", 0.0) + more.info.get("compile_s", 0.0))
    report(dict(more.info, warmup=0), int(np.sum(more.sample_stats["diverging"])), progress)
    return more._replace(draws=joined, sample_stats=stats, info=new_info)
