"""Benchmark jaxglmm against nutpie (PyMC models) and NumPyro on the models of
benchmarks/suite/models.json (a copy of ../shared/bench).

    python benchmarks/run.py [--quick] [--models a,b] [--chains 4 --warmup 1000 --draws 1000]
                             [--seed 1] [--out benchmarks/results] [--peers nutpie,numpyro]
                             [--nutpie-kinds auto] [--nutpie-cores N] [--scaling]

Every model is fitted with jaxglmm with all its defaults (method: collapsed for gaussian
models, joint otherwise; its data-driven centred/non-centred choice; its mass-matrix rule; its
chain method, sequential on CPU and vectorised on a GPU) and with two peers, each in the
parametrisation a careful user would write (the Cholesky factor of D; b non-centred, centred
where the data dominate, or integrated out for gaussian models), same data, priors, chains,
warmup, draws and seed:

- nutpie (benchmarks/pymc_models.py) with its defaults: numba backend, diagonal mass matrix
  adapted from draws and gradients, target acceptance 0.8, tree depth 10, its own jittered
  starting points, chains in parallel threads on min(chains, CPUs) cores (--nutpie-cores 1
  runs them one after the other). Its joint model is centred where jaxglmm's data rule picks
  centred (cbpp, epil; --nutpie-kinds auto, the default), non-centred otherwise; gaussian
  models add the marginal model. Before sampling, nutpie's compiled log density is checked
  equal to jaxglmm's up to a constant at matched points (column "logp check").
- NumPyro NUTS (benchmarks/numpyro_models.py): the joint model, centred or non-centred by the
  same rule as nutpie's (--numpyro-kinds), the marginal model of Lai, Domke and Sheldon too
  for gaussian ones, with its log density checked the same way, jaxglmm's sampler
  settings (target acceptance 0.8, tree depth 10, the same chain_method, see
  --numpyro-chains: one chain after the other on CPU; NumPyro's mass matrix dense by
  jaxglmm's rule applied to NumPyro's own dimension, see --numpyro-mass) and the same
  starting points on the natural scale.

Method labels carry the parametrisation (nc / c: non-centred / centred b), "dense" for a dense
mass matrix, "seq" when the chains run one after the other, "N threads" for nutpie's parallel
chains; the "parametrisation" column says it in words. Each fit runs in its own subprocess, so
that its peak memory (ru_maxrss) and its compilation are its own.

Times in the table (seconds, wall clock):
  compile s   time spent tracing, lowering and compiling (JAX's compile events, the union of
              their time spans while the fit runs; nutpie: nutpie.compile_pymc_model, i.e.
              PyTensor's rewrites and numba); a first "tiny run" would not measure it for the
              JAX engines, because neither reuses compiled code across runs of other lengths.
              nutpie's compiled model is warmed by a tiny run (first_call_s in the JSON).
  warmup s    warmup (adaptation) time without the compilation inside it.
  sampling s  time to draw and transform the kept draws, without compilation.
  run s       warmup + sampling: what the user waits for once the model is compiled. nutpie
              reports no phase times, so its run s is the wall time of nutpie.sample and its
              warmup / sampling columns (shown with "~") split it by leapfrog steps.
  grad ms     one jitted value-and-gradient of the log density for all chains at once
              (vmapped), median of several calls: the cost per leapfrog step (nutpie: chains x
              one call of its numba function from Python, call overhead included).
ESS/s is the smallest bulk ESS over psi (every quantity of `catalogue.reference_draws`:
beta, mu, sigma, tau, D, sd, corr, d, gamma) divided by run s (warmup + draws, compile
excluded; the JSON keeps ess_per_sampling_s too); "jaxglmm / this" is jaxglmm's ESS/s over
the row's; "max z vs jaxglmm" is the largest |difference of the two posterior means| /
combined MCSE over psi, a check that both sample the same posterior. A second table gives per
model jaxglmm's ESS/s against the best row of each peer (with the parametrisation it used):
the ratio to the better of the two and to each. NumPyro runs MCMC.warmup() then MCMC.run() (to
time the phases apart), which compiles two programs where a single run() compiles one. For
sim_lmm_big (200k observations) the peers run only the per-gradient timing (a full joint run
costs hours); --numpyro-full / --nutpie-full run them anyway.

--scaling: gaussian (make_data.sim_lmm, priors of sim_lmm_big) and bernoulli
(make_data.sim_logit, priors of sim_logit) models at 1e3, 1e4 and 1e5 clusters: per-gradient
times for every method, and ESS/s from a short run up to --scaling-sample-max clusters
(jaxglmm and NumPyro only).

Results: tables on stdout and JSON (every row, the settings and the machine) in
<out>/<date>-<host>[-quick|-scaling][-2, -3, ... for later runs of the day].json.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK_MODELS = ("sleepstudy", "cbpp", "epil")
NUMPYRO_GRAD_ONLY = ("sim_lmm_big",)
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
SCALING = {"gaussian": ("sim_lmm", "sim_lmm_big"), "bernoulli": ("sim_logit", "sim_logit")}


# ======================================================================== worker (one fit)

class CompileClock:
    """Collects the time spans of JAX's trace / lower / compile events (time.time() clock)."""

    def __init__(self):
        import jax.monitoring
        self.spans: list[tuple[float, float]] = []

        def listener(event, start, end, **kwargs):
            if event in COMPILE_EVENTS:
                self.spans.append((start, end))
        jax.monitoring.register_event_time_span_listener(listener)

    def within(self, t0: float, t1: float) -> float:
        """Seconds of [t0, t1] covered by compile spans (union: nested spans count once)."""
        clipped = sorted((max(a, t0), min(b, t1)) for a, b in self.spans if b > t0 and a < t1)
        total, end = 0.0, -float("inf")
        for a, b in clipped:
            if b > end:
                total += b - max(a, end)
                end = b
        return total


