"""ESS per second and per gradient: Laplace-guided vs the default parametrisation.
Usage: python measure_laplace.py MODEL CONFIG [SEED]; CONFIG = default | laplace<steps>."""
import dataclasses, json, sys, time
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from jax.flatten_util import ravel_pytree
import jaxglmm
from jaxglmm import bench, diagnostics

name, config = sys.argv[1], sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
if config == "default":
    model = bench.load_model(name)
else:
    model = bench.load_model(name, centred="laplace")
    steps = int(config[len("laplace"):])
    model.spec = dataclasses.replace(model.spec, terms=tuple(
        dataclasses.replace(t, newton_steps=steps) for t in model.spec.terms))
# cost of one gradient, min over repeats
pos = model.initial_position(0)
x0, unravel = ravel_pytree(pos)
vg = jax.jit(jax.value_and_grad(lambda x: model.logdensity_fn(unravel(x))))
jax.block_until_ready(vg(x0))
best = np.inf
for _ in range(5):
    t = time.perf_counter()
    for _ in range(50):
        out = vg(x0)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - t) / 50)
fit = model.sample(chains=4, warmup=500, draws=500, seed=seed, progress=False)
draws = bench.reference_draws(fit)
ess = {k: diagnostics.ess_bulk(v) for k, v in draws.items()}
worst = min(ess, key=ess.get)
grads = int(fit.sample_stats["n_steps"].sum())
row = dict(model=name, config=config, seed=seed, parametrisation=fit.info["parametrisation"],
           min_ess=round(ess[worst], 1), worst=worst,
           max_rhat=round(max(diagnostics.rhat(v) for v in draws.values()), 4),
           divergences=int(fit.num_divergences), sampling_s=round(fit.info["sampling_s"], 2),
           warmup_s=round(fit.info["warmup_s"], 2), grads=grads,
           ess_per_s=round(ess[worst] / fit.info["sampling_s"], 1),
           ess_per_1k_grad=round(1000 * ess[worst] / grads, 2),
           grad_us=round(best * 1e6, 1), mean_steps=round(grads / 2000, 1))
print(json.dumps(row))
