"""Checking the user's arrays and turning them into model data (NumPy, before any tracing).

Every check raises ValueError naming the argument, the first offending row and what is
allowed. The caller's arrays are copied, never modified.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .families import Family


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term's design (n_obs rows, N levels, q columns)."""

    Z: np.ndarray        # (n_obs, q)
    cluster: np.ndarray  # (n_obs,) int32 in 0..N-1, sorted-label order
    groups: tuple        # (N,) sorted level labels of the grouping factor
    z_names: tuple       # (q,)
    name: str            # the grouping factor, e.g. "Subject" or "herd:period"
    mu_free: tuple       # columns whose mean mu is a parameter (the others have mean 0)


@dataclass(frozen=True)
class ArrayData:
    """Validated float64 copies of the user's arrays (n_obs rows).

    Z, cluster, groups, z_names describe the first random-effect term (N clusters, q
    columns); `extra` holds RandomTerms 2..K of a formula with several terms. `terms` gives
    all of them alike.
    """

    y: np.ndarray        # (n_obs,)
    X: np.ndarray        # (n_obs, p)
    Z: np.ndarray        # (n_obs, q)
    cluster: np.ndarray  # (n_obs,) int32 in 0..N-1, sorted-label order
    trials: np.ndarray   # (n_obs,)
    offset: np.ndarray   # (n_obs,)
    groups: tuple        # (N,) sorted group labels
    x_names: tuple       # (p,)
    z_names: tuple       # (q,)
    group_name: str = "group"
    mu_free: tuple | None = None  # first term's columns with a mean parameter (None: all)
    extra: tuple = ()    # (RandomTerm, ...) terms 2..K

    @property
    def terms(self) -> tuple:
        """(RandomTerm, ...): every random-effect term, the first one first."""
        free = tuple(range(self.Z.shape[1])) if self.mu_free is None else self.mu_free
        first = RandomTerm(self.Z, self.cluster, self.groups, self.z_names, self.group_name,
                           free)
        return (first,) + tuple(self.extra)


def _as_float(value, name: str, ndim: int) -> np.ndarray:
    """A float64 copy of `value` with 1 or 2 dims (a vector becomes one column)."""
    try:
        arr = np.array(value, dtype=float, copy=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: must be numeric; {err}.") from None
    if ndim == 2 and arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != ndim:
        what = "a vector" if ndim == 1 else "a matrix (rows = observations)"
        raise ValueError(f"{name}: must be {what}, got an array of shape {arr.shape}.")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(arr.shape[0], -1).any(axis=1))[0])
        raise ValueError(f"{name}: contains NaN or inf, first at row {row} "
                         f"({arr[row].tolist()!r}).")


def _check_length(arr: np.ndarray, name: str, n: int) -> None:
    if arr.shape[0] != n:
        raise ValueError(f"{name}: has {arr.shape[0]} rows but y has {n}; they must agree.")


def _names(names, default: list[str], name: str) -> tuple:
    if names is None:
        return tuple(default)
    names = tuple(str(v) for v in names)
    if len(names) != len(default):
        raise ValueError(f"{name}: has {len(names)} names for {len(default)} columns.")
    if len(set(names)) != len(names):
        raise ValueError(f"{name}: names must be unique, got {names!r}.")
    return names


def _default_names(M: np.ndarray, prefix: str) -> list[str]:
    return ["Intercept" if M.shape[0] and np.all(col == 1.0) else f"{prefix}{j + 1}"
            for j, col in enumerate(M.T)]


def _encode_groups(groups, n: int) -> tuple[np.ndarray, tuple]:
    """Cluster index (n,) in the order of the sorted labels, and the labels (N,)."""
    if isinstance(groups, (str, bytes)) or np.ndim(groups) != 1:
        raise ValueError("groups: must be a one-dimensional array with one label per "
                         f"observation; got shape {np.shape(groups)}.")
    labels = pd.Series(list(groups), dtype=object)
    if len(labels) != n:
        raise ValueError(f"groups: has {len(labels)} rows but y has {n}; they must agree.")
    missing = labels.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(f"groups: missing label at row {row}; every observation needs a group.")
    is_str = labels.map(lambda v: isinstance(v, (str, bytes))).to_numpy()
    if is_str.any() and not is_str.all():
        row = int(np.flatnonzero(is_str != is_str[0])[0])
        raise ValueError("groups: labels must be of one comparable type (all numbers or all "
                         f"strings); row 0 has {labels[0]!r} but row {row} has "
                         f"{labels[row]!r}.")
    try:
        codes, uniques = pd.factorize(labels, sort=True)
    except TypeError:
        raise ValueError("groups: labels must be of one comparable type "
                         "(all numbers or all strings).") from None
    return codes.astype(np.int32), tuple(uniques.tolist())


