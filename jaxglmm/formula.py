"""lme4-style formulas on pandas DataFrames (DESIGN.md sections 1 and 6).

    y ~ x + f + x:f + (1 + t | id) + (1 | site/plot)

The fixed part is parsed by `formulae` (numeric and categorical predictors with treatment
coding, interactions, functions); each parenthesised random term "(expr | g)" is split off
here, its design built by `formulae` from `expr` and its levels from the grouping columns.
"(expr | a/b)" is lme4's nesting: the terms (expr | a) and (expr | a:b). "(expr || g)" gives
uncorrelated effects: one term per column of expr.

A column that stands in the fixed part and in a random term becomes that term's mu (the mean
of its b_i, DESIGN.md section 1): the first term holding it claims it, and it leaves beta.
Random columns not in the fixed part have mean 0, as in lme4.

Binomial responses: "cbind(successes, failures)" (or of expressions, as in
"cbind(s, n - s)"), "successes/trials" or "p(successes, trials)". "offset(expr)" in the fixed
part is a known term of the linear predictor (several are summed), as in lme4. The syntax
(pieces of the formula, before any data) is `jaxglmm.formula_syntax`.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .design import ArrayData, check_finite, prepare_common, random_term, series_as_float
from .family_base import Family
from .formula_syntax import (FormulaParts, fail, one_line, response_columns, response_spec,
                             split_formula, variables)

NA_ACTIONS = ("raise", "drop")
# functions a formula may call, besides formulae's own (C(), scale(), center(), ...)
NAMESPACE = {"log": np.log, "log1p": np.log1p, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
             "np": np}


@dataclass(frozen=True)
class FormulaDesign:
    """A parsed formula with its data: the model arrays and what predictions need."""

    formula: str
    response: tuple      # ("column", y) | ("cbind", s, f) | ("trials", s, n) | ("expr", lhs)
    #                      | ("cbind_expr", s_expr, f_expr)
    fixed: str           # the fixed part's right-hand side given to formulae
    terms: tuple         # (jaxglmm.formula_syntax.TermFormula, ...)
    x_columns: tuple     # formulae's fixed columns kept in X (beta)
    arrays: ArrayData
    data: pd.DataFrame   # the used columns of the used rows (a copy)
    n_dropped: int       # rows dropped for missing values (na_action="drop")
    offsets: tuple = ()  # offset(expr) expressions of the fixed part, summed into the offset

def _design(expression: str, data: pd.DataFrame, what: str):
    """formulae's common design of a right-hand side: (matrix (n, k), column names, object)."""
    from formulae import design_matrices
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # log(0) etc.: checked below
            dm = design_matrices(expression, data, na_action="error",
                                 extra_namespace=NAMESPACE)
            common = dm.common
            if common is None:
                return np.zeros((len(data), 0)), (), None
            frame = common.as_dataframe()
            matrix = np.asarray(frame, dtype=float)
    except Exception as err:
        matrix, problem = None, one_line(err)
    if matrix is None:
        fail(f"formula: cannot build the {what} {expression!r}: {problem}")
    return matrix, tuple(str(c) for c in frame.columns), common


def _name_hint(data: pd.DataFrame) -> str:
    """What a formula error adds when the data have columns that need backticks."""
    odd = [str(c) for c in data.columns if not re.fullmatch(r"[A-Za-z][\w.]*", str(c))]
    if not odd:
        return ""
    hint = (f" (a column name that is not a Python identifier, such as {odd[0]!r}, is written "
            f"in backticks: `{odd[0]}`")
    ticked = [c for c in odd if "`" in c]
    if ticked:
        hint += (f"; a name with a backtick, such as {ticked[0]!r}, cannot be written in a "
                 "formula: rename that column")
    return hint + ")"


def _describe_value(v) -> str:
    return f"{v!r} ({'a string' if isinstance(v, str) else type(v).__name__})"


