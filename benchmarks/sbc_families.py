"""Simulation-based calibration (Talts et al. 2018) of the families: for each, R replicates of
psi, b and y drawn from the prior at one fixed design, each fitted with the sampler's
defaults; the rank of every true psi element among the fit's (thinned) draws is uniform on
0..L when the sampler and the density agree. Uniformity: a chi-square test over B bins per
quantity; the study fails at the 1% level after a Bonferroni correction over the quantities
of a family.

    python benchmarks/sbc_families.py [--families negbinomial,gamma] [--replications 100]
                                      [--warmup 300 --draws 400 --thin 4] [--out DIR]

The design: 20 clusters x 6 rows, y ~ w + x + (1 + x | g) (w, x standard normal): a random
intercept and a random slope with correlated effects. The priors are fixed, proper and
moderate (SBC needs the fit's prior to be the one the truth is drawn from; the defaults are
written from y, which differs per replicate): beta, mu ~ N(0, 0.5^2) (mu[Intercept] around
the family's natural centre), Omega ~ Wishart(4, S), S^-1 = diag(0.5, 0.5) (sd(b) about 0.35),
and tau per family (`TAU`); nu and zi keep their family defaults. The ranks are written to
benchmarks/results/<date>-sbc-families.json (or -sbc-<family>.json for a subset) with the p-values; `tests/test_sbc_families.py`
runs a small case.
"""
from __future__ import annotations

import argparse
import datetime
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

import jaxglmm

HERE = Path(__file__).resolve().parent
FAMILIES = ("negbinomial", "gamma", "beta", "student", "zero_inflated_poisson",
            "zero_inflated_negbinomial")
TAU = {"gaussian": jaxglmm.Gamma(3.0, 3.0), "student": jaxglmm.Gamma(3.0, 3.0),
       "negbinomial": jaxglmm.Gamma(4.0, 0.8), "zero_inflated_negbinomial":
       jaxglmm.Gamma(4.0, 0.8), "gamma": jaxglmm.Gamma(6.0, 1.0),
       "beta": jaxglmm.Gamma(6.0, 0.5)}
CENTRE = {"beta": 0.0, "gamma": 0.5, "student": 0.0, "gaussian": 0.0}  # mu[Intercept] mean
PSI_NAMES = ("beta", "mu", "tau", "sigma", "nu", "zi", "sd", "corr")


def design(seed: int = 0, N: int = 20, m: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"w": rng.normal(size=N * m), "x": rng.normal(size=N * m),
                         "g": np.repeat([f"c{k}" for k in range(N)], m)})


def priors(family: str) -> jaxglmm.Priors:
    return jaxglmm.Priors(beta=jaxglmm.Normal(0.0, 0.5),
                          mu=jaxglmm.Normal((CENTRE.get(family, 1.0), 0.0), 0.5),
                          tau=TAU.get(family), omega=jaxglmm.Wishart(4.0, 0.5))


def _placeholder_y(family: str, n: int) -> np.ndarray:
    """A response in the family's support, to build the model the prior draws come from."""
    return {"gamma": np.ones(n), "beta": np.full(n, 0.5)}.get(
        family, np.arange(n, dtype=float) % 3)


def psi_of(draws: dict) -> dict:
    """Scalar psi quantities (beta, mu, tau, nu, zi, sd, corr) by readable name from
    natural-scale draws of any leading shape."""
    out = {}
    for name in PSI_NAMES:
        if name not in draws or name == "sigma":
            continue
        v = np.asarray(draws[name])
        if name == "corr":
            out["corr[0,1]"] = v[..., 0, 1]
        elif name in ("beta", "mu", "sd"):
            for j in range(v.shape[-1]):
                out[f"{name}[{j}]"] = v[..., j]
        else:
            out[name] = v
    return out


def run_family(family: str, replications: int, warmup: int, draws: int, thin: int,
               seed: int = 0, bins: int = 10) -> dict:
    """Ranks (replications, quantities) and chi-square p-values of one family's study."""
    df = design(seed)
    df["y"] = _placeholder_y(family, len(df))
    formula = "y ~ w + x + (1 + x | g)"
    base = jaxglmm.GLMM(formula, df, family=family, priors=priors(family))
    prior = base.sample_prior(draws=replications, seed=seed + 1)
    truth = psi_of({k: prior["prior"][k].values[0] for k in prior["prior"].data_vars})
    ys = prior["prior_predictive"]["y"].values[0]
    names = sorted(truth)
    ranks = np.zeros((replications, len(names)), int)
    divergences, failed, seconds = [], [], []
    for r in range(replications):
        data = df.copy()
        data["y"] = ys[r]
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = jaxglmm.GLMM(formula, data, family=family, priors=priors(family)).sample(
                    chains=2, warmup=warmup, draws=draws, seed=seed + 100 + r, progress=False)
        except ValueError as err:  # e.g. a prior draw with y outside the family's support
            failed.append((r, str(err)))
            ranks[r] = -1
            continue
        seconds.append(time.perf_counter() - start)
        post = psi_of(fit.draws)
        for k, name in enumerate(names):
            sample = post[name][:, ::thin].ravel()
            ranks[r, k] = int(np.sum(sample < truth[name][r]))
        divergences.append(fit.num_divergences)
    ok = ranks[:, 0] >= 0
    L = 2 * len(range(0, draws, thin))
    p_values = {}
    for k, name in enumerate(names):
        counts = np.histogram(ranks[ok, k], bins=bins, range=(0, L + 1))[0]
        p_values[name] = float(scipy.stats.chisquare(counts).pvalue)
    return {"family": family, "replications": replications, "fitted": int(ok.sum()),
            "failed": failed, "quantities": names, "ranks": ranks.tolist(), "L": L,
            "bins": bins, "p_values": p_values, "min_p": min(p_values.values()),
            "bonferroni_pass": bool(min(p_values.values()) > 0.01 / len(names)),
            "divergences": divergences, "median_fit_s": float(np.median(seconds))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--replications", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--thin", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    results = []
    for family in args.families.split(","):
        res = run_family(family, args.replications, args.warmup, args.draws, args.thin,
                         args.seed)
        results.append(res)
        worst = min(res["p_values"], key=res["p_values"].get)
        print(f"{family}: {res['fitted']}/{res['replications']} fitted, min p "
              f"{res['min_p']:.4f} ({worst}), Bonferroni 1%: "
              f"{'pass' if res['bonferroni_pass'] else 'FAIL'}, divergent fits "
              f"{sum(d > 0 for d in res['divergences'])}, median fit {res['median_fit_s']:.2f}"
              " s", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = args.families.split(",")
    which = "families" if set(chosen) == set(FAMILIES) else "-".join(chosen)
    path = out / f"{datetime.date.today().isoformat()}-sbc-{which}.json"
    path.write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