def _peak_mib() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _load_make_data():
    import catalogue
    path = catalogue.bench_root() / "make_data.py"
    spec = importlib.util.spec_from_file_location("make_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entry_and_data(task):
    """(entry name, entry, data frame) of a task: a models.json entry, or a simulation with
    the priors of an entry (scaling study)."""
    from catalogue import load_catalogue, load_data
    catalogue = load_catalogue()
    if task.get("sim"):
        entry = catalogue[task["entry"]]
        df = getattr(_load_make_data(), task["sim"])(task["n_clusters"])
        return task["entry"], entry, df
    entry = catalogue[task["model"]]
    return task["model"], entry, load_data(entry)


def _summaries(draws: dict) -> dict:
    """Per quantity: mean, sd, bulk and tail ESS, R-hat."""
    import numpy as np
    from jaxglmm import diagnostics
    out = {}
    for name, x in draws.items():
        x = np.asarray(x, dtype=float)
        out[name] = {"mean": float(x.mean()), "sd": float(x.std(ddof=1)),
                     "mcse_mean": float(diagnostics.mcse_mean(x)),
                     "ess_bulk": float(diagnostics.ess_bulk(x)),
                     "ess_tail": float(diagnostics.ess_tail(x)),
                     "r_hat": float(diagnostics.rhat(x))}
    return out


def _median_call_ms(fn, *args, reps: int = 7, budget_s: float = 5.0) -> float:
    """Median wall time (ms) of fn(*args) after one compiling call; at least 3 calls."""
    import jax
    import numpy as np
    jax.block_until_ready(fn(*args))
    times = []
    start = time.perf_counter()
    while len(times) < reps and (len(times) < 3 or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return 1000.0 * float(np.median(times))


def _jaxglmm_grad_ms(glmm, method: str, chains: int, seed: int) -> float:
    """Per-gradient cost of the log density jaxglmm's sampler moves on (`method`), for
    `chains` chains (vmapped), from the same pieces `GLMM.sample` builds (`_problem`)."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    with jax.enable_x64(glmm.dtype == "float64"):
        starts = glmm.initial_positions(seed, chains, method)
        data, _, make_logdensity, _ = glmm.problem(method, starts[0])
        x0 = jnp.stack([ravel_pytree(s)[0] for s in starts])
        fn = jax.jit(jax.vmap(jax.value_and_grad(lambda x, d: make_logdensity(d)(x)),
                              in_axes=(0, None)))
        return _median_call_ms(fn, x0, data)


def _numpyro_grad_ms(problem, init) -> float:
    """Per-gradient cost of NumPyro's potential for all chains (vmapped); init: ParamInfo."""
    import jax
    potential = problem.potential_fn()
    fn = jax.jit(jax.vmap(jax.value_and_grad(potential), in_axes=(0, None)))
    return _median_call_ms(fn, init.z, problem.data)


def _fit_jaxglmm(glmm, method, task, clock):
    """jaxglmm's fit. fit.info gives sampling_s, and warmup_s without the compile_s of its
    sampler program; from them the warmup and sampling windows are placed at the end of the
    call, and every compile span (the chunk program, and the small ones of the initial
    positions and sufficient statistics) is counted in compile_s, as for NumPyro."""
    import numpy as np
    import catalogue
    T0 = time.time()
    fit = glmm.sample(chains=task["chains"], warmup=task["warmup"], draws=task["draws"],
                      seed=task["seed"], method=method, progress=False)
    T3 = time.time()
    info = fit.info
    t1 = T3 - info["sampling_s"]
    t0 = t1 - info["warmup_s"] - info.get("compile_s", 0.0)
    return {
        "compile_s": clock.within(T0, T3),
        "compile_warmup_s": clock.within(T0, t1),
        "compile_sampling_s": clock.within(t1, T3),
        "warmup_s": (t1 - t0) - clock.within(t0, t1),
        "sampling_s": info["sampling_s"] - clock.within(t1, T3),
        "wall_s": T3 - T0,
        "library_compile_s": info.get("compile_s"),
        "parametrisation": info.get("parametrisation"),
        "mass_matrix": info.get("mass_matrix"),
        "factor": info.get("factor", "D"),
        "chain_method": info.get("chain_method", "vectorized"),
        "steps_per_draw": float(np.mean(fit.sample_stats["n_steps"])),
        "divergences": fit.num_divergences,
        "params": _summaries(catalogue.reference_draws(fit)),
    }


def _fit_numpyro(problem, glmm, task, clock):
    """NumPyro's warmup then sampling; the starting points are computed inside the timed
    window (jaxglmm computes its own inside `sample`)."""
    import jax
    import numpy as np
    sys.path.insert(0, str(HERE))
    import numpyro_models as nm

    key_w, key_s = jax.random.split(jax.random.PRNGKey(task["seed"]))
    mcmc = nm.make_mcmc(problem, task["chains"], task["warmup"], task["draws"],
                        dense_mass=task["dense_mass"], chain_method=task["chain_method"])
    T0 = time.time()
    init = (nm.initial_params(problem, glmm, task["seed"], task["chains"])
            if task["init"] == "jaxglmm" else None)
    mcmc.warmup(key_w, init_params=init, **problem.data)
    jax.block_until_ready(mcmc.post_warmup_state)
    T1 = time.time()
    mcmc.run(key_s, extra_fields=("num_steps", "diverging"), **problem.data)
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    extra = mcmc.get_extra_fields(group_by_chain=True)
    T2 = time.time()
    return {
        "compile_s": clock.within(T0, T2),
        "compile_warmup_s": clock.within(T0, T1),
        "compile_sampling_s": clock.within(T1, T2),
        "warmup_s": T1 - T0 - clock.within(T0, T1),
        "sampling_s": T2 - T1 - clock.within(T1, T2),
        "wall_s": T2 - T0,
        "mass_matrix": "dense" if task["dense_mass"] else "diagonal",
        "chain_method": task["chain_method"],
        "steps_per_draw": float(np.mean(extra["num_steps"])),
        "divergences": int(np.sum(extra["diverging"])),
        "params": _summaries(problem.reference_draws(samples)),
    }


def _nutpie_check_logp(problem, compiled, glmm, seed: int, n_points: int = 3) -> float:
    """Largest |(nutpie - jaxglmm) - (the same at the first point)| of the log density at
    `n_points` matched points (jaxglmm's random initial positions, mapped through the natural
    scale): nutpie's own compiled log density (numba) equals jaxglmm's up to a constant."""
    import jax
    from jaxglmm import collapsed
    import pymc_models as pmm
    ours = glmm.logdensity_fn
    if problem.kind == "marginal":
        stats = collapsed.sufficient_stats(glmm.model_data(), glmm.spec.terms[0].N)
        ours = (lambda pos: collapsed.log_posterior_collapsed(
            {k: v for k, v in pos.items() if k != "z"}, stats, glmm.spec))
    diffs = []
    for key in jax.random.split(jax.random.key(seed + 1000), n_points):
        pos = glmm.initial_position(key)
        x = pmm.flat_point(problem, problem.unconstrained_from_natural(glmm.constrain(pos)))
        diffs.append(float(compiled.logp_func(x)[0]) - float(ours(pos)))
    return max(abs(d - diffs[0]) for d in diffs)


def _nutpie_grad_ms(compiled, chains: int, reps: int = 21) -> float:
    """chains x the median time of one nutpie log density and gradient (its numba function
    called from Python, call overhead included): nutpie evaluates each chain apart."""
    import numpy as np
    x = np.zeros(compiled.n_dim)
    compiled.logp_func(x)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        compiled.logp_func(x)
        times.append(time.perf_counter() - t)
    return 1000.0 * chains * float(np.median(times))


def _fit_nutpie(problem, compiled, task):
    """nutpie.sample with its defaults (diagonal mass matrix adapted from draws and gradients,
    target acceptance 0.8, tree depth 10, its own jittered starting points, chains in
    parallel threads on min(chains, CPUs) cores unless --nutpie-cores). The compiled model is
    warmed by a tiny run first (excluded). nutpie reports no phase times: run_s is the wall
    time of warmup + draws; warmup_s and sampling_s split it by the leapfrog steps of each
    phase (an estimate)."""
    import numpy as np
    import nutpie
    kwargs = {} if task.get("nutpie_cores") is None else {"cores": task["nutpie_cores"]}
    t = time.time()
    nutpie.sample(compiled, chains=1, tune=5, draws=5, seed=task["seed"] + 1,
                  progress_bar=False, **kwargs)
    first_call_s = time.time() - t
    T1 = time.time()
    trace = nutpie.sample(compiled, chains=task["chains"], tune=task["warmup"],
                          draws=task["draws"], seed=task["seed"], progress_bar=False, **kwargs)
    T2 = time.time()
    steps_w = float(trace.warmup_sample_stats["n_steps"].sum())
    steps_s = float(trace.sample_stats["n_steps"].sum())
    run_s = T2 - T1
    cores = task.get("nutpie_cores") or min(task["chains"], os.cpu_count() or 1)
    return {
        "first_call_s": first_call_s,
        "warmup_s": run_s * steps_w / (steps_w + steps_s),
        "sampling_s": run_s * steps_s / (steps_w + steps_s),
        "run_s": run_s,
        "split_estimated": True,
        "wall_s": T2 - T1,
        "mass_matrix": "diagonal",
        "chain_method": "sequential" if cores == 1 else f"parallel ({cores} threads)",
        "nutpie_cores": cores,
        "steps_per_draw": float(np.mean(trace.sample_stats["n_steps"])),
        "divergences": int(np.sum(trace.sample_stats["diverging"])),
        "params": _summaries(problem.reference_draws(trace.posterior)),
    }


def _data_rule_centred(glmm) -> bool:
    """jaxglmm's data-driven choice for the joint model (`glmm` built with centred=None):
    centred b where the data dominate the prior; gaussian models, which jaxglmm collapses,
    are non-centred when sampled jointly."""
    return bool(not glmm.can_collapse and glmm.spec.terms[0].centred)


def _glmm_like(entry, df, centred: bool):
    import catalogue
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return catalogue.model_from_entry(entry, data=df, centred=centred)


def _numpyro_check_logp(problem, glmm, seed: int, n_points: int = 3) -> float:
    """As _nutpie_check_logp, for NumPyro's potential (minus the log density)."""
    import jax
    from jaxglmm import collapsed
    ours = glmm.logdensity_fn
    if problem.kind == "marginal":
        stats = collapsed.sufficient_stats(glmm.model_data(), glmm.spec.terms[0].N)
        ours = (lambda pos: collapsed.log_posterior_collapsed(
            {k: v for k, v in pos.items() if k != "z"}, stats, glmm.spec))

    @jax.jit
    def difference(position, data):
        params = problem.unconstrained_from_natural(glmm.constrain(position))
        return -problem.potential_fn()(params, data) - ours(position)

    diffs = [float(difference(glmm.initial_position(key), problem.data))
             for key in jax.random.split(jax.random.key(seed + 1000), n_points)]
    return max(abs(d - diffs[0]) for d in diffs)


def _run_nutpie(row, name, entry, df, task, glmm_auto):
    """The PyMC model of the entry: build, compile with nutpie (numba), check its log density
    against jaxglmm's, then sample and/or time the gradient."""
    import pymc_models as pmm
    kind = task["kind"]
    if kind == "auto":    # jaxglmm's data-driven rule: centred where the data dominate
        kind = "centred" if _data_rule_centred(glmm_auto) else "joint"
    row["method"] = f"nutpie {kind}"
    t = time.time()
    problem = pmm.make_problem(name, entry, df, kind)
    row["build_s"] = time.time() - t
    t = time.time()
    compiled = pmm.compile_nutpie(problem)
    row["compile_s"] = time.time() - t
    glmm = _glmm_like(entry, df, centred=kind == "centred")
    row["logp_check"] = _nutpie_check_logp(problem, compiled, glmm, task["seed"])
    row["dimension"] = problem.dimension
    row["parametrisation"] = {"joint": "non-centred", "centred": "centred",
                              "marginal": "b integrated out"}[kind]
    if task["kind"] == "auto":
        row["parametrisation"] += " (chosen by the data)"
    if task["sample"]:
        row.update(_fit_nutpie(problem, compiled, task))
        row["peak_mib"] = _peak_mib()
    if task["grad"]:
        row["grad_ms"] = _nutpie_grad_ms(compiled, task["chains"])


def _dense_max_dim() -> int:
    """jaxglmm's rule for its default mass matrix (dense up to this many parameters)."""
    from jaxglmm.fitting import DENSE_MAX_DIM
    return int(DENSE_MAX_DIM)


def run_worker(task: dict) -> dict:
    """One (model, engine, method) fit and/or gradient timing, in this process."""
    import jax
    jax.config.update("jax_enable_x64", True)
    clock = CompileClock()
    import catalogue
    sys.path.insert(0, str(HERE))
    import numpyro_models as nm

    name, entry, df = _entry_and_data(task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # flat-prior notices
        glmm = catalogue.model_from_entry(entry, data=df)
    row = {"n_obs": int(len(df)), "N": int(glmm.spec.terms[0].N), "p": glmm.spec.p, "q": glmm.spec.terms[0].q,
           "setup_mib": _peak_mib()}
    if task["engine"] == "nutpie":
        _run_nutpie(row, name, entry, df, task, glmm)
    elif task["engine"] == "jaxglmm":
        method = "collapsed" if glmm.can_collapse else "joint"
        row["method"] = f"jaxglmm {method}"
        if task["sample"]:
            row.update(_fit_jaxglmm(glmm, method, task, clock))
            row["peak_mib"] = _peak_mib()
        if task["grad"]:
            row["grad_ms"] = _jaxglmm_grad_ms(glmm, method, task["chains"], task["seed"])
    else:
        kind = task["kind"]
        if kind == "auto":
            kind = "joint_centred" if _data_rule_centred(glmm) else "joint"
        problem = nm.make_problem(name, entry, df, kind)
        row["method"] = f"numpyro {kind.split('_')[0]}"
        row["parametrisation"] = {"joint": "non-centred", "joint_centred": "centred",
                                  "marginal": "b integrated out"}[kind]
        if task["kind"] == "auto":
            row["parametrisation"] += " (chosen by the data)"
        row["logp_check"] = _numpyro_check_logp(
            problem, _glmm_like(entry, df, centred=kind == "joint_centred"), task["seed"])
        if task.get("chain_method", "match") == "match":
            from jaxglmm.sampling import default_chain_method
            task["chain_method"] = default_chain_method()
        task["dense_mass"] = {"diag": False, "dense": True,
                              "match": problem.dimension <= _dense_max_dim()}[task["mass"]]
        if task["sample"]:
            row.update(_fit_numpyro(problem, glmm, task, clock))
            row["peak_mib"] = _peak_mib()
        if task["grad"]:
            init = nm.initial_params(problem, glmm, task["seed"], task["chains"])
            row["grad_ms"] = _numpyro_grad_ms(problem, init)
    if not task["sample"]:
        row["peak_mib"] = _peak_mib()
    if task["engine"] == "jaxglmm":
        row.setdefault("parametrisation", "b integrated out" if method == "collapsed"
                       else "centred" if glmm.spec.terms[0].centred else "non-centred")
    short = {"non-centred": "nc", "centred": "c"}.get(row["parametrisation"].split(" (")[0])
    chains_tag = ("seq" if row.get("chain_method") == "sequential"
                  else f"{row['nutpie_cores']} threads" if row.get("nutpie_cores") else None)
    tags = [t for t in (short, "dense" if row.get("mass_matrix") == "dense" else None,
                        chains_tag, None if task["sample"] else "grad only") if t]
    if tags:
        row["method"] += f" ({', '.join(tags)})"
    row["param_long"] = _param_long(row["parametrisation"], row.get("factor", "D"))
    for phase in ("warmup_s", "sampling_s"):
        if phase in row:   # nutpie's phases are split by leapfrog steps: shown with "~"
            row[f"{phase}_shown"] = (f"~{row[phase]:.3g}" if row.get("split_estimated")
                                     else row[phase])
    if "params" in row:
        row.update(_worst(row["params"]))
        row.setdefault("run_s", row["warmup_s"] + row["sampling_s"])
        row["ess_per_s"] = row["min_ess_bulk"] / row["run_s"]
        row["ess_per_sampling_s"] = row["min_ess_bulk"] / row["sampling_s"]
    return row


def _param_long(parametrisation: str, factor: str = "D") -> str:
    """What the sampler moves, in words: b (centred, non-centred or integrated out) and the
    covariance factor (the peers always move the Cholesky factor of D)."""
    b = parametrisation.split(" (")[0]
    b = {"non-centred": "non-centred b", "centred": "centred b"}.get(b, b)
    chosen = " (data rule)" if "chosen by the data" in parametrisation else ""
    return f"{b}{chosen}, chol({'Omega' if factor == 'omega' else 'D'})"


def _worst(params: dict) -> dict:
    """Smallest bulk and tail ESS (and where), largest R-hat over the quantities; a quantity
    whose diagnostics are not finite (e.g. constant draws) counts as the worst."""
    import math
    bulk = {k: v["ess_bulk"] if math.isfinite(v["ess_bulk"]) else 0.0
            for k, v in params.items()}
    at = min(bulk, key=bulk.get)
    tail = [v["ess_tail"] if math.isfinite(v["ess_tail"]) else 0.0 for v in params.values()]
    rhat = [v["r_hat"] if math.isfinite(v["r_hat"]) else math.inf for v in params.values()]
    return {"min_ess_bulk": bulk[at], "min_ess_bulk_at": at, "min_ess_tail": min(tail),
            "max_rhat": max(rhat)}


# ====================================================================== driver (the table)

def machine_info() -> dict:
    import jax
    import blackjax
    import numpyro
    import jaxglmm
    versions = {"jax": jax.__version__, "blackjax": blackjax.__version__,
                "numpyro": numpyro.__version__, "jaxglmm": jaxglmm.__version__}
    for name in ("pymc", "pytensor", "nutpie", "numba"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {"host": socket.gethostname(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(), "jax_devices": [str(d) for d in jax.devices()],
            "versions": versions}


def run_task(task: dict) -> dict:
    """Run one task in a fresh Python process; a failure becomes a row with its error."""
    label = task.get("model") or f"{task['sim']}(N={task['n_clusters']})"
    what = task["engine"] + ("" if task["engine"] == "jaxglmm" else f" {task['kind']}")
    print(f"  {label}: {what} ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        t = time.time()
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                               json.dumps(task), "--worker-out", str(out)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            row = {"method": what, "error": " | ".join(tail)}
            print(f"    failed: {row['error']}", file=sys.stderr, flush=True)
        else:
            row = json.loads(out.read_text())
            print(f"    done in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    row.update({k: task[k] for k in ("model", "sim", "n_clusters", "chains", "warmup", "draws",
                                     "seed") if k in task})
    return row


def _fmt(v, spec):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    return format(v, spec)


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """rows -> a markdown table of columns (header, key, format spec)."""
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k), f) for _, k, f in columns) + " |")
    return "\n".join(lines)


