"""Many fits in one program: `sample_many` fits one model to B data sets (a simulation study,
a bootstrap, a power analysis) with one compiled sampler, vmapped over the data sets (or run
one after the other inside the program), and returns a `FitBatch` of ordinary `Fit`s.

"The same model" means the model's formula or design, family, priors as resolved (defaults
included: they were scaled to the model's own data and stay fixed, so every data set is fitted
under the same prior, as a simulation study or SBC needs), parametrisation, factor and dtype.
Data set k is fitted exactly as `model_k.sample(seed=seeds[k], ...)` would fit it, model_k
being `batch_models(model, datasets)[k]`: with batch_method="sequential" draw for draw, bit
for bit; vectorized, equal up to rounding (XLA rounds batched sums differently).

Data sets go into groups that share one compiled program: the same spec (sizes, numbers of
levels, priors, parametrisation), sampler settings and basis. Within a group, data sets with
fewer observations are padded to the largest with copies of their first row of weight 0 (they
add exactly 0 to the log density; with padding the arithmetic, and so the draws, agree with a
separate fit only up to rounding). A group runs in equal sub-batches of at most `batch_size`
data sets (the last padded with repeats whose draws are dropped), so one program serves it.
"""
from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field, replace

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .density import ModelData
from .design import check_finite
from .fitting import (Prepared, Run, cache_key, position_layout, prepare, run_info,
                      sampler_scale)
from .formula import parse_formula
from .model import Model, build_model, centred_option
from .problem import build_problem
from .results import Fit
from .sampling import (chain_end, compile_seconds, default_chain_method, sample_chains,
                       tree_shapes, use_persistent_cache)

BATCH_METHODS = ("auto", "vectorized", "sequential")


# ------------------------------------------------------------------ the data sets' models


def fixed_priors(model: Model):
    """The model's priors as resolved, every block given (nothing left to the defaults)."""
    return replace(model.priors, defaults=())


def response_problem(model: Model, y) -> str | None:
    """Why `y` cannot be a response at `model`'s design (its length, a value that is not
    finite or outside the family's support, with the first bad row), or None."""
    n = model.arrays.y.shape[0]
    family = model.spec.family
    y = np.asarray(y, dtype=float)
    if y.shape != (n,):
        return f"a response needs the model's {n} observations, got shape {y.shape}."
    try:
        check_finite(y, "y")
        family.check_response(y, model.arrays.trials if family.has_trials else None)
    except ValueError as err:
        return str(err)
    return None


def _response_models(model: Model, ys) -> list[Model]:
    out = []
    for k, y in enumerate(ys):
        problem = response_problem(model, y)
        if problem is not None:
            raise ValueError(f"datasets[{k}]: {problem}")
        y = np.array(y, dtype=float, copy=True)
        arrays = replace(model.arrays, y=y)
        design = model.design
        if design is not None:
            data = design.data
            if design.response[0] == "column":
                data = data.copy()
                data[design.response[1]] = y
            design = replace(design, arrays=arrays, data=data)
        out.append(_rebuild(model, arrays, design))
    return out


def _rebuild(model: Model, arrays, design) -> Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a flat prior: warned for `model`
        return build_model(arrays, model.spec.family, fixed_priors(model),
                           centred_option(model), model.factor, model.dtype,
                           formula=model.formula, design=design, na_action=model.na_action)


def _frame_models(model: Model, frames, weights) -> list[Model]:
    if model.formula is None:
        raise ValueError("datasets: data frames need a model built from a formula; give "
                         "this model's data sets as responses (an array (B, n_obs)).")
    if weights is None and not np.all(model.arrays.weights == 1.0):
        raise ValueError("weights: the model has observation weights; say which column of "
                         "each data set holds them (weights='column').")
    out = []
    for k, frame in enumerate(frames):
        try:
            design = parse_formula(model.formula, frame, model.spec.family,
                                   model.na_action, weights)
        except ValueError as err:
            raise ValueError(f"datasets[{k}]: {err}") from None
        out.append(_rebuild(model, design.arrays, design))
    return out


