"""Fits saved by jaxglmm at format version 1 (commit 95808c1, the release before the
redesign), for tests/test_storage.py. Run from a checkout of that commit:
    git worktree add /tmp/old 95808c1
    PYTHONPATH=/tmp/old python tests/data/make_v1.py tests/data
"""
import sys, warnings
import numpy as np, pandas as pd
import jaxglmm
out = sys.argv[1]
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
g = np.repeat([f"g{i}" for i in range(6)], 12)
h = np.tile(np.repeat(["u", "v", "w"], 4), 6)
x = rng.normal(size=g.size)
y = 1 + 0.5 * x + rng.normal(size=g.size)
df = pd.DataFrame({"y": y, "x": x, "g": g, "h": pd.Categorical(h)})
m = jaxglmm.GLMM("y ~ x + (1 + x | g) + (1 | h)", df)
m.sample(chains=2, warmup=100, draws=30, seed=4, progress=False).save(f"{out}/v1_crossed.nc")
n = 40
grp = np.repeat(np.arange(8), 5)
yb = rng.binomial(6, 0.4, n)
m = jaxglmm.GLMM.from_arrays(yb, np.ones(n), grp, X=rng.normal(size=(n, 1)), family="binomial",
                             trials=np.full(n, 6))
m.sample(chains=2, warmup=100, draws=30, seed=5, progress=False).save(f"{out}/v1_arrays_binomial.nc")
m = jaxglmm.GLMM("Reaction ~ Days + (1 + Days | Subject)", jaxglmm.datasets.load_sleepstudy())
m.sample(chains=2, warmup=100, draws=20, seed=3, progress=False).save(f"{out}/v1_sleepstudy.nc")