def _normalise_columns(frame: pd.DataFrame, expr_cols: list) -> pd.DataFrame:
    """The columns that formula expressions use, in dtypes formulae handles: nullable
    numbers and booleans as NumPy ones, pandas strings as objects, object columns of numbers
    as floats. Mixed-type object columns and dates are errors naming the column."""
    for col in expr_cols:
        s = frame[col]
        dtype = s.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.is_float_dtype(dtype):
            inf = np.isinf(s.to_numpy(dtype=float, na_value=np.nan))
            if inf.any():
                row = int(np.flatnonzero(inf)[0])
                fail(f"data: column {col!r} has {s.iloc[row]} at row {row}; a formula needs "
                      "finite numbers.")
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and (
                pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype)):
            frame[col] = s.to_numpy(dtype=bool if pd.api.types.is_bool_dtype(dtype)
                                    else float)
        elif isinstance(dtype, pd.StringDtype):
            frame[col] = s.astype(object)
        elif dtype == object:
            values = s.to_numpy(dtype=object)
            kinds = ["str" if isinstance(v, str) else
                     "bool" if isinstance(v, (bool, np.bool_)) else
                     "number" if isinstance(v, (int, float, np.integer, np.floating))
                     else "other" for v in values]
            first_other = next((i for i, k in enumerate(kinds) if k != kinds[0]), None)
            if kinds and kinds[0] == "other":
                first_other = 0
            if first_other is not None:
                fail(f"data: column {col!r} mixes kinds of values (row 0 has "
                      f"{_describe_value(values[0])}, row {first_other} has "
                      f"{_describe_value(values[first_other])}); a formula needs numbers, "
                      "booleans or strings, one kind per column.")
            if kinds and kinds[0] == "number":
                frame[col] = s.to_numpy(dtype=float)
            elif kinds and kinds[0] == "bool":
                frame[col] = s.to_numpy(dtype=bool)
        elif not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) \
                or pd.api.types.is_complex_dtype(dtype):
            fail(f"data: column {col!r} holds {dtype} values, which a formula cannot use; "
                  "convert it to numbers or strings.")
    return frame


def group_labels(data: pd.DataFrame, cols: tuple, name: str) -> np.ndarray:
    """One label per row for the grouping columns `cols` (joined by ':' when several)."""
    for col in cols:
        s = data[col]
        v = s.to_numpy(float) if pd.api.types.is_float_dtype(s) else None
        # (inf is not a whole number: np.mod of it would warn)
        if v is not None and not np.all(np.isfinite(v) & (np.mod(np.where(np.isfinite(v), v,
                                                                             0.0), 1) == 0)):
            warnings.warn(f"grouping factor {col!r} of term ({name}) is a continuous number "
                          f"column; it is used as a label with {s.nunique()} levels. Convert "
                          "it (e.g. to str or int) if that is what you mean.", UserWarning,
                          stacklevel=5)
    if len(cols) == 1:
        s = data[cols[0]]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(s.cat.categories.dtype if s.cat.categories.dtype != object else object)
        values = s.to_numpy(dtype=object)
        if pd.api.types.is_bool_dtype(s):
            values = s.astype(str).to_numpy(dtype=object)
        return values
    return data[list(cols)].astype(str).agg(":".join, axis=1).to_numpy(dtype=object)


