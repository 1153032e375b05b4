"""A small case of the families' simulation-based calibration (benchmarks/sbc_families.py,
`make sbc-families` runs the full study): every replicate is fitted, the ranks lie in 0..L,
and no quantity is grossly miscalibrated (chi-square p > 1e-4 over 5 bins)."""
import numpy as np
import pytest

import sbc_families


@pytest.mark.slow
@pytest.mark.parametrize("family", ["zero_inflated_poisson", "student"])
def test_small_sbc_runs_and_is_not_grossly_off(family):
    res = sbc_families.run_family(family, replications=25, warmup=200, draws=200, thin=4,
                                  seed=3, bins=5)
    assert res["fitted"] == 25, res["failed"]
    ranks = np.asarray(res["ranks"])
    assert ranks.min() >= 0 and ranks.max() <= res["L"]
    name = "nu" if family == "student" else "zi"
    assert name in res["quantities"] and "corr[0,1]" in res["quantities"]
    assert res["min_p"] > 1e-4, res["p_values"]
