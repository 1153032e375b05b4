"""Low-rank-plus-diagonal mass matrix (BlackJAX's window_adaptation_low_rank, the adaptation of
nutpie) against BlackJAX's diagonal and dense window adaptation, on jaxglmm's log density of a
benchmark model in its sampler basis: min bulk ESS over psi (the random effects left out) per
1000 gradients, warmup included, 4 chains x 1000/1000 (vmapped).

    python benchmarks/low_rank.py sim_logit lr10 1     # mode: diag, dense, lr<rank>; seed
"""
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
import arviz as az  # noqa: E402
import blackjax  # noqa: E402
import xarray as xr  # noqa: E402
from blackjax.adaptation.low_rank_adaptation import window_adaptation_low_rank  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import catalogue  # noqa: E402
from jaxglmm.parameters import LATENT  # noqa: E402

WARMUP, DRAWS, CHAINS = 1000, 1000, 4


def adaptation(mode: str, logdensity):
    if mode == "diag":
        return blackjax.window_adaptation(blackjax.nuts, logdensity, is_mass_matrix_diagonal=True)
    if mode == "dense":
        return blackjax.window_adaptation(blackjax.nuts, logdensity, is_mass_matrix_diagonal=False)
    rank = int(mode[2:]) if len(mode) > 2 else 10
    return window_adaptation_low_rank(blackjax.nuts, logdensity, max_rank=rank,
                                      gradient_based_init=True)


def psi_indices(template: dict) -> list[int]:
    """Flat indices (ravel_pytree's sorted-key order) of everything but the random effects."""
    names = [k for k in sorted(template) for _ in range(np.size(template[k]))]
    return [i for i, k in enumerate(names) if k.split("|")[0] not in LATENT]


def main(name: str, mode: str, seed: int) -> None:
    glmm = catalogue.load_model(name)
    starts = glmm.initial_positions(seed, CHAINS, "joint")
    # the starts are in the user's coordinates: close enough to start a warmup from
    logdensity = glmm.problem("joint", starts[0], basis="centred").logdensity()
    x0 = jnp.stack([ravel_pytree(s)[0] for s in starts])

    def run_chain(key, x):
        k_warm, k_draw = jax.random.split(key)
        (state, params), warm = adaptation(mode, logdensity).run(k_warm, x, num_steps=WARMUP)
        kernel = blackjax.nuts(logdensity, **params)

        def body(s, k):
            s, info = kernel.step(k, s)
            return s, (s.position, info.num_integration_steps, info.is_divergent)
        _, (pos, steps, div) = jax.lax.scan(body, state, jax.random.split(k_draw, DRAWS))
        return pos, steps, div, warm.info.num_integration_steps.sum()

    run = jax.jit(jax.vmap(run_chain))
    keys = jax.random.split(jax.random.key(seed), CHAINS)
    jax.block_until_ready(run(keys, x0))  # compile
    t = time.perf_counter()
    pos, steps, div, warm_steps = jax.block_until_ready(run(keys, x0))
    wall = time.perf_counter() - t
    ds = xr.Dataset({"x": (("chain", "draw", "p"), np.asarray(pos)[:, :, psi_indices(starts[0])])})
    ess = float(np.min(az.ess(ds, method="bulk")["x"]))
    rhat = float(np.max(az.rhat(ds)["x"]))
    grads = int(np.sum(steps) + np.sum(warm_steps))
    print(f"{name} {mode} seed {seed}: dim {x0.shape[1]}, min bulk ESS over psi {ess:.0f}, "
          f"max R-hat {rhat:.4f}, divergences {int(np.sum(div))}, gradients {grads}, "
          f"steps/draw {np.mean(steps):.1f}, ESS per 1000 gradients {1000 * ess / grads:.3f}, "
          f"warm run {wall:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
