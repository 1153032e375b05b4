"""Models of the benchmark suite (benchmarks/suite/models.json) as `GLMM.from_arrays` calls.

The suite (models.json, data/, refs/ and make_data.py) is a copy of ../shared/bench, where new
material arrives (`make suite` copies it again), so that a clone of the repository alone runs
the tests and the benchmark.

models.json states each model in the seed's parametrisation with its exact priors; this module
turns an entry into a model with exactly those priors, for the posterior tests and the
benchmark. Reference parameter names there (beta[k], mu[k], sigma, tau, D[j,k], sd[j],
corr[j,k], d, gamma[j]) are mapped to a Fit's draws by `reference_draws`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from jaxglmm import GLMM
from jaxglmm.priors import Flat, Gamma, Normal, Priors, Wishart

SUITE = Path(__file__).resolve().parent / "suite"


def bench_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding models.json: `root`, else $JAXGLMM_BENCH, else benchmarks/suite."""
    for c in (root, os.environ.get("JAXGLMM_BENCH"), SUITE):
        if c is not None and (Path(c) / "models.json").is_file():
            return Path(c)
    raise FileNotFoundError(
        f"models.json not found in {root or os.environ.get('JAXGLMM_BENCH') or SUITE}: pass "
        "root=, or set JAXGLMM_BENCH to a folder holding the benchmark suite.")


def load_catalogue(root=None) -> dict:
    """All entries of models.json (without its "_about" text)."""
    with open(bench_root(root) / "models.json") as f:
        entries = json.load(f)
    return {k: v for k, v in entries.items() if not k.startswith("_")}


def _gamma(spec) -> Gamma:
    shape, rate = spec
    if isinstance(rate, dict):
        rate = _gamma(rate["gamma"])
    return Gamma(shape, rate)


def priors_from_entry(entry: dict) -> Priors:
    """The entry's priors as a `Priors` (a block that is not written is flat for beta/mu)."""
    p = entry.get("priors", {})

    def location(block):
        if block is None:
            return Flat()
        return Normal(*block["normal"])

    tau = _gamma(p["tau"]["gamma"]) if "tau" in p else None
    omega = None
    if "omega" in p:
        w = p["omega"]["wishart"]
        gamma = w["scale_inv_diag"]
        if isinstance(gamma, dict):
            gamma = _gamma(gamma["gamma"])
        omega = Wishart(w["df"], gamma)
    beta = location(p.get("beta")) if entry["X"] else None
    return Priors(beta=beta, mu=location(p.get("mu")), tau=tau, omega=omega)


def load_data(entry: dict, root=None) -> pd.DataFrame:
    return pd.read_csv(bench_root(root) / entry["data"])


def model_from_entry(entry: dict, data: pd.DataFrame | None = None, root=None,
                     **kwargs) -> GLMM:
    """A GLMM for one models.json entry; `data` replaces the entry's file (e.g. a larger
    simulation); kwargs go to `GLMM.from_arrays` (centred, factor, dtype)."""
    df = load_data(entry, root) if data is None else data
    Z = np.column_stack([np.ones(len(df)) if c == "1" else df[c].to_numpy(float)
                         for c in entry["Z"]])
    X = np.column_stack([df[c].to_numpy(float) for c in entry["X"]]) if entry["X"] else None
    trials = df[entry["trials"]].to_numpy(float) if "trials" in entry else None
    return GLMM.from_arrays(
        df[entry["y"]].to_numpy(float), Z, df[entry["group"]].to_numpy(), X=X,
        family=entry["family"], link=entry.get("link"), trials=trials,
        priors=priors_from_entry(entry), x_names=entry["X"] or None,
        z_names=["Intercept" if c == "1" else c for c in entry["Z"]], **kwargs)


def load_model(name: str, root=None, **kwargs) -> GLMM:
    """The GLMM of models.json entry `name` with exactly its priors."""
    catalogue = load_catalogue(root)
    if name not in catalogue:
        raise ValueError(f"name={name!r} is not in models.json; choose one of "
                         f"{', '.join(catalogue)}.")
    return model_from_entry(catalogue[name], root=root, **kwargs)


def reference_draws(fit) -> dict[str, np.ndarray]:
    """The fit's draws under the reference names of models.json (beta[k], mu[k], sigma, tau,
    D[j,k] for j <= k, sd[j], corr[j,k] for j < k, d, gamma[j]), each (C, S)."""
    d = fit.draws
    out = {}
    for name in ("beta", "mu", "sd", "gamma"):
        if name in d:
            for k in range(d[name].shape[-1]):
                out[f"{name}[{k}]"] = d[name][..., k]
    for name in ("sigma", "tau", "d"):
        if name in d:
            out[name] = d[name]
    q = d["D"].shape[-1]
    for j in range(q):
        for k in range(j, q):
            out[f"D[{j},{k}]"] = d["D"][..., j, k]
            if k > j:
                out[f"corr[{j},{k}]"] = d["corr"][..., j, k]
    return out
