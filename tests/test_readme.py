"""The README's Python examples run as written (so the documentation cannot rot)."""
import re
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    monkeypatch.chdir(tmp_path)  # the README saves a fit in the working directory
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    finally:
        plt.close("all")
    idata, same = namespace["tree"], namespace["same"]
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood",
            "posterior_predictive"} <= set(idata.children)
    assert idata.posterior["b"].shape == (2, 200, 18, 2)
    assert namespace["loo"].n_data_points == 180
    np.testing.assert_array_equal(same.draws["b"], idata.posterior["b"].values)
    assert same.model.priors == namespace["model"].priors
    fit = namespace["fit"]
    assert fit.draws["mu"].shape == (4, 500, 2)
    assert set(namespace["natural"]) >= {"mu", "D", "b", "sigma", "tau", "sd", "corr"}
    assert namespace["state"].position.keys() == namespace["position"].keys()
    assert len(namespace["batch"]) == 16 and namespace["batch"][3].draws["mu"].shape == (2, 300, 2)
    assert namespace["result"].ranks.shape[0] == 20
