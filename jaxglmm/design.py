"""Checking the user's arrays and turning them into model data (NumPy, before any tracing).

Every check raises ValueError naming the argument, the first offending row and what is
allowed. The caller's arrays are copied, never modified.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .family_base import Family


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
    """Validated float64 copies of the user's arrays (n_obs rows, p fixed columns) and one
    `RandomTerm` per random-effect term (K >= 1 of them, all alike: every term is checked by
    `random_term`)."""

    y: np.ndarray        # (n_obs,)
    X: np.ndarray        # (n_obs, p)
    trials: np.ndarray   # (n_obs,)
    offset: np.ndarray   # (n_obs,)
    x_names: tuple       # (p,)
    terms: tuple = ()    # (RandomTerm, ...) K terms, in the formula's order
    weights: np.ndarray | None = None  # (n_obs,) >= 0, each row's log likelihood multiplier

    def __post_init__(self):
        if self.weights is None:
            object.__setattr__(self, "weights", np.ones(self.y.shape[0]))


def _is_missing(v) -> bool:
    """None, NaN, pd.NA or NaT (a missing value, reported by check_finite with its row)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and np.isnan(v)


def _shown(v) -> str:
    """A value as the user wrote it ('a', 2.5, not np.str_('a')), cut to 40 characters."""
    if isinstance(v, np.generic):
        v = v.item()
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _where(index: tuple, column=None) -> str:
    """"row i" of a vector, "row i, column j" of a matrix, "column 'c', row i" of a named
    column of a DataFrame."""
    if not index:
        return "the value"
    if column is not None:
        return f"column {column!r}, row {index[0]}"
    if len(index) == 1:
        return f"row {index[0]}"
    return f"row {index[0]}, column {index[1]}"


def _elements_as_float(values: np.ndarray, name: str, column=None) -> np.ndarray:
    """float64 copy of an object (or str/bytes) array, element by element: numbers and
    booleans as such, missing values as NaN; a string or anything else that is not a real
    number is an error naming the first such element (`column`: the DataFrame column that
    `values` is)."""
    out = np.empty(values.shape, dtype=float)
    for index, v in np.ndenumerate(values):
        if _is_missing(v):
            out[index] = np.nan
            continue
        bad = isinstance(v, (str, bytes, complex, np.complexfloating, np.datetime64,
                             np.timedelta64))
        what = "a string" if isinstance(v, (str, bytes)) else type(v).__name__
        if not bad:
            try:
                out[index] = float(v)
            except OverflowError:
                bad, what = True, f"{what}, too large for a float"
            except (TypeError, ValueError):
                bad = True
        if bad:
            raise ValueError(f"{name}: must be numeric; {_where(index, column)} has "
                             f"{_shown(v)} ({what}).")
    return out


def series_as_float(s: pd.Series, name: str, column=None) -> np.ndarray:
    """float64 copy of one pandas column: numeric, boolean and nullable dtypes directly
    (pd.NA -> NaN), categoricals by their values, others element by element."""
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        values = s.astype(object).to_numpy(dtype=object)
    elif pd.api.types.is_bool_dtype(dtype) or (pd.api.types.is_numeric_dtype(dtype)
                                               and not pd.api.types.is_complex_dtype(dtype)):
        return s.to_numpy(dtype=float, na_value=np.nan, copy=True)
    else:
        values = s.to_numpy(dtype=object)
    return _elements_as_float(values, name, column)