MAIN_COLUMNS = [("model", "model", ""), ("method", "method", ""),
                ("parametrisation", "param_long", ""), ("compile s", "compile_s", ".1f"),
                ("warmup s", "warmup_s_shown", ".3g"), ("sampling s", "sampling_s_shown", ".3g"),
                ("run s", "run_s", ".3g"), ("grad ms", "grad_ms", ".3g"),
                ("steps/draw", "steps_per_draw", ".1f"),
                ("min ESS bulk", "min_ess_bulk", ".0f"), ("(at)", "min_ess_bulk_at", ""),
                ("min ESS tail", "min_ess_tail", ".0f"), ("ESS/s", "ess_per_s", ".3g"),
                ("jaxglmm / this", "ratio", ".2f"), ("max R-hat", "max_rhat", ".3f"),
                ("div", "divergences", "d"), ("max z vs jaxglmm", "max_z", ".1f"),
                ("logp check", "logp_check", ".1e"), ("peak MiB", "peak_mib", ".0f")]
SUMMARY_COLUMNS = [("model", "model", ""), ("jaxglmm ESS/s", "jaxglmm_ess_per_s", ".3g"),
                   ("jaxglmm parametrisation", "jaxglmm_param", ""),
                   ("nutpie ESS/s", "nutpie_ess_per_s", ".3g"),
                   ("nutpie parametrisation", "nutpie_param", ""),
                   ("NumPyro ESS/s", "numpyro_ess_per_s", ".3g"),
                   ("NumPyro parametrisation", "numpyro_param", ""),
                   ("jaxglmm / best peer", "ratio_best", ".2f"),
                   ("jaxglmm / nutpie", "ratio_nutpie", ".2f"),
                   ("jaxglmm / NumPyro", "ratio_numpyro", ".2f")]
