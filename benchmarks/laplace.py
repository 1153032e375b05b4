"""Laplace-guided random effects against the default parametrisation (README "Laplace-guided
random effects").

    python benchmarks/laplace.py MODEL CONFIG [SEED]   # one 4 x 500/500 run, a JSON line
    python benchmarks/laplace.py MODEL cost CONFIG...  # seconds per gradient only

MODEL is a models.json entry; CONFIG is `default` or `laplace<steps>` (e.g. laplace4). The run
reports the min bulk ESS over psi (the reference names of benchmarks/catalogue.py), per sampling second
and per 1000 gradients (sum of n_steps over the kept draws), and the cost of one gradient
(min over repeats of a jitted value_and_grad).
"""
import dataclasses
import json
import sys
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
from jax.flatten_util import ravel_pytree  # noqa: E402

import catalogue  # noqa: E402
from jaxglmm import diagnostics  # noqa: E402


def make_model(name: str, config: str):
    if config == "default":
        return catalogue.load_model(name)
    model = catalogue.load_model(name, centred="laplace")
    steps = int(config[len("laplace"):])
    model.spec = dataclasses.replace(model.spec, terms=tuple(
        dataclasses.replace(t, newton_steps=steps) for t in model.spec.terms))
    return model


def gradient_seconds(model, repeats: int = 7, calls: int = 30) -> float:
    x0, unravel = ravel_pytree(model.initial_position(0))
    vg = jax.jit(jax.value_and_grad(lambda x: model.logdensity_fn(unravel(x))))
    jax.block_until_ready(vg(x0))
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            out = vg(x0)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t) / calls)
    return best


def run(name: str, config: str, seed: int) -> dict:
    model = make_model(name, config)
    grad_s = gradient_seconds(model)
    fit = model.sample(chains=4, warmup=500, draws=500, seed=seed, progress=False)
    draws = catalogue.reference_draws(fit)
    ess = {k: diagnostics.ess_bulk(v) for k, v in draws.items()}
    worst = min(ess, key=ess.get)
    grads = int(fit.sample_stats["n_steps"].sum())
    return dict(model=name, config=config, seed=seed,
                parametrisation=fit.info["parametrisation"], min_ess=round(ess[worst], 1),
                worst=worst, max_rhat=round(max(diagnostics.rhat(v) for v in draws.values()), 4),
                divergences=int(fit.num_divergences), sampling_s=round(fit.info["sampling_s"], 2),
                warmup_s=round(fit.info["warmup_s"], 2), grads=grads,
                ess_per_s=round(ess[worst] / fit.info["sampling_s"], 1),
                ess_per_1k_grad=round(1000 * ess[worst] / grads, 2),
                grad_us=round(grad_s * 1e6, 1), mean_steps=round(grads / fit.draws["D"].shape[1]
                                                                 / fit.draws["D"].shape[0], 1))


if __name__ == "__main__":
    name, config = sys.argv[1], sys.argv[2]
    if config == "cost":
        for c in sys.argv[3:]:
            print(json.dumps(dict(model=name, config=c,
                                  grad_us=round(gradient_seconds(make_model(name, c)) * 1e6, 1))))
    else:
        print(json.dumps(run(name, config, int(sys.argv[3]) if len(sys.argv) > 3 else 0)))