def _as_float(value, name: str, ndim: int) -> np.ndarray:
    """A float64 copy of `value` with 1 or 2 dims (a vector becomes one column).

    Takes numbers and booleans in lists, tuples, NumPy arrays of any real dtype, pandas
    Series and DataFrames (numeric, boolean, nullable Int64/Float64/boolean and categorical
    columns). Missing values (None, NaN, pd.NA) become NaN, for check_finite to report with
    their row; strings, complex numbers, dates and other objects are errors naming the first
    such row.
    """
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name}: must be numeric, got the string {value!r}.")
    if isinstance(value, pd.DataFrame):
        cols = [series_as_float(value.iloc[:, j], name, value.columns[j])
                for j in range(value.shape[1])]
        arr = np.column_stack(cols) if cols else np.zeros((len(value), 0))
    elif isinstance(value, (pd.Series, pd.Index, pd.Categorical,
                            pd.api.extensions.ExtensionArray)):
        arr = series_as_float(pd.Series(value), name)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numpy's ragged-array deprecation
                raw = np.asarray(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: must be a rectangular array of numbers (every row of "
                             "the same length).") from None
        kind = raw.dtype.kind
        if kind in "biuf":
            arr = raw.astype(float, copy=True)
        elif kind in "OUS":
            arr = _elements_as_float(raw, name)
        else:  # complex, dates, times, structured
            flat = raw.reshape(-1)
            raise ValueError(f"{name}: must be real numbers, got an array of dtype {raw.dtype}"
                             + (f" (e.g. {_shown(flat[0])})." if flat.size else "."))
    if ndim == 2 and arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != ndim:
        what = "a vector" if ndim == 1 else "a matrix (rows = observations)"
        raise ValueError(f"{name}: must be {what}, got an array of shape {arr.shape}.")
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(arr.shape[0], -1).any(axis=1))[0])
        raise ValueError(f"{name}: contains NaN or inf, first at row {row} "
                         f"({arr[row].tolist()!r}).")


MAX_ABS = 1e60     # largest magnitude of a number in y, X, Z, offset
MIN_SPREAD = 1e-60  # smallest sd of a non-constant column (and magnitude of a constant one)
MAX_EXP_OFFSET = 700.0  # largest offset for the log and cloglog links: exp(offset) stays finite


def _check_scale(arr: np.ndarray, name: str, spread: bool = True) -> None:
    """Numbers the default priors and initial values can be scaled to: |value| <= 1e60, and
    (`spread`) every column either constant (at 0 or |c| >= 1e-60) or with sd >= 1e-60.
    Beyond that, sd(y) / sd(z)^2-type ratios in the defaults overflow or underflow float64."""
    M = arr.reshape(arr.shape[0], -1)
    big = np.abs(M) > MAX_ABS
    if big.any():
        row = int(np.flatnonzero(big.any(axis=1))[0])
        col = "" if arr.ndim == 1 else f", column {int(np.flatnonzero(big[row])[0])}"
        value = M[row][big[row]][0]
        raise ValueError(f"{name}: row {row}{col} has {value:.6g}; numbers must be at most "
                         f"{MAX_ABS:.0e} in magnitude: rescale the data (default priors and "
                         "initial values are scaled to it).")
    if not spread:
        return
    for j, col in enumerate(M.T):
        where = "" if arr.ndim == 1 else f" column {j}"
        sd = float(np.std(col))
        if sd == 0:
            c = abs(float(col[0]))
            if 0 < c < MIN_SPREAD:
                raise ValueError(f"{name}:{where} is constant at {col[0]:.6g}; a constant must "
                                 f"be 0 or at least {MIN_SPREAD:.0e} in magnitude: rescale "
                                 "it.")
        elif sd < MIN_SPREAD:
            raise ValueError(f"{name}:{where} varies too little (sd {sd:.3g} < "
                             f"{MIN_SPREAD:.0e}) for the default priors, which are scaled "
                             "by 1/sd: rescale it.")


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


def _label_kind(v) -> str:
    """Which kind of label v is: labels of different kinds must not be mixed (1 and "1", or
    True and 1, would be two clusters shown alike, or one cluster)."""
    if isinstance(v, (str, bytes)):
        return "string"
    if isinstance(v, (bool, np.bool_)):
        return "boolean"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "number"
    return type(v).__name__


def encode_groups(groups, n: int, name: str = "groups") -> tuple[np.ndarray, tuple]:
    """Cluster index (n,) in the order of the sorted labels, and the labels (N,); `name`
    is what error messages call the labels."""
    try:
        ndim = np.ndim(groups)
    except ValueError:  # a ragged nested list
        ndim = -1
    if isinstance(groups, (str, bytes)) or ndim != 1:
        raise ValueError(f"{name}: must be a one-dimensional array with one label per "
                         f"observation; got {'a ragged list' if ndim < 0 else 'shape '}"
                         f"{'' if ndim < 0 else np.shape(groups)}.")
    labels = pd.Series(list(groups), dtype=object)
    if len(labels) != n:
        raise ValueError(f"{name}: has {len(labels)} rows but y has {n}; they must agree.")
    missing = labels.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(f"{name}: missing label at row {row}; every observation needs a "
                         "group.")
    kinds = [_label_kind(v) for v in labels]
    other = next((i for i, k in enumerate(kinds) if k != kinds[0]), None)
    if other is not None:
        raise ValueError(f"{name}: labels must be of one comparable type (all numbers or all "
                         f"strings); row 0 has {_shown(labels[0])} ({kinds[0]}) but row "
                         f"{other} has {_shown(labels[other])} ({kinds[other]}).")
    try:
        codes, uniques = pd.factorize(labels, sort=True)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: labels must be sortable, of one comparable type "
                         f"(all numbers or all strings); got {_shown(labels[0])} "
                         f"({kinds[0]}).") from None
    return codes.astype(np.int32), tuple(uniques.tolist())