PEERS = ("nutpie", "numpyro")
SCALING_COLUMNS = [("family", "family", ""), ("N", "n_clusters", "d"), ("n_obs", "n_obs", "d"),
                   ("method", "method", ""), ("grad ms", "grad_ms", ".3g"),
                   ("compile s", "compile_s", ".1f"), ("sampling s", "sampling_s", ".3g"),
                   ("run s", "run_s", ".3g"), ("steps/draw", "steps_per_draw", ".1f"),
                   ("min ESS bulk", "min_ess_bulk", ".0f"),
                   ("ESS/s", "ess_per_s", ".3g"), ("jaxglmm / this", "ratio", ".2f"),
                   ("max R-hat", "max_rhat", ".3f"), ("peak MiB", "peak_mib", ".0f")]


def compare_to_jaxglmm(rows: list[dict], key: str) -> None:
    """For peer rows (nutpie, NumPyro): 'ratio' = jaxglmm's ESS/s over the row's, and 'max_z' =
    the largest |difference of posterior means| / combined MCSE over the quantities both have
    (a check that both sample the same posterior), per group of rows sharing `key`."""
    import math
    for r in rows:
        if not (r.get("method", "").startswith(PEERS) and "ess_per_s" in r):
            continue
        ours = [o for o in rows if o.get(key) == r.get(key)
                and o.get("method", "").startswith("jaxglmm") and "ess_per_s" in o]
        if not ours:
            continue
        r["ratio"] = ours[0]["ess_per_s"] / r["ess_per_s"]
        a, b = ours[0]["params"], r["params"]
        z = [abs(a[k]["mean"] - b[k]["mean"]) / math.hypot(a[k]["mcse_mean"], b[k]["mcse_mean"])
             for k in a.keys() & b.keys()]
        r["max_z"] = max(z) if z else None


