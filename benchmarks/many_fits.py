"""Many small fits: `sample_many` against a loop of separate `sample` calls of the identical
models (same priors, parametrisation and seeds, so the same draws), each way in a fresh
process with JAX's persistent compilation cache off (compiling included), timing what the
user waits for: building the per-data-set models and every fit.

    python benchmarks/many_fits.py [--datasets 64] [--cases poisson,gaussian]
                                   [--methods loop,sequential,vectorized] [--out DIR]

Cases (64 data sets each, drawn from the prior predictive at one design, 4 chains x
1000/1000 by default):
  poisson:  20 clusters x 6 rows, y ~ w + x + (1 + x | g), the joint sampler;
  gaussian: the same design and formula, b integrated out (the collapsed sampler).
A loop of separate calls compiles only once here (jaxglmm keeps compiled programs for models
of the same shapes), so the loop is a strong baseline: the ratio is what one program adds.
Writes benchmarks/results/<date>-many-fits.json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
FORMULA = "y ~ w + x + (1 + x | g)"


def case(name: str, datasets: int, seed: int = 0):
    """(template GLMM, responses (datasets, n_obs)) of a case."""
    import jaxglmm
    rng = np.random.default_rng(seed)
    N, m = 20, 6
    df = pd.DataFrame({"w": rng.normal(size=N * m), "x": rng.normal(size=N * m),
                       "g": np.repeat([f"c{k}" for k in range(N)], m)})
    family = {"poisson": "poisson", "gaussian": "gaussian"}[name]
    df["y"] = np.arange(len(df)) % 3 if family == "poisson" else rng.normal(size=N * m)
    priors = jaxglmm.Priors(beta=jaxglmm.Normal(0.0, 0.5),
                            mu=jaxglmm.Normal((1.0 if family == "poisson" else 0.0, 0.0), 0.5),
                            omega=jaxglmm.Wishart(4.0, 0.5),
                            tau=jaxglmm.Gamma(3.0, 3.0) if family == "gaussian" else None)
    model = jaxglmm.GLMM(FORMULA, df, family=family, priors=priors)
    ys = model.sample_prior(draws=datasets, seed=seed + 1)["prior_predictive"]["y"].values[0]
    return model, ys


def run_one(name: str, method: str, datasets: int, chains: int, warmup: int, draws: int):
    """Time one way of fitting a case; prints a JSON line."""
    import jaxglmm
    model, ys = case(name, datasets)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "loop":
            fits = [jaxglmm.GLMM.of(m).sample(chains=chains, warmup=warmup, draws=draws,
                                              seed=k, progress=False)
                    for k, m in enumerate(jaxglmm.batch_models(model.model, ys))]
        else:
            fits = list(model.sample_many(ys, chains=chains, warmup=warmup, draws=draws,
                                          seed=0, batch_method=method, progress=False))
    wall = time.perf_counter() - start
    first = fits[-1].draws["mu"]
    print(json.dumps({"case": name, "method": method, "wall_s": wall,
                      "compile_s": float(sum(f.info.get("compile_s", 0.0) for f in fits))
                      if method == "loop" else fits[0].info["compile_s"],
                      "divergent_fits": int(sum(f.num_divergences > 0 for f in fits)),
                      "last_mu_sum": float(np.sum(first)),
                      "last_mu_head": np.asarray(first[0, :3, 0]).tolist()}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=64)
    parser.add_argument("--cases", default="poisson,gaussian")
    parser.add_argument("--methods", default="loop,sequential,vectorized")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--one", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    sizes = (args.datasets, args.chains, args.warmup, args.draws)
    if args.one:
        run_one(*args.one, *sizes)
        return None
    env = dict(os.environ, JAXGLMM_COMPILATION_CACHE="0", JAXGLMM_PROGRESS="0")
    rows = []
    for name in args.cases.split(","):
        for method in args.methods.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--one", name, method, "--datasets",
                 str(args.datasets), "--chains", str(args.chains), "--warmup",
                 str(args.warmup), "--draws", str(args.draws)],
                env=env, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{name:9s} {method:10s} {row['wall_s']:7.1f} s (compiling "
                  f"{row['compile_s']:.1f} s), divergent fits {row['divergent_fits']}",
                  flush=True)
        loop = next((r for r in rows if r["case"] == name and r["method"] == "loop"), None)
        for r in rows:
            if loop is not None and r["case"] == name and r["method"] != "loop":
                r["speedup_vs_loop"] = loop["wall_s"] / r["wall_s"]
                r["same_draws_as_loop"] = r["last_mu_head"] == loop["last_mu_head"] and \
                    r["last_mu_sum"] == loop["last_mu_sum"]
                print(f"{name:9s} {r['method']:10s} {r['speedup_vs_loop']:.2f}x the loop; "
                      f"same draws as the loop: {r['same_draws_as_loop']}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{datetime.date.today().isoformat()}-many-fits.json"
    path.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