def batch_models(model: Model, datasets, weights=None) -> list[Model]:
    """One Model per data set: `model` with another data frame (formula models) or another
    response at the same design (an array (B, n_obs), or a list of (n_obs,) arrays), with
    the model's priors as resolved and its parametrisation (`fixed_priors`,
    `centred_option`). `weights`: the weights column of the frames (when the model has
    weights). Nothing the caller passed is modified.

    Raises:
        ValueError: naming datasets[k] for a frame that does not parse or a response of the
            wrong length or outside the family's support.
    """
    if isinstance(datasets, pd.DataFrame) or isinstance(datasets, (str, bytes)):
        raise ValueError("datasets: must be a list of data frames or of responses, or an "
                         "array (B, n_obs) of responses; got one "
                         f"{type(datasets).__name__}.")
    if isinstance(datasets, np.ndarray) or isinstance(datasets, jax.Array):
        arr = np.asarray(datasets)
        if arr.ndim != 2:
            raise ValueError(f"datasets: an array of responses must be (B, n_obs), got shape "
                             f"{arr.shape}.")
        items = list(arr)
    else:
        try:
            items = list(datasets)
        except TypeError:
            raise ValueError(f"datasets: must be a list of data frames or of responses, got "
                             f"{type(datasets).__name__}.") from None
    if not items:
        raise ValueError("datasets: is empty; give at least one data set.")
    frames = [isinstance(d, pd.DataFrame) for d in items]
    if all(frames):
        return _frame_models(model, items, weights)
    if any(frames):
        k = frames.index(not frames[0])
        raise ValueError(f"datasets[{k}]: mixes data frames and responses; give one kind.")
    return _response_models(model, items)


# ---------------------------------------------------------------------- the batched run


def _seeds(seed, B: int) -> list:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return [int(seed) + k for k in range(B)]
    if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key) \
            and seed.ndim == 0:
        return list(jax.random.split(seed, B))
    seeds = list(seed) if isinstance(seed, (list, tuple, np.ndarray)) else None
    if seeds is None or len(seeds) != B:
        raise ValueError(f"seed: an integer (data set k uses seed + k), a key, or one seed "
                         f"per data set ({B}); got {seed!r}.")
    return seeds


def padded_data(data: ModelData, n: int) -> ModelData:
    """`data` with rows appended up to n observations: copies of row 0 of weight 0 (and a
    weights array even when none are appended)."""
    extra = n - data.y.shape[0]

    def pad(a):
        return jnp.concatenate([a, jnp.repeat(a[:1], extra, axis=0)])
    w = jnp.ones_like(data.y) if data.weights is None else data.weights
    return data._replace(y=pad(data.y), X=pad(data.X), trials=pad(data.trials),
                         offset=pad(data.offset),
                         weights=jnp.concatenate([w, jnp.zeros(extra, w.dtype)]),
                         terms=tuple((pad(Z), pad(c)) for Z, c in data.terms))


def _group_key(model: Model, ready: Prepared) -> tuple:
    layout, shift = ready.basis
    return (cache_key(model, ready.settings, layout), replace(ready.settings, seed=None),
            jax.tree.structure(shift), tuple(np.shape(v) for v in ready.template.values()))


