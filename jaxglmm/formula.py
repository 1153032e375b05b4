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

Binomial responses: "cbind(successes, failures)", "successes/trials" or
"p(successes, trials)".
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .design import ArrayData, RandomTerm, _check_finite, _encode_groups, prepare_arrays
from .families import Family

NA_ACTIONS = ("raise", "drop")
# functions a formula may call, besides formulae's own (C(), scale(), center(), ...)
NAMESPACE = {"log": np.log, "log1p": np.log1p, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
             "np": np}


@dataclass(frozen=True)
class TermFormula:
    """One random-effect term of a formula: its expression, grouping columns and label."""

    expr: str        # the left of "|", e.g. "1 + Days"
    factors: tuple   # grouping columns, e.g. ("herd",) or ("site", "plot")
    name: str        # the term's label, e.g. "Subject", "site:plot" ("g.2" if repeated)


@dataclass(frozen=True)
class FormulaDesign:
    """A parsed formula with its data: the model arrays and what predictions need."""

    formula: str
    response: tuple      # ("column", y) | ("cbind", s, f) | ("trials", s, n) | ("expr", lhs)
    fixed: str           # the fixed part's right-hand side given to formulae
    terms: tuple         # (TermFormula, ...)
    x_columns: tuple     # formulae's fixed columns kept in X (beta)
    arrays: ArrayData
    data: pd.DataFrame   # the used columns of the used rows (a copy)
    n_dropped: int       # rows dropped for missing values (na_action="drop")


def _fail(message: str):
    raise ValueError(message)


def _split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside parentheses."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _random_chunks(rhs: str) -> tuple[str, list[str]]:
    """The fixed part of a right-hand side and its "(... | ...)" chunks."""
    chunks, depth, start, i, out = [], 0, None, 0, ""
    while i < len(rhs):
        c = rhs[i]
        if c == "(":
            if depth == 0:
                start = i
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                _fail(f"formula: unbalanced ')' at position {i} of the right-hand side "
                      f"{rhs!r}.")
            if depth == 0:
                inner = rhs[start + 1:i]
                if len(_split_top(inner, "|")) > 1:
                    chunks.append(inner)
                    start = None
                    i += 1
                    continue
                out += rhs[start:i + 1]
                start = None
                i += 1
                continue
        if depth == 0:
            out += c
        i += 1
    if depth != 0:
        _fail(f"formula: unbalanced '(' in the right-hand side {rhs!r}.")
    # tidy the "+" left behind by removed chunks
    parts = [p.strip() for p in _split_top(out, "+")]
    fixed = " + ".join(p for p in parts if p)
    return fixed, chunks


def _parse_terms(chunks: list[str]) -> list[TermFormula]:
    terms: list[TermFormula] = []
    for chunk in chunks:
        uncorrelated = len(_split_top(chunk, "||")) == 2
        lhs, rhs = _split_top(chunk, "||") if uncorrelated else _split_top(chunk, "|")[:2]
        if len(_split_top(chunk, "|")) > (3 if uncorrelated else 2):
            _fail(f"formula: random term ({chunk}) has more than one '|'.")
        expr, factor = lhs.strip(), rhs.strip()
        if not expr or not factor:
            _fail(f"formula: random term ({chunk}) needs an expression and a grouping "
                  "factor, as in (1 + t | id).")
        nest = [f.strip() for f in factor.split("/")]
        if any(not re.fullmatch(r"[\w.]+(\s*:\s*[\w.]+)*", f) for f in nest):
            _fail(f"formula: grouping factor {factor!r} of ({chunk}) must be column names "
                  "joined by ':' (interaction) or '/' (nesting).")
        groupings = []
        for k in range(len(nest)):
            cols = tuple(c.strip() for part in nest[:k + 1] for c in part.split(":"))
            groupings.append(cols)
        exprs = [expr]
        if uncorrelated:
            parts = [p.strip() for p in _split_top(expr, "+")]
            has_zero = "0" in parts or "-1" in parts
            cols = [p for p in parts if p not in ("0", "1", "-1", "")]
            exprs = ([] if has_zero else ["1"]) + [f"0 + {c}" for c in cols]
        for cols in groupings:
            for e in exprs:
                terms.append(TermFormula(e, cols, ":".join(cols)))
    names = [t.name for t in terms]
    out = []
    for k, t in enumerate(terms):
        n = names[:k + 1].count(t.name)
        out.append(replace(t, name=t.name if n == 1 else f"{t.name}.{n}"))
    return out