def prepare_arrays(y, Z, groups, X, family: Family, trials, offset, x_names,
                   z_names, weights=None) -> ArrayData:
    """Validate and copy the arrays of `GLMM.from_arrays` (one random-effect term).

    Raises:
        ValueError: disagreeing lengths, NaN/inf, y outside the family's support, bad trials,
            an empty Z, X and Z sharing a column, or bad names.
    """
    common = prepare_common(y, X, family, trials, offset, x_names, weights)
    term = random_term(Z, groups, common, z_names)
    return replace(common, terms=(term,))


def prepare_common(y, X, family: Family, trials, offset, x_names,
                   weights=None) -> ArrayData:
    """Validate and copy what every term shares: y, X, trials, offset, x_names and weights
    (None: ones); the returned ArrayData has no terms yet (add them with `random_term`).

    Raises:
        ValueError: naming y, X, trials, offset, x_names or weights and the first bad row.
    """
    y = _as_float(y, "y", 1)
    n = y.shape[0]
    if n == 0:
        raise ValueError("y: is empty; the model needs at least one observation.")
    check_finite(y, "y")
    _check_scale(y, "y", spread=family.collapsible)
    X = np.zeros((n, 0)) if X is None else _as_float(X, "X", 2)
    _check_length(X, "X", n)
    check_finite(X, "X")
    _check_scale(X, "X")
    if offset is None:
        offset = np.zeros(n)
    else:
        offset = _as_float(offset, "offset", 1)
        _check_length(offset, "offset", n)
        check_finite(offset, "offset")
        _check_scale(offset, "offset", spread=False)
        if family.link in ("log", "cloglog") and np.any(offset > MAX_EXP_OFFSET):
            row = int(np.flatnonzero(offset > MAX_EXP_OFFSET)[0])
            raise ValueError(f"offset: row {row} has {offset[row]:.6g}; with the "
                             f"{family.link} link exp(offset) overflows above "
                             f"{MAX_EXP_OFFSET:.0f}.")
    if family.has_trials:
        if trials is None:
            raise ValueError(f"trials: family {family.name!r} needs the number of trials.")
        trials = _as_float(trials, "trials", 1)
        _check_length(trials, "trials", n)
        check_finite(trials, "trials")
    elif trials is not None:
        raise ValueError(f"trials: only the binomial family takes trials, not {family.name!r}.")
    else:
        trials = np.ones(n)
    family.check_response(y, trials if family.has_trials else None)
    x_names = _names(x_names, _default_names(X, "x"), "x_names")
    return ArrayData(y, X, trials, offset, x_names, weights=check_weights(weights, n))


def check_weights(weights, n: int, name: str = "weights") -> np.ndarray:
    """A float64 copy (n,) of observation weights: finite, >= 0, not all 0 (None: ones).

    Raises:
        ValueError: naming `name` and the first bad row.
    """
    if weights is None:
        return np.ones(n)
    w = _as_float(weights, name, 1)
    _check_length(w, name, n)
    check_finite(w, name)
    if np.any(w < 0):
        row = int(np.flatnonzero(w < 0)[0])
        raise ValueError(f"{name}: row {row} has {w[row]:.6g}; weights must be >= 0 (each "
                         "row's log likelihood is multiplied by its weight).")
    if not np.any(w > 0):
        raise ValueError(f"{name}: all weights are 0; the model would have no data.")
    return w


