"""Low-rank-plus-diagonal mass matrix (BlackJAX's window_adaptation_low_rank, the adaptation of
nutpie) against BlackJAX's diagonal and dense window adaptation, on jaxglmm's log density of a
benchmark model in its sampler basis: min bulk ESS over psi per 1000 gradients, 4 chains x
1000/1000 (vmapped).

    python benchmarks/low_rank.py sim_logit lr10 1     # mode: diag, dense, lr<rank>; seed
"""
import sys, time
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import blackjax
from jax.flatten_util import ravel_pytree
from blackjax.adaptation.low_rank_adaptation import window_adaptation_low_rank
import catalogue
import arviz as az

name, mode = sys.argv[1], sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
W, N, C = 1000, 1000, 4
glmm = catalogue.load_model(name)
method = "joint"
starts = glmm.initial_positions(seed, C, method)
data, unravel, make_ld, transform = glmm.problem(method, starts[0], basis="centred")
x0 = jnp.stack([ravel_pytree(s)[0] for s in starts])
# the starts are in the user's coordinates: close enough to start a warmup from
ld = make_ld(data)
d = x0.shape[1]
print(name, "dim", d)

def run_chain(key, x):
    k1, k2 = jax.random.split(key)
    if mode == "diag":
        wa = blackjax.window_adaptation(blackjax.nuts, ld, is_mass_matrix_diagonal=True)
    elif mode == "dense":
        wa = blackjax.window_adaptation(blackjax.nuts, ld, is_mass_matrix_diagonal=False)
    else:
        rank = int(mode[2:]) if len(mode) > 2 else 10
        wa = window_adaptation_low_rank(blackjax.nuts, ld, max_rank=rank, gradient_based_init=True)
    (state, params), winfo = wa.run(k1, x, num_steps=W)
    kern = blackjax.nuts(ld, **params)
    def body(s, k):
        s, info = kern.step(k, s)
        return s, (s.position, info.num_integration_steps, info.is_divergent)
    _, (pos, nsteps, div) = jax.lax.scan(body, state, jax.random.split(k2, N))
    wsteps = winfo.info.num_integration_steps.sum()
    return pos, nsteps, div, wsteps

keys = jax.random.split(jax.random.key(seed), C)
f = jax.jit(jax.vmap(run_chain))
t = time.perf_counter(); out = jax.block_until_ready(f(keys, x0)); t1 = time.perf_counter() - t
t = time.perf_counter(); out = jax.block_until_ready(f(keys, x0)); t2 = time.perf_counter() - t
pos, nsteps, div, wsteps = out
# psi = everything not named b
tmpl = starts[0]
flat_names = []
for k in sorted(tmpl):  # ravel_pytree sorts dict keys
    n = np.size(tmpl[k]); flat_names += [k] * n
psi_idx = [i for i, k in enumerate(flat_names) if not k.startswith("b")]
arr = np.asarray(pos)[:, :, psi_idx]
import xarray as xr
ds = xr.Dataset({"x": (("chain", "draw", "p"), arr)})
essv = np.asarray(az.ess(ds, method="bulk")["x"]); rh = np.asarray(az.rhat(ds)["x"])
grads = int(np.asarray(nsteps).sum() + np.asarray(wsteps).sum())
print(f"{name} {mode} seed{seed}: min bulk ESS(psi, sampler coords) {essv.min():.0f}  max rhat {rh.max():.4f}  div {int(np.asarray(div).sum())} "
      f"grads {grads}  steps/draw {np.asarray(nsteps).mean():.1f}  ESS/1000grad {1000*essv.min()/grads:.3f}  wall {t2:.1f}s (first {t1:.1f})")
