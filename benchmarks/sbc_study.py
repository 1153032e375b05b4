"""Simulation-based calibration of every family with the built-in `jaxglmm.sbc`: for each, R
prior draws of psi, b and y at one design, fitted together by `sample_many`; the ranks of
every psi scalar are tested for uniformity by the simultaneous ECDF test (Säilynoja, Bürkner
and Vehtari 2022) at the family-wise 1% level, and a check of the test's power fits one
family under a deliberately wrong prior scale (it must fail).

    python benchmarks/sbc_study.py [--families poisson,gamma] [--replications 500]
                                   [--warmup 300 --draws 400 --thin 4] [--out DIR]

The design: 16 clusters x 6 rows, y ~ w + x + (1 + x | g) (w, x standard normal; binomial:
4 trials), a random intercept and slope with correlated effects. The priors are fixed, proper
and moderate (`model_of`): beta, mu ~ N(0, 0.5^2) (mu[Intercept] around the family's natural
centre), Omega ~ Wishart(4, S), S^-1 = diag(0.5, 0.5), tau per family (`TAU`), nu and zi
their family defaults. Writes benchmarks/results/<date>-sbc.json, a Markdown report
<date>-sbc.md and the ECDF-difference plot of each family, <date>-sbc-<family>.png.
`tests/test_sbc.py` runs 200 replicates per family at short runs (slow tests).
"""
from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd

import jaxglmm

HERE = Path(__file__).resolve().parent
FORMULA = "y ~ w + x + (1 + x | g)"
FAMILIES = ("gaussian", "bernoulli", "binomial", "poisson", "negbinomial", "gamma", "beta",
            "student", "zero_inflated_poisson", "zero_inflated_negbinomial")
TAU = {"gaussian": jaxglmm.Gamma(3.0, 3.0), "student": jaxglmm.Gamma(3.0, 3.0),
       "negbinomial": jaxglmm.Gamma(4.0, 0.8), "zero_inflated_negbinomial":
       jaxglmm.Gamma(4.0, 0.8), "gamma": jaxglmm.Gamma(6.0, 1.0),
       "beta": jaxglmm.Gamma(6.0, 0.5)}
# mu[Intercept]'s prior mean: the family's natural centre (log 2.7 for counts)
CENTRE = {"beta": 0.0, "gamma": 0.5, "student": 0.0, "gaussian": 0.0, "bernoulli": 0.0,
          "binomial": 0.0}


def design(family: str, N: int = 16, m: int = 6, seed: int = 0) -> pd.DataFrame:
    """The design's predictors with a placeholder response in the family's support (the
    model the truths are drawn from needs one)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"w": rng.normal(size=N * m), "x": rng.normal(size=N * m),
                       "g": np.repeat([f"c{k}" for k in range(N)], m)})
    n = len(df)
    df["y"] = {"gamma": np.ones(n), "beta": np.full(n, 0.5),
               "bernoulli": np.arange(n) % 2}.get(family, np.arange(n, dtype=float) % 3)
    if family == "binomial":
        df["trials"] = 4
    return df


def priors(family: str, beta_scale: float = 0.5) -> jaxglmm.Priors:
    return jaxglmm.Priors(beta=jaxglmm.Normal(0.0, beta_scale),
                          mu=jaxglmm.Normal((CENTRE.get(family, 1.0), 0.0), 0.5),
                          tau=TAU.get(family), omega=jaxglmm.Wishart(4.0, 0.5))


def model_of(family: str, beta_scale: float = 0.5, **design_options) -> jaxglmm.GLMM:
    """The study's model of a family (`design`, `priors`)."""
    formula = "y/trials ~ w + x + (1 + x | g)" if family == "binomial" else FORMULA
    return jaxglmm.GLMM(formula, design(family, **design_options), family=family,
                        priors=priors(family, beta_scale))


def wrong_priors(family: str) -> jaxglmm.Priors:
    """The power check's fit priors: beta ~ N(0, 0.15^2) where the truth has N(0, 1)."""
    return priors(family, beta_scale=0.15)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--replications", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--thin", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--power-family", default="poisson")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.date.today().isoformat()}-sbc"
    run = dict(replications=args.replications, chains=2, warmup=args.warmup,
               draws=args.draws, thin=args.thin, progress=False)
    studies = [(family, model_of(family), None) for family in args.families.split(",")]
    if args.power_family:
        studies.append((f"{args.power_family} (fit with a wrong beta scale)",
                        model_of(args.power_family, beta_scale=1.0),
                        wrong_priors(args.power_family)))
    results, lines = [], []
    for name, model, fit_priors in studies:
        res = jaxglmm.sbc(model, seed=args.seed, fit_priors=fit_priors, **run)
        worst = res.tests["ecdf_p"].idxmin()
        row = {"study": name, "fitted": res.info["fitted"], "L": res.L,
               "passed": res.passed, "min_ecdf_p": float(res.tests["ecdf_p"].min()),
               "worst": worst, "min_chi2_p": float(res.tests["chi2_p"].min()),
               "divergent_fits": int(np.sum(res.divergences > 0)),
               "wall_s": res.info["wall_s"], "tests": res.tests.to_dict(orient="index"),
               "ranks": res.ranks.to_dict(orient="list"), "failed": res.failed}
        results.append(row)
        fig = res.plot()
        fig.suptitle(f"SBC: {name}")
        fig.savefig(out / f"{stem}-{name.split()[0]}{'-wrong' if fit_priors else ''}.png",
                    dpi=80)
        lines.append(f"| {name} | {row['fitted']}/{args.replications} | {row['L']} | "
                     f"{row['min_ecdf_p']:.4f} ({worst}) | {row['min_chi2_p']:.4f} | "
                     f"{row['divergent_fits']} | {'pass' if row['passed'] else 'FAIL'} | "
                     f"{row['wall_s']:.0f} s |")
        print(lines[-1], flush=True)
    head = ["# Simulation-based calibration", "",
            f"`python benchmarks/sbc_study.py` ({args.replications} replicates, 2 chains x "
            f"{args.warmup}/{args.draws}, thin {args.thin}, seed {args.seed}); pass: every "
            "quantity's simultaneous ECDF test p > 0.01 / (number of quantities). The last "
            "row must FAIL (the fit's beta prior is 0.15 times the truth's).", "",
            "| study | fitted | L | smallest ECDF p | smallest chi-square p | divergent fits "
            "| result | time |", "|---|---|---|---|---|---|---|---|"]
    (out / f"{stem}.md").write_text("\n".join(head + lines) + "\n")
    (out / f"{stem}.json").write_text(json.dumps({"args": vars(args), "results": results},
                                                 indent=1, default=str))
    print(f"wrote {out / (stem + '.md')}")
    return results


if __name__ == "__main__":
    main()