def random_term(Z, groups, common: ArrayData, z_names=None, name: str = "group",
                mu_free: tuple | None = None, what: str = "Z", groups_what: str = "groups",
                x_what: str = "X") -> RandomTerm:
    """One random-effect term, checked alike for every term of a model: Z (n_obs, q) numeric,
    finite, on a scale the defaults can take, with q >= 1 columns none of which equals a
    column of common.X (its mean would not be identified); one group label per row.

    Args:
        Z: the term's design (n_obs, q), or (n_obs,) for one column.
        groups: one label per observation (n_obs,).
        common: the checked shared arrays (`prepare_common`).
        z_names: column names (q,) or None ("Intercept" for a column of ones, else z1...).
        name: the grouping factor's name; mu_free: columns whose mean is a parameter (None:
            all of them).
        what, groups_what, x_what: what error messages call Z, the labels and X (the
            formula says "term (1 + x | g)", "grouping factor 'g'" and "fixed part").
    Raises:
        ValueError: naming `what` (or `groups_what`) and the first bad row.
    """
    n = common.y.shape[0]
    Z = _as_float(Z, what, 2)
    _check_length(Z, what, n)
    if Z.shape[1] == 0:
        raise ValueError(f"{what}: has no columns; the model needs at least one random effect "
                         "(use a column of ones for a random intercept).")
    check_finite(Z, what)
    _check_scale(Z, what)
    cluster, labels = encode_groups(groups, n, groups_what)
    names_what = "z_names" if what == "Z" else what
    z_names = _names(z_names, _default_names(Z, "z"), names_what)
    X, x_names = common.X, common.x_names
    for j in range(X.shape[1]):
        for k in range(Z.shape[1]):
            if np.array_equal(X[:, j], Z[:, k]):
                raise ValueError(
                    f"{x_what}: column {x_names[j]!r} equals {what} column {z_names[k]!r}; a column "
                    "in both the fixed and the random part is not identifiable (its mean is "
                    "mu).")
    free = tuple(range(Z.shape[1])) if mu_free is None else tuple(mu_free)
    return RandomTerm(Z, cluster, labels, z_names, name, free)


CENTRED_THRESHOLD = 3.0


def information_ratio(arrays: ArrayData, family: Family, term: int = 0) -> float:
    """How strongly the data inform each cluster's b_i relative to a unit-scale prior guess.

    For every cluster and random column k: sum_j w_ij z_ijk^2 * v_k, with w the GLM working
    weight at the pooled mean and v_k a prior guess of var(b_k) on the link scale, both from
    `Family.working_weight` (bernoulli/binomial n p(1-p) for logit, poisson the mean,
    gaussian 1/var(y); v 1 for GLMMs, var(y)/2 for gaussian), v_k divided by var(z_k) for
    non-constant columns.
    Returns the median over clusters of the smallest ratio over columns, for random-effect
    term `term` (0: the first).
    """
    w, v = family.working_weight(arrays.y, arrays.trials)
    w = w * arrays.weights  # a row of weight w counts as w rows
    t = arrays.terms[term]
    col_var = np.var(t.Z, axis=0)
    v_k = np.where(col_var > 0, v / np.where(col_var > 0, col_var, 1.0), v)
    info = np.zeros((len(t.groups), t.Z.shape[1]))
    np.add.at(info, t.cluster, w[:, None] * t.Z**2)
    return float(np.median(np.min(info * v_k, axis=1)))


def choose_centred(arrays: ArrayData, family: Family, term: int = 0) -> bool:
    """The documented rule: centred b when the data dominate a unit-scale prior for the
    typical cluster (information ratio >= 3), non-centred otherwise. A gaussian model with
    one term is sampled collapsed by default; a forced joint run is non-centred (on
    sleepstudy, ratio 5, the centred joint sampler diverged). With several terms the one
    with the most levels is integrated out (non-centred in a forced joint run) and the
    others are sampled, by the rule (on InstEval's lecturers, 65
    ratings each, non-centred gave bulk ESS 108 for their sd in 600 draws, centred 667)."""
    sizes = [(len(t.groups), t.Z.shape[1]) for t in arrays.terms]
    if family.collapsible and (len(sizes) == 1 or term == largest_term(sizes)):
        return False  # integrated out by default; a forced joint run moves it non-centred
    return information_ratio(arrays, family, term) >= CENTRED_THRESHOLD


def largest_term(sizes: list) -> int:
    """Index of the term with the most levels (then the most coefficients N q; then the
    first), from (N_k, q_k) per term: the one a gaussian model integrates out."""
    keys = [(N, N * q, -k) for k, (N, q) in enumerate(sizes)]
    return -max(keys)[2]
