"""Small data sets bundled with the package (no download at run time)."""
from __future__ import annotations

from importlib import resources

import pandas as pd


def load_sleepstudy() -> pd.DataFrame:
    """lme4's sleepstudy (Belenky et al. 2003): Reaction time (ms) on Days 0-9 of sleep
    restriction for 18 Subjects; 180 rows."""
    with resources.files("jaxglmm").joinpath("data/sleepstudy.csv").open() as f:
        return pd.read_csv(f)