_CBIND = re.compile(r"^cbind\(\s*([\w.]+)\s*,\s*([\w.]+)\s*\)$")
_RATIO = re.compile(r"^([\w.]+)\s*/\s*([\w.]+)$")
_PROP = re.compile(r"^p\(\s*([\w.]+)\s*,\s*([\w.]+)\s*\)$")
_NAME = re.compile(r"^[\w.]+$")


def _response_spec(lhs: str, family: Family) -> tuple:
    lhs = lhs.strip()
    if not lhs:
        _fail("formula: has no response on the left of '~' (e.g. 'y ~ x + (1 | g)').")
    for pattern, kind in ((_CBIND, "cbind"), (_RATIO, "trials"), (_PROP, "trials")):
        m = pattern.match(lhs)
        if m:
            if not family.has_trials:
                _fail(f"formula: response {lhs!r} gives successes and trials, which only the "
                      f"binomial family takes, not {family.name!r}.")
            return (kind, m.group(1), m.group(2))
    if family.has_trials:
        _fail(f"formula: the binomial family needs successes and trials on the left, as "
              f"cbind(successes, failures), successes/trials or p(successes, trials); got "
              f"{lhs!r}.")
    if _NAME.match(lhs):
        return ("column", lhs)
    return ("expr", lhs)


def _variables(expression: str, what: str) -> set:
    """Column names an expression of formulae uses; a formula error names `what`."""
    import formulae
    try:
        return set(formulae.model_description(expression).var_names)
    except Exception as err:  # formulae raises its own parse errors
        _fail(f"formula: cannot parse the {what} {expression!r}: {err}")


def _design(expression: str, data: pd.DataFrame, what: str):
    """formulae's common design of a right-hand side: (matrix (n, k), column names, object)."""
    from formulae import design_matrices
    try:
        dm = design_matrices(expression, data, na_action="error", extra_namespace=NAMESPACE)
    except Exception as err:
        _fail(f"formula: cannot build the {what} {expression!r}: {err}")
    common = dm.common
    if common is None:
        return np.zeros((len(data), 0)), (), None
    frame = common.as_dataframe()
    return np.asarray(frame, dtype=float), tuple(str(c) for c in frame.columns), common


def _levels(data: pd.DataFrame, cols: tuple, name: str) -> np.ndarray:
    """One label per row for the grouping columns `cols` (joined by ':' when several)."""
    for col in cols:
        s = data[col]
        if pd.api.types.is_float_dtype(s) and not np.all(np.mod(s.to_numpy(float), 1) == 0):
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