def prepare_arrays(y, Z, groups, X, family: Family, trials, offset, x_names,
                   z_names) -> ArrayData:
    """Validate and copy the arrays of `GLMM.from_arrays`.

    Raises:
        ValueError: disagreeing lengths, NaN/inf, y outside the family's support, bad trials,
            an empty Z, X and Z sharing a column, or bad names.
    """
    y = _as_float(y, "y", 1)
    n = y.shape[0]
    if n == 0:
        raise ValueError("y: is empty; the model needs at least one observation.")
    _check_finite(y, "y")
    Z = _as_float(Z, "Z", 2)
    _check_length(Z, "Z", n)
    if Z.shape[1] == 0:
        raise ValueError("Z: has no columns; the model needs at least one random effect "
                         "(use a column of ones for a random intercept).")
    _check_finite(Z, "Z")
    X = np.zeros((n, 0)) if X is None else _as_float(X, "X", 2)
    _check_length(X, "X", n)
    _check_finite(X, "X")
    if offset is None:
        offset = np.zeros(n)
    else:
        offset = _as_float(offset, "offset", 1)
        _check_length(offset, "offset", n)
        _check_finite(offset, "offset")
    if family.has_trials:
        if trials is None:
            raise ValueError(f"trials: family {family.name!r} needs the number of trials.")
        trials = _as_float(trials, "trials", 1)
        _check_length(trials, "trials", n)
        _check_finite(trials, "trials")
    elif trials is not None:
        raise ValueError(f"trials: only the binomial family takes trials, not {family.name!r}.")
    else:
        trials = np.ones(n)
    family.check_response(y, trials if family.has_trials else None)
    cluster, labels = _encode_groups(groups, n)
    x_names = _names(x_names, _default_names(X, "x"), "x_names")
    z_names = _names(z_names, _default_names(Z, "z"), "z_names")
    for j in range(X.shape[1]):
        for k in range(Z.shape[1]):
            if np.array_equal(X[:, j], Z[:, k]):
                raise ValueError(
                    f"X: column {x_names[j]!r} equals Z column {z_names[k]!r}; a column in both "
                    "the fixed and the random part is not identifiable (its mean is mu).")
    return ArrayData(y, X, Z, cluster, trials, offset, labels, x_names, z_names)


CENTRED_THRESHOLD = 3.0


def information_ratio(arrays: ArrayData, family: Family, term: int = 0) -> float:
    """How strongly the data inform each cluster's b_i relative to a unit-scale prior guess.

    For every cluster and random column k: sum_j w_ij z_ijk^2 * v_k, with w the GLM working
    weight at the pooled mean (bernoulli/binomial n p(1-p) for logit, its probit and cloglog
    analogues; poisson mean; gaussian 1/var(y)) and v_k a prior guess of var(b_k) on the link
    scale (1 for GLMMs, var(y)/2 for gaussian; divided by var(z_k) for non-constant columns).
    Returns the median over clusters of the smallest ratio over columns, for random-effect
    term `term` (0: the first).
    """
    from scipy.stats import norm

    y, n = arrays.y, arrays.trials
    if family.name in ("bernoulli", "binomial"):
        p = float(np.clip(y.sum() / n.sum(), 0.01, 0.99))
        if family.link == "logit":
            w = n * p * (1 - p)
        elif family.link == "probit":
            w = n * norm.pdf(norm.ppf(p)) ** 2 / (p * (1 - p))
        else:  # cloglog
            w = n * np.log1p(-p) ** 2 * (1 - p) / p
        v = 1.0
    elif family.name == "poisson":
        w, v = np.full(y.shape, max(float(y.mean()), 0.01)), 1.0
    else:
        var = float(np.var(y)) or 1.0
        w, v = np.full(y.shape, 1.0 / var), var / 2.0
    t = arrays.terms[term]
    col_var = np.var(t.Z, axis=0)
    v_k = np.where(col_var > 0, v / np.where(col_var > 0, col_var, 1.0), v)
    info = np.zeros((len(t.groups), t.Z.shape[1]))
    np.add.at(info, t.cluster, w[:, None] * t.Z**2)
    return float(np.median(np.min(info * v_k, axis=1)))


def choose_centred(arrays: ArrayData, family: Family, term: int = 0) -> bool:
    """The documented rule: for GLMMs, centred b when the data dominate a unit-scale prior for
    the typical cluster (information ratio >= 3), non-centred otherwise. Gaussian models are
    sampled collapsed by default; a forced joint run is non-centred (on sleepstudy, ratio 5,
    the centred joint sampler diverged)."""
    if family.name == "gaussian":
        return False
    return information_ratio(arrays, family, term) >= CENTRED_THRESHOLD