def summary_rows(rows: list[dict], key: str = "model") -> list[dict]:
    """Per model: jaxglmm's ESS/s and the best row (largest ESS/s) of each peer with its
    parametrisation; jaxglmm's ratio to the better peer and to each."""
    out = []
    for model in dict.fromkeys(r.get(key) for r in rows):
        group = [r for r in rows if r.get(key) == model and "ess_per_s" in r]
        ours = [r for r in group if r["method"].startswith("jaxglmm")]
        s = {key: model}
        if ours:
            s["jaxglmm_ess_per_s"] = ours[0]["ess_per_s"]
            s["jaxglmm_param"] = ours[0]["param_long"]
        best_peer = None
        for peer in PEERS:
            theirs = [r for r in group if r["method"].startswith(peer)]
            if not theirs:
                continue
            best = max(theirs, key=lambda r: r["ess_per_s"])
            s[f"{peer}_ess_per_s"] = best["ess_per_s"]
            s[f"{peer}_param"] = best["param_long"]
            if ours:
                s[f"ratio_{peer}"] = ours[0]["ess_per_s"] / best["ess_per_s"]
            if best_peer is None or best["ess_per_s"] > best_peer:
                best_peer = best["ess_per_s"]
        if ours and best_peer:
            s["ratio_best"] = ours[0]["ess_per_s"] / best_peer
        out.append(s)
    return out