def parse_formula(formula: str, data, family: Family, na_action: str = "raise") -> FormulaDesign:
    """Validate a formula against a DataFrame and build the model arrays.

    Raises:
        ValueError: bad formula, missing column, missing values (na_action="raise"), a
            grouping factor with one level, a response the family cannot take.
    """
    if not isinstance(formula, str) or "~" not in formula:
        _fail(f"formula: must be a string like 'y ~ x + (1 | g)', got {formula!r}.")
    if not isinstance(data, pd.DataFrame):
        _fail(f"data: must be a pandas DataFrame, got {type(data).__name__}.")
    if na_action not in NA_ACTIONS:
        _fail(f"na_action={na_action!r} is unknown; choose 'raise' or 'drop'.")
    if data.columns.duplicated().any():
        dup = data.columns[data.columns.duplicated()][0]
        _fail(f"data: column {dup!r} appears more than once; column names must be unique.")
    lhs, rhs = formula.split("~", 1)
    if "~" in rhs:
        _fail(f"formula: has more than one '~': {formula!r}.")
    fixed, chunks = _random_chunks(rhs.strip())
    terms = _parse_terms(chunks)
    if not terms:
        _fail(f"formula: {formula!r} has no random-effect term such as (1 | g); a mixed "
              "model needs at least one.")
    response = _response_spec(lhs, family)
    fixed = fixed or "1"
    used: list[str] = []
    response_cols = list(response[1:]) if response[0] != "expr" else \
        sorted(_variables(response[1], "response"))
    groups = [c for t in terms for c in t.factors]
    for col in (response_cols + sorted(_variables(fixed, "fixed part"))
                + [v for t in terms for v in sorted(_variables(t.expr, f"term ({t.expr} | "
                                                                        f"{t.name})"))]
                + groups):
        if col not in used:
            used.append(col)
    missing = [c for c in used if c not in data.columns]
    if missing:
        _fail(f"data: has no column {missing[0]!r} (used by the formula); its columns are "
              f"{', '.join(map(repr, map(str, data.columns)))}.")
    frame = data[used].copy()
    na = frame.isna()
    n_dropped = 0
    if na.to_numpy().any():
        rows = na.any(axis=1).to_numpy()
        cols = [c for c in used if na[c].any()]
        if na_action == "raise":
            first = int(np.flatnonzero(rows)[0])
            _fail(f"data: {int(rows.sum())} rows have missing values (columns "
                  f"{', '.join(repr(c) + f' ({int(na[c].sum())})' for c in cols)}; first at "
                  f"row {first}); pass na_action='drop' to drop them.")
        n_dropped = int(rows.sum())
        frame = frame.loc[~rows]
        warnings.warn(f"na_action='drop': dropped {n_dropped} of {len(rows)} rows with "
                      f"missing values in {', '.join(map(repr, cols))}.", UserWarning,
                      stacklevel=4)
        if frame.empty:
            _fail("data: no rows left after dropping the rows with missing values.")
    frame = frame.reset_index(drop=True)
    if frame.empty:
        _fail("data: is empty; the model needs at least one observation.")

    y, trials = _response(response, frame, family)
    X, x_names, _ = _design(fixed, frame, "fixed part")
    term_arrays = []
    x_keep = list(range(len(x_names)))
    for t in terms:
        Z, z_names, _ = _design(t.expr, frame, f"term ({t.expr} | {t.name})")
        if Z.shape[1] == 0:
            _fail(f"formula: term ({t.expr} | {t.name}) has no columns.")
        _check_finite(Z, f"term ({t.expr} | {t.name})")
        labels = _levels(frame, t.factors, t.name)
        cluster, levels = _encode_groups(labels, len(frame))
        if len(levels) < 2:
            _fail(f"formula: grouping factor {t.name!r} has a single level ({levels[0]!r}); "
                  "a random effect needs at least two groups.")
        free = []
        for j, zn in enumerate(z_names):
            hits = [i for i in x_keep if x_names[i] == zn]
            if hits:
                x_keep.remove(hits[0])
                free.append(j)
        term_arrays.append((Z, cluster, levels, z_names, t.name, tuple(free)))
    X = X[:, x_keep]
    x_names = tuple(x_names[i] for i in x_keep)
    Z0, cluster0, levels0, z0, name0, free0 = term_arrays[0]
    try:
        arrays = prepare_arrays(y, Z0, [levels0[c] for c in cluster0],
                                X if X.shape[1] else None, family,
                                trials if family.has_trials else None, None, x_names, z0)
    except ValueError as err:  # name the formula's columns, not from_arrays' arguments
        message = str(err)
        lhs_name = response[1] if response[0] != "expr" else response[1]
        for arg, what in (("y: ", f"response {lhs_name!r}: "),
                          ("trials: ", f"trials ({lhs.strip()!r}): "),
                          ("X: ", "fixed part: ")):
            if message.startswith(arg):
                message = what + message[len(arg):]
        raise ValueError(message) from None
    extra = tuple(RandomTerm(Z, cl, lv, zn, nm, fr)
                  for Z, cl, lv, zn, nm, fr in term_arrays[1:])
    arrays = replace(arrays, group_name=name0, mu_free=free0, extra=extra)
    return FormulaDesign(formula=formula, response=response, fixed=fixed, terms=tuple(terms),
                         x_columns=x_names, arrays=arrays, data=frame, n_dropped=n_dropped)


def _numeric_column(frame: pd.DataFrame, col: str, family: Family) -> np.ndarray:
    s = frame[col]
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(s):
        example = s.iloc[0]
        _fail(f"data: response column {col!r} holds {s.dtype} values (e.g. {example!r}); "
              f"family {family.name!r} needs numbers"
              + (" 0/1 or True/False." if family.name == "bernoulli" else "."))
    return s.to_numpy(dtype=float)


def _response(response: tuple, frame: pd.DataFrame, family: Family):
    """(y, trials) from the response spec."""
    kind = response[0]
    if kind == "column":
        return _numeric_column(frame, response[1], family), None
    if kind == "expr":
        from formulae import design_matrices
        try:
            dm = design_matrices(f"{response[1]} ~ 1", frame, na_action="error",
                                 extra_namespace=NAMESPACE)
        except Exception as err:
            _fail(f"formula: cannot evaluate the response {response[1]!r}: {err}")
        y = np.asarray(dm.response.design_matrix, dtype=float)
        if y.ndim == 2 and y.shape[1] != 1:
            _fail(f"formula: the response {response[1]!r} gives {y.shape[1]} columns; "
                  "it must give one.")
        return y.reshape(-1), None
    s = _numeric_column(frame, response[1], family)
    other = _numeric_column(frame, response[2], family)
    return s, (s + other if kind == "cbind" else other)
