"""`python -m jaxglmm.demo`: fit lme4's sleepstudy (bundled) and print the priors and summary.

    Reaction_ij | b_i ~ N(b_i1 + b_i2 Days_ij, sigma^2),   b_i ~ N_2(mu, D)
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .datasets import load_sleepstudy
from .glmm import GLMM


def main(chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 0,
         progress: bool = True) -> None:
    """Fit the example with `chains` x (`warmup` + `draws`) iterations and print the priors,
    the timing and the summary (`jaxglmm demo` calls this with its options)."""
    df = load_sleepstudy()
    Z = np.column_stack([np.ones(len(df)), df["Days"].to_numpy()])
    model = GLMM.from_arrays(df["Reaction"], Z, df["Subject"], z_names=["Intercept", "Days"])
    print("sleepstudy: Reaction ~ Days + (1 + Days | Subject),", model)
    print("priors (defaults are scaled to the data):")
    print("  " + model.describe_priors().replace("\n", "\n  "))
    t0 = time.perf_counter()
    fit = model.sample(chains=chains, warmup=warmup, draws=draws, seed=seed,
                       progress=progress)
    print(f"sampled {chains} chains x {draws} draws in {time.perf_counter() - t0:.1f} s "
          f"(divergences: {fit.num_divergences})")
    with pd.option_context("display.width", 140, "display.max_columns", 20,
                           "display.float_format", "{:.4g}".format):
        print(fit.summary())


if __name__ == "__main__":
    main()
