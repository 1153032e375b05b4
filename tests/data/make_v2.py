"""Fits saved by jaxglmm at format version 2 (commit ee2ac3d, the release before the ArviZ 1.x
move: Python 3.11, arviz 0.23), for tests/test_storage.py. Run in an environment of that
commit (its own pins, plus h5py, which h5netcdf >= 1.8 no longer brings):
    git worktree add /tmp/old2 ee2ac3d
    python3.11 -m venv /tmp/venv_old && /tmp/venv_old/bin/pip install /tmp/old2 h5py
    cd /tmp && /tmp/venv_old/bin/python /path/to/tests/data/make_v2.py /path/to/tests/data
"""
import sys
import warnings

import numpy as np
import pandas as pd

import jaxglmm

out = sys.argv[1]
warnings.simplefilter("ignore")
rng = np.random.default_rng(1)
g = np.repeat([f"g{i}" for i in range(6)], 12)
h = np.tile(np.repeat(["u", "v", "w"], 4), 6)
x = rng.normal(size=g.size)
exposure = rng.uniform(1, 3, size=g.size)
w = rng.integers(1, 4, size=g.size).astype(float)
y = rng.poisson(np.exp(0.3 + 0.4 * x) * exposure)
df = pd.DataFrame({"y": y, "x": x, "g": g, "h": h, "exposure": exposure, "w": w})
m = jaxglmm.GLMM("y ~ x + offset(log(exposure)) + (1 + x | g) + (1 | h)", df,
                 family="poisson", weights="w")
m.sample(chains=2, warmup=100, draws=30, seed=4, progress=False).save(f"{out}/v2_poisson_offset_weights.nc")
m = jaxglmm.GLMM("Reaction ~ Days + (1 + Days | Subject)", jaxglmm.datasets.load_sleepstudy())
m.sample(chains=2, warmup=100, draws=20, seed=3, progress=False).save(f"{out}/v2_sleepstudy.nc")