def parse_formula(formula: str, data, family: Family, na_action: str = "raise",
                  weights=None) -> FormulaDesign:
    """Validate a formula against a DataFrame and build the model arrays.

    Column names that are not Python identifiers are written in backticks, as formulae
    does: "`my y` ~ `dose (mg)` + (1 | `herd id`)". A name holding a backtick cannot be
    written at all. "offset(expr)" terms of the fixed part are evaluated and summed into
    the linear predictor's known offset (not coefficients), as in lme4.

    `weights`: None, a column name of `data`, or an array with one weight per row of `data`:
    each observation's log likelihood is multiplied by its weight (brms' weights(), lme4's
    weights).

    Raises:
        ValueError: bad formula, missing column, missing values (na_action="raise"), a
            grouping factor with one level, a response the family cannot take, bad weights.
            Rows in messages are positions in `data` (0-based), also after
            na_action="drop".
    """
    if not isinstance(data, pd.DataFrame):
        fail(f"data: must be a pandas DataFrame, got {type(data).__name__}.")
    if na_action not in NA_ACTIONS:
        fail(f"na_action={na_action!r} is unknown; choose 'raise' or 'drop'.")
    hint = _name_hint(data)
    parts = split_formula(formula)
    lhs, fixed, terms, offsets = parts
    response = response_spec(lhs, family)
    response_cols = response_columns(response, hint)
    expr_cols = sorted(variables(fixed, "fixed part", hint))
    for expr in offsets:
        expr_cols += sorted(variables(expr, f"offset({expr})", hint))
    for t in terms:
        expr_cols += sorted(variables(t.expr, f"term ({t.expr} | {t.name})", hint))
    groups = [c for t in terms for c in t.factors]
    weight_col = [weights] if isinstance(weights, str) else []
    used = list(dict.fromkeys(response_cols + expr_cols + groups + weight_col))
    columns = [str(c) for c in data.columns]
    missing = [c for c in used if c not in columns]
    if missing:
        fail(f"data: has no column {missing[0]!r} (used by the formula); its columns are "
             f"{', '.join(map(repr, columns))}{hint}.")
    duplicated = [c for c in used if columns.count(c) > 1]
    if duplicated:
        fail(f"data: column {duplicated[0]!r} appears more than once; the columns that the "
             "formula uses must have unique names.")
    if "Intercept" in expr_cols:
        fail("data: column 'Intercept' has the name that formulae gives the intercept, and "
             "it would be dropped silently; rename it.")
    frame = data.iloc[:, [columns.index(c) for c in used]].copy()
    frame.columns = used
    if weights is not None and not weight_col:  # an array: one weight per row of data
        try:
            n_w = len(weights)
        except TypeError:
            n_w = None
        if n_w != len(data):
            fail(f"weights: must be a column name or one weight per row of data ({len(data)} "
                 f"rows); got {'no sequence' if n_w is None else f'{n_w} values'}.")
    na = frame.isna()
    rows = na.any(axis=1).to_numpy()
    n_dropped = 0
    if rows.any():
        cols = [c for c in used if na[c].any()]
        if na_action == "raise":
            first = int(np.flatnonzero(rows)[0])
            fail(f"data: {int(rows.sum())} rows have missing values (columns "
                 f"{', '.join(repr(c) + f' ({int(na[c].sum())})' for c in cols)}; first at "
                 f"row {first}); pass na_action='drop' to drop them.")
        n_dropped = int(rows.sum())
        frame = frame.loc[~rows]
        warnings.warn(f"na_action='drop': dropped {n_dropped} of {len(rows)} rows with "
                      f"missing values in {', '.join(map(repr, cols))}.", UserWarning,
                      stacklevel=4)
        if frame.empty:
            fail("data: no rows left after dropping the rows with missing values.")
    frame = frame.reset_index(drop=True)
    if frame.empty:
        fail("data: is empty; the model needs at least one observation.")
    kept = np.flatnonzero(~rows)  # row of the reduced frame -> row of data
    try:
        w = (frame[weights] if weight_col else None if weights is None
             else np.asarray(weights, dtype=object)[~rows])
        arrays, x_names = _build_arrays(frame, response, parts, family,
                                        list(dict.fromkeys(response_cols + expr_cols)), w)
    except ValueError as err:
        message = str(err)
        if n_dropped:  # rows as the caller counts them
            message = re.sub(r"\brow (\d+)", lambda m: f"row {kept[int(m.group(1))]}",
                             message)
        raise ValueError(message) from None
    return FormulaDesign(formula=formula, response=response, fixed=fixed, terms=tuple(terms),
                         x_columns=x_names, arrays=arrays, data=frame, n_dropped=n_dropped,
                         offsets=offsets)


def evaluate(expression: str, frame: pd.DataFrame, what: str) -> np.ndarray:
    """The values (n,) of one expression of columns, such as "log(n)" or "size - s",
    evaluated by formulae as I(expression) (a bare "a - b" on the left of "~" would be the
    formula a minus the term b). `what` names it in errors."""
    from formulae import design_matrices
    values = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # log(0): checked later
            dm = design_matrices(f"I({expression}) ~ 1", frame, na_action="error",
                                 extra_namespace=NAMESPACE)
            values = np.asarray(dm.response.design_matrix, dtype=float)
    except Exception as err:
        problem = one_line(err)
    if values is None:
        fail(f"formula: cannot evaluate the {what} {expression!r}: {problem}")
    if values.ndim == 2 and values.shape[1] != 1:
        fail(f"formula: the {what} {expression!r} gives {values.shape[1]} columns; it must "
             "give one.")
    return values.reshape(-1)