def main_tasks(args, catalogue) -> list[dict]:
    base = {"chains": args.chains, "warmup": args.warmup, "draws": args.draws,
            "seed": args.seed, "init": args.numpyro_init, "mass": args.numpyro_mass,
            "chain_method": args.numpyro_chains, "nutpie_cores": args.nutpie_cores}
    tasks = []
    for name in args.models:
        gaussian = catalogue[name]["family"] == "gaussian"
        tasks.append({**base, "model": name, "engine": "jaxglmm", "sample": True,
                      "grad": args.grad or name in NUMPYRO_GRAD_ONLY})
        if "nutpie" in args.peers:
            full = args.nutpie_full or name not in NUMPYRO_GRAD_ONLY
            kinds = list(args.nutpie_kinds) + (["marginal"] if gaussian else [])
            tasks += [{**base, "model": name, "engine": "nutpie", "kind": k, "sample": full,
                       "grad": args.grad or not full} for k in kinds]
        if "numpyro" in args.peers:
            full = args.numpyro_full or name not in NUMPYRO_GRAD_ONLY
            kinds = list(args.numpyro_kinds) + (["marginal"] if gaussian else [])
            tasks += [{**base, "model": name, "engine": "numpyro", "kind": k, "sample": full,
                       "grad": args.grad or not full} for k in kinds]
    return tasks