def _sub_batches(members: list, batch_size: int) -> list[list]:
    """`members` in equal slices of at most batch_size (the last padded with repeats of its
    final member, marked None)."""
    n_parts = -(-len(members) // batch_size)
    size = -(-len(members) // n_parts)
    parts = [members[i:i + size] for i in range(0, len(members), size)]
    parts[-1] = parts[-1] + [None] * (size - len(parts[-1]))
    return parts


def _run_batch(models, ready, members, draws: int, method: str, progress: bool,
               label: str) -> list:
    """The Runs of the data sets `members` (indices into models; None: a repeat of the last
    one, run and dropped) in one program."""
    real = [m for m in members if m is not None]
    index = [m if m is not None else real[-1] for m in members]
    first = ready[index[0]]
    settings = first.settings
    layout = first.basis[0]
    n = max(models[k].arrays.y.shape[0] for k in index)

    def problem(k, pad: bool):
        data = models[k].model_data()
        return build_problem(models[k].spec, padded_data(data, n) if pad else data, layout,
                             ready[k].basis[1], settings.method, ready[k].template,
                             settings.keep_b)
    problems = [problem(k, False) for k in index]
    # padded only where the sampler's data differ in shape (the collapsed sampler's
    # sufficient statistics do not depend on the number of observations)
    padded = len({tree_shapes(p.data) for p in problems}) > 1
    if padded:
        problems = [problem(k, True) for k in index]
    scales = [sampler_scale(models[k], ready[k].template) for k in index]
    make_logdensity, transform = problems[0].make_logdensity, problems[0].transform
    data = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[p.data for p in problems])
    x0 = jnp.stack([ready[k].x0 for k in index])
    warmup_keys = jax.random.wrap_key_data(jnp.stack(
        [jax.random.key_data(ready[k].warmup_keys) for k in index]))
    sample_keys = jax.random.wrap_key_data(jnp.asarray(
        np.stack([ready[k].sample_keys for k in index])))
    timings: dict = {}
    out, stats, last, done = sample_chains(
        make_logdensity, transform, data, x0, warmup_keys, sample_keys, settings.warmup,
        draws, settings.sampler,
        cache_key=("batch",) + cache_key(models[index[0]], settings, layout),
        progress=progress, chunk=settings.chunk, timings=timings, thin=settings.thin,
        scale=jnp.asarray(np.stack(scales)), batch=method, label=label)
    runs = []
    for j, k in enumerate(members):
        if k is None:
            continue
        model, own = models[k], ready[k]
        own_stats = {name: v[j] for name, v in stats.items()}
        info = run_info(model, own.settings, own.basis, own_stats, timings, done)
        info.update(batch_size=len(real), batch_method=method,
                    padded_rows=n - model.arrays.y.shape[0] if padded else 0)
        end = chain_end(jax.tree.map(lambda a: a[j], last), own.sample_keys,
                        position_layout(own.template))
        runs.append((k, Run(draws={name: v[j] for name, v in out.items()},
                            sample_stats=own_stats,
                            settings=replace(own.settings, chunk=int(timings["chunk"])),
                            info=info, end=end)))
    return runs


def sample_many(model: Model, datasets, chains: int = 4, warmup: int = 1000,
                draws: int = 1000, seed=0, *, batch_size: int = 64,
                batch_method: str = "auto", weights=None, progress: bool = True,
                **options) -> "FitBatch":
    """Fit `model` to every data set of `datasets` (see `batch_models`) in as few compiled
    programs as their shapes allow: the `FitBatch`. Arguments as `GLMM.sample_many`."""
    if batch_method not in BATCH_METHODS:
        raise ValueError(f"batch_method={batch_method!r} is unknown; choose one of "
                         f"{', '.join(map(repr, BATCH_METHODS))}.")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size: must be an integer >= 1, got {batch_size!r}.")
    if batch_method == "auto":
        batch_method = default_chain_method()
    start, compile_start = time.perf_counter(), compile_seconds()
    use_persistent_cache()
    models = batch_models(model, datasets, weights)
    B = len(models)
    seeds = _seeds(seed, B)
    ready = [prepare(m, chains, warmup, draws, s, **options) for m, s in zip(models, seeds)]
    groups: dict = {}
    for k, (m, r) in enumerate(zip(models, ready)):
        groups.setdefault(_group_key(m, r), []).append(k)
    parts = [part for members in groups.values() for part in _sub_batches(members, batch_size)]
    runs: dict = {}
    with jax.enable_x64(model.dtype == "float64"):
        for g, part in enumerate(parts):
            real = [k for k in part if k is not None]
            label = (f"data sets {real[0] + 1}-{real[-1] + 1} of {B}" if len(parts) == 1 or
                     real == list(range(real[0], real[-1] + 1)) else
                     f"batch {g + 1} of {len(parts)}") + ": "
            runs.update(_run_batch(models, ready, part, draws, batch_method, progress, label))
    fits = tuple(Fit.from_run(models[k], runs[k]) for k in range(B))
    info = {"data_sets": B, "programs": len(parts), "batch_method": batch_method,
            "chains": chains, "warmup": warmup, "draws": draws,
            "wall_s": time.perf_counter() - start,
            "compile_s": compile_seconds() - compile_start, "seeds": seeds}
    batch = FitBatch(fits=fits, info=info)
    if progress:
        print(batch.summary_line(), file=sys.stderr, flush=True)
    return batch


@dataclass(frozen=True, eq=False)
class FitBatch:
    """The fits of one model to B data sets (`GLMM.sample_many`).

    Attributes:
        fits: B ordinary `Fit`s; fit_batch[k] is data set k's (its info holds the timings of
            the program that ran it, with batch_size, batch_method and padded_rows).
        info: data_sets, programs (compiled runs), batch_method, chains, warmup, draws,
            wall_s (the whole call), compile_s and the seeds used.
    """

    fits: tuple
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.fits)

    def __getitem__(self, k) -> Fit:
        return self.fits[k]

    def __iter__(self):
        return iter(self.fits)

    @property
    def num_divergences(self) -> np.ndarray:
        """Divergent transitions after warmup per data set (B,)."""
        return np.array([f.num_divergences for f in self.fits])

    def draws(self, name: str) -> np.ndarray:
        """One draws key of every fit stacked: (B, C, S, ...)."""
        return np.stack([f.draws[name] for f in self.fits])

    def summary(self, include_b: bool = False) -> pd.DataFrame:
        """Every fit's `Fit.summary` in one table indexed by (data_set, quantity)."""
        tables = {k: f.summary(include_b, warn=False) for k, f in enumerate(self.fits)}
        return pd.concat(tables, names=["data_set", "quantity"])

    def diagnostics(self) -> pd.DataFrame:
        """One row per data set: divergences, the largest R-hat, the smallest bulk and tail
        ESS over psi (the population parameters and hyperparameters) and where they are."""
        rows = []
        for f in self.fits:
            table = f.summary(warn=False)
            rows.append({"divergences": f.num_divergences,
                         "max_r_hat": float(table["r_hat"].max()),
                         "worst_r_hat": table["r_hat"].idxmax(),
                         "min_ess_bulk": float(table["ess_bulk"].min()),
                         "min_ess_tail": float(table["ess_tail"].min()),
                         "worst_ess": table["ess_bulk"].idxmin()})
        return pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="data_set"))

    def summary_line(self) -> str:
        """One line on the batch, e.g. "jaxglmm: 64 data sets x 4 chains x 1000 draws in
        9.1 s (2.3 s compiling, 1 program); 2 data sets with divergences"."""
        i = self.info
        with_div = int(np.sum(self.num_divergences > 0))
        return (f"jaxglmm: {i.get('data_sets')} data sets x {i.get('chains')} chains x "
                f"{i.get('draws')} draws ({i.get('warmup')} warmup) in "
                f"{i.get('wall_s', 0.0):.1f} s ({i.get('compile_s', 0.0):.1f} s compiling, "
                f"{i.get('programs')} program{'' if i.get('programs') == 1 else 's'}, "
                f"{i.get('batch_method')}); {with_div} data set"
                f"{'' if with_div == 1 else 's'} with divergences")

    def __repr__(self) -> str:
        return (f"FitBatch({len(self.fits)} fits, {self.info.get('batch_method')}, "
                f"divergent in {int(np.sum(self.num_divergences > 0))})")