def offset_values(offsets: tuple, frame: pd.DataFrame) -> np.ndarray | None:
    """The sum (n,) of the formula's offset expressions on `frame`, or None without any;
    each checked finite (an error names it and the row)."""
    if not offsets:
        return None
    total = np.zeros(len(frame))
    for expr in offsets:
        values = evaluate(expr, frame, "offset")
        check_finite(values, f"offset({expr})")
        total = total + values
    return total


def _build_arrays(frame: pd.DataFrame, response: tuple, parts: FormulaParts, family: Family,
                  expr_cols: list, weights=None) -> tuple[ArrayData, tuple]:
    """The model arrays from the complete rows `frame` (modified: columns normalised)."""
    lhs, fixed, terms, offsets = parts
    _normalise_columns(frame, expr_cols)
    y, trials = _response(response, frame, family)
    X, x_names, _ = _design(fixed, frame, "fixed part")
    check_finite(X, "fixed part")
    offset = offset_values(offsets, frame)
    x_keep = list(range(len(x_names)))
    designs = []
    for t in terms:
        what = f"term ({t.expr} | {t.name})"
        Z, z_names, _ = _design(t.expr, frame, what)
        if Z.shape[1] == 0:
            fail(f"formula: term ({t.expr} | {t.name}) has no columns.")
        free = []
        for j, zn in enumerate(z_names):
            hits = [i for i in x_keep if x_names[i] == zn]
            if hits:
                x_keep.remove(hits[0])
                free.append(j)
        designs.append((t, Z, z_names, tuple(free)))
    X = X[:, x_keep]
    x_names = tuple(x_names[i] for i in x_keep)
    offset_what = " + ".join(f"offset({e})" for e in offsets)
    try:
        common = prepare_common(y, X if X.shape[1] else None, family,
                                trials if family.has_trials else None, offset, x_names,
                                weights)
    except ValueError as err:  # name the formula's columns, not from_arrays' arguments
        message = str(err)
        for arg, what in (("y: ", f"response {lhs.strip()!r}: "),
                          ("trials: ", f"trials ({lhs.strip()!r}): "),
                          ("X: ", "fixed part: "), ("x_names: ", "fixed part: "),
                          ("offset: ", f"{offset_what}: ")):
            if message.startswith(arg):
                message = what + message[len(arg):]
        raise ValueError(message) from None
    out = []
    for t, Z, z_names, free in designs:  # every term through the one validator
        labels = group_labels(frame, t.factors, t.name)
        term = random_term(Z, labels, common, z_names, t.name, free,
                           what=f"term ({t.expr} | {t.name})",
                           groups_what=f"grouping factor {t.name!r}", x_what="fixed part")
        if len(term.groups) < 2:
            fail(f"formula: grouping factor {t.name!r} has a single level "
                 f"({term.groups[0]!r}); a random effect needs at least two groups.")
        out.append(term)
    return replace(common, terms=tuple(out)), x_names


def _numeric_column(frame: pd.DataFrame, col: str, family: Family) -> np.ndarray:
    """A response column as floats: numbers, booleans, nullable and categorical numbers."""
    s = frame[col]
    try:
        return series_as_float(s, f"response {col!r}")
    except ValueError:
        bad = next(v for v in s.astype(object) if not isinstance(v, (int, float, bool,
                                                                     np.number, np.bool_)))
    fail(f"data: response column {col!r} holds {s.dtype} values (e.g. {bad!r}); "
         f"family {family.name!r} needs numbers"
         + (" 0/1 or True/False." if family.name == "bernoulli" else "."))


def _response(response: tuple, frame: pd.DataFrame, family: Family):
    """(y, trials) from the response spec."""
    kind = response[0]
    if kind == "column":
        return _numeric_column(frame, response[1], family), None
    if kind == "expr":
        return evaluate(response[1], frame, "response"), None
    if kind == "cbind_expr":
        s, f = (evaluate(e, frame, "response") for e in response[1:])
        return s, s + f
    s = _numeric_column(frame, response[1], family)
    other = _numeric_column(frame, response[2], family)
    return s, (s + other if kind == "cbind" else other)