def scaling_tasks(args) -> list[dict]:
    base = {"chains": args.chains, "warmup": args.scaling_warmup, "draws": args.scaling_draws,
            "seed": args.seed, "init": args.numpyro_init, "mass": args.numpyro_mass,
            "chain_method": args.numpyro_chains, "grad": True}
    tasks = []
    for family, (sim, entry) in SCALING.items():
        for n in args.scaling_n:
            common = {**base, "family": family, "sim": sim, "entry": entry, "n_clusters": n,
                      "sample": n <= args.scaling_sample_max}
            tasks.append({**common, "engine": "jaxglmm"})
            kinds = ["joint"] + (["marginal"] if family == "gaussian" else [])
            tasks += [{**common, "engine": "numpyro", "kind": k} for k in kinds]
    return tasks


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"{', '.join(QUICK_MODELS)} with 2 chains x 300 warmup / 300 draws")
    ap.add_argument("--models", help="comma-separated models.json entries (default: all)")
    ap.add_argument("--chains", type=int)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--draws", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results"), help="folder for the JSON results")
    ap.add_argument("--numpyro-init", choices=("jaxglmm", "numpyro"), default="jaxglmm",
                    help="NumPyro's starting points: jaxglmm's (default, same natural values) "
                         "or NumPyro's own init_to_uniform")
    ap.add_argument("--numpyro-mass", choices=("match", "diag", "dense"), default="match",
                    help="NumPyro's mass matrix: 'match' (default) applies jaxglmm's default "
                         "rule (dense when NUTS moves at most jaxglmm.fitting.DENSE_MAX_DIM "
                         "parameters) to NumPyro's own dimension")
    ap.add_argument("--numpyro-chains", choices=("match", "vectorized", "sequential"),
                    default="match",
                    help="NumPyro's chain_method: 'match' (default) uses jaxglmm's default "
                         "for the platform (sequential on CPU, vectorized on a GPU)")
    ap.add_argument("--grad", action=argparse.BooleanOptionalAction, default=None,
                    help="time the gradient of every model (default: on, off with --quick; "
                         "always on for NumPyro's grad-only rows and in --scaling)")
    ap.add_argument("--numpyro-full", action="store_true",
                    help=f"run NumPyro fully also for {', '.join(NUMPYRO_GRAD_ONLY)}")
    ap.add_argument("--peers", default="nutpie,numpyro",
                    help="comma-separated peers to run beside jaxglmm: nutpie, numpyro")
    ap.add_argument("--nutpie-kinds", default="auto",
                    help="comma-separated joint models for nutpie: auto (jaxglmm's data rule: "
                         "centred b where the data dominate, else non-centred; default), "
                         "joint (non-centred), centred; gaussian models add the marginal "
                         "model")
    ap.add_argument("--numpyro-kinds", default="auto",
                    help="comma-separated joint models for NumPyro: auto (as for nutpie; "
                         "default), joint (non-centred), joint_centred; gaussian models add "
                         "the marginal model")
    ap.add_argument("--nutpie-cores", type=int, default=None,
                    help="nutpie's cores (default: nutpie's own, min(chains, CPUs), chains "
                         "in parallel threads; 1 runs them one after the other)")
    ap.add_argument("--nutpie-full", action="store_true",
                    help=f"run nutpie fully also for {', '.join(NUMPYRO_GRAD_ONLY)}")
    ap.add_argument("--scaling", action="store_true",
                    help="run the scaling study instead of the models of models.json")
    ap.add_argument("--scaling-n", default="1000,10000,100000",
                    help="numbers of clusters of the scaling study")
    ap.add_argument("--scaling-sample-max", type=int, default=10000,
                    help="largest number of clusters with a short sampling run")
    ap.add_argument("--scaling-warmup", type=int, default=300)
    ap.add_argument("--scaling-draws", type=int, default=300)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.grad is None:
        args.grad = not args.quick
    defaults = (2, 300, 300) if args.quick else (4, 1000, 1000)
    for name, value in zip(("chains", "warmup", "draws"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.scaling_n = [int(float(v)) for v in args.scaling_n.split(",")]
    args.peers = [v.strip() for v in args.peers.split(",") if v.strip()]
    args.nutpie_kinds = [v.strip() for v in args.nutpie_kinds.split(",") if v.strip()]
    bad = [v for v in args.peers if v not in PEERS]
    args.numpyro_kinds = [v.strip() for v in args.numpyro_kinds.split(",") if v.strip()]
    bad += [v for v in args.nutpie_kinds if v not in ("auto", "joint", "centred")]
    bad += [v for v in args.numpyro_kinds if v not in ("auto", "joint", "joint_centred")]
    if bad:
        ap.error(f"unknown --peers, --nutpie-kinds or --numpyro-kinds value(s): "
                 f"{', '.join(bad)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        row = run_worker(json.loads(args.worker))
        Path(args.worker_out).write_text(json.dumps(row))
        return 0
    from catalogue import load_catalogue
    catalogue = load_catalogue()
    if args.models:
        args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    else:
        args.models = list(QUICK_MODELS if args.quick else catalogue)
    unknown = [m for m in args.models if m not in catalogue]
    if unknown:
        print(f"--models: {', '.join(unknown)} not in models.json; choose from "
              f"{', '.join(catalogue)}.", file=sys.stderr)
        return 2

    machine = machine_info()
    started = datetime.datetime.now()
    if args.scaling:
        tasks, group, columns, suffix = scaling_tasks(args), "n_key", SCALING_COLUMNS, "-scaling"
    else:
        tasks, group, columns = main_tasks(args, catalogue), "model", MAIN_COLUMNS
        suffix = "-quick" if args.quick else ""
    print(f"{len(tasks)} runs, each in its own process, on {machine['host']} "
          f"({machine['cpus_usable']} CPUs, {machine['jax_devices']})", file=sys.stderr)
    rows = []
    for task in tasks:
        row = run_task(task)
        if args.scaling:
            row["family"] = task["family"]
            row["n_key"] = (task["family"], task["n_clusters"])
        rows.append(row)
    compare_to_jaxglmm(rows, group)
    for r in rows:
        r.pop("n_key", None)

    settings = {k: v for k, v in vars(args).items() if not k.startswith("worker")}
    print()
    print(markdown_table(rows, columns))
    print()
    if not args.scaling:
        print(markdown_table(summary_rows(rows), SUMMARY_COLUMNS))
        print()
    print(f"{machine['host']}: {machine['processor']}, {machine['cpus_usable']} CPUs usable, "
          f"{', '.join(machine['jax_devices'])}; jax {machine['versions']['jax']}, blackjax "
          f"{machine['versions']['blackjax']}, numpyro {machine['versions']['numpyro']}, "
          f"pymc {machine['versions']['pymc']}, nutpie {machine['versions']['nutpie']}, "
          f"numba {machine['versions']['numba']}; "
          f"load average at start {machine['load_average']}.")
    if args.scaling:
        print(f"chains={args.chains}; short runs {args.scaling_warmup} warmup + "
              f"{args.scaling_draws} draws up to N={args.scaling_sample_max}; larger N: "
              "per-gradient time only.")
    else:
        start = ("the same points as jaxglmm" if args.numpyro_init == "jaxglmm"
                 else "init_to_uniform")
        print(f"chains={args.chains}, warmup={args.warmup}, draws={args.draws}, "
              f"seed={args.seed}; NumPyro starts from {start}; NumPyro mass matrix: "
              f"{args.numpyro_mass}.")
    print("compile s: JAX trace+lower+compile time during the fit (NumPyro: warmup() then "
          "run(), two compiled programs; nutpie: nutpie.compile_pymc_model, PyTensor rewrites "
          "and numba); warmup s, sampling s and run s exclude it. run s = warmup + draws, what "
          "the user waits for once compiled (nutpie: its wall time, split by leapfrog steps "
          "into ~warmup and ~sampling). grad ms: one value-and-gradient for all chains "
          "(jaxglmm, NumPyro: vmapped, median; nutpie: chains x one call of its numba "
          "function from Python). ESS/s = min bulk ESS over psi / run s. max z vs jaxglmm: "
          "largest |difference of posterior means| / combined MCSE over psi (same posterior: "
          "below about 4). logp check: largest change between matched points of nutpie's "
          "compiled log density minus jaxglmm's (equal up to a constant: ~1e-12). 'grad only' "
          "rows: per-gradient time only, no sampling run. peak MiB: ru_maxrss of the fit's "
          "own process.")
    if any("error" in r for r in rows):
        for r in rows:
            if "error" in r:
                print(f"FAILED {r.get('model') or r.get('sim')} {r['method']}: {r['error']}")

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{started:%Y-%m-%d}-{machine['host']}{suffix}.json"
    k = 2
    while path.exists():  # another run of the same day: never write over it
        path = out_dir / f"{started:%Y-%m-%d}-{machine['host']}{suffix}-{k}.json"
        k += 1
    path.write_text(json.dumps({"started": started.isoformat(timespec="seconds"),
                                "machine": machine, "settings": settings, "rows": rows},
                               indent=1, default=str))
    print(f"\nrows written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
