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

from .design import ArrayData, check_finite, prepare_common, random_term, series_as_float
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


def _mask(text: str) -> str:
    """`text` with every backtick-quoted name (formulae's way to write any column name, as in
    `my x`) blanked out, same length: structure (~, |, parentheses, +, /, :) is searched in
    the mask and cut from the text."""
    parts = text.split("`")
    if len(parts) % 2 == 0:
        _fail(f"formula: unbalanced backtick in {text!r}; a column name that is not a Python "
              "identifier is written between two backticks, as in `my x`, and a name that "
              "holds a backtick cannot be written in a formula: rename that column.")
    return "".join(p if k % 2 == 0 else "_" * (len(p) + 2) for k, p in enumerate(parts))


def _split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside parentheses and backticks."""
    masked = _mask(text)
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = masked[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and masked.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _random_chunks(rhs: str) -> tuple[str, list[str]]:
    """The fixed part of a right-hand side and its "(... | ...)" chunks."""
    masked = _mask(rhs)
    chunks, depth, start, i, out = [], 0, None, 0, ""
    while i < len(rhs):
        c = masked[i]
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
            out += rhs[i]
        i += 1
    if depth != 0:
        _fail(f"formula: unbalanced '(' in the right-hand side {rhs!r}.")
    # tidy the "+" left behind by removed chunks
    parts = [p.strip() for p in _split_top(out, "+")]
    fixed = " + ".join(p for p in parts if p)
    return fixed, chunks


_NAME_PATTERN = r"(?:`[^`]*`|[\w.]+)"   # a column name: plain, or any name in backticks


def _unquote(name: str) -> str:
    """The column name that a formula writes as `name` (backticks removed)."""
    name = name.strip()
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == "`" else name


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
        nest = [[c.strip() for c in _split_top(f, ":")] for f in _split_top(factor, "/")]
        if any(not re.fullmatch(_NAME_PATTERN, c) for part in nest for c in part):
            _fail(f"formula: grouping factor {factor!r} of ({chunk}) must be column names "
                  "joined by ':' (interaction) or '/' (nesting); a name that is not a Python "
                  "identifier is written in backticks, as in `my group`.")
        groupings = []
        for k in range(len(nest)):
            cols = tuple(_unquote(c) for part in nest[:k + 1] for c in part)
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


_N = _NAME_PATTERN
_CBIND = re.compile(rf"^cbind\(\s*({_N})\s*,\s*({_N})\s*\)$")
_RATIO = re.compile(rf"^({_N})\s*/\s*({_N})$")
_PROP = re.compile(rf"^p\(\s*({_N})\s*,\s*({_N})\s*\)$")
_NAME = re.compile(rf"^{_N}$")


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
            return (kind, _unquote(m.group(1)), _unquote(m.group(2)))
    if family.has_trials:
        _fail(f"formula: the binomial family needs successes and trials on the left, as "
              f"cbind(successes, failures), successes/trials or p(successes, trials); got "
              f"{lhs!r}.")
    if _NAME.match(lhs):
        return ("column", _unquote(lhs))
    return ("expr", lhs)


def _one_line(err: BaseException) -> str:
    """An exception of formulae or pandas as one line of text."""
    if isinstance(err, KeyError) and err.args:  # str(KeyError('x')) is just "'x'"
        return f"unknown name {err.args[0]!r}"
    return " ".join(str(err).split()) or type(err).__name__


def _variables(expression: str, what: str, hint: str = "") -> set:
    """Column names an expression of formulae uses; a formula error names `what`."""
    import formulae
    try:
        names = formulae.model_description(expression).var_names
    except Exception as err:  # formulae raises its own parse errors
        names, problem = None, _one_line(err)
    if names is None:  # raised here, not in the handler: no chained formulae traceback
        _fail(f"formula: cannot parse the {what} {expression!r}: {problem}{hint}")
    # formulae lists a string argument such as C(dose, "LOW") as the name "", and the
    # constant None as None
    return {v for v in names if isinstance(v, str) and v}


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
        matrix, problem = None, _one_line(err)
    if matrix is None:
        _fail(f"formula: cannot build the {what} {expression!r}: {problem}")
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
                _fail(f"data: column {col!r} has {s.iloc[row]} at row {row}; a formula needs "
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
                _fail(f"data: column {col!r} mixes kinds of values (row 0 has "
                      f"{_describe_value(values[0])}, row {first_other} has "
                      f"{_describe_value(values[first_other])}); a formula needs numbers, "
                      "booleans or strings, one kind per column.")
            if kinds and kinds[0] == "number":
                frame[col] = s.to_numpy(dtype=float)
            elif kinds and kinds[0] == "bool":
                frame[col] = s.to_numpy(dtype=bool)
        elif not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) \
                or pd.api.types.is_complex_dtype(dtype):
            _fail(f"data: column {col!r} holds {dtype} values, which a formula cannot use; "
                  "convert it to numbers or strings.")
    return frame


def group_labels(data: pd.DataFrame, cols: tuple, name: str) -> np.ndarray:
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

    Column names that are not Python identifiers are written in backticks, as formulae
    does: "`my y` ~ `dose (mg)` + (1 | `herd id`)". A name holding a backtick cannot be
    written at all.

    Raises:
        ValueError: bad formula, missing column, missing values (na_action="raise"), a
            grouping factor with one level, a response the family cannot take. Rows in
            messages are positions in `data` (0-based), also after na_action="drop".
    """
    if not isinstance(formula, str) or "~" not in formula:
        _fail(f"formula: must be a string like 'y ~ x + (1 | g)', got {formula!r}.")
    if not isinstance(data, pd.DataFrame):
        _fail(f"data: must be a pandas DataFrame, got {type(data).__name__}.")
    if na_action not in NA_ACTIONS:
        _fail(f"na_action={na_action!r} is unknown; choose 'raise' or 'drop'.")
    hint = _name_hint(data)
    if "``" in formula:  # formulae lists it among the string arguments it ignores
        _fail(f"formula: `` (a column with an empty name) cannot be used in {formula!r}; "
              "rename that column.")
    tilde = _mask(formula).find("~")
    if tilde < 0:
        _fail(f"formula: must be a string like 'y ~ x + (1 | g)', got {formula!r}.")
    lhs, rhs = formula[:tilde], formula[tilde + 1:]
    if "~" in _mask(rhs):
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
        sorted(_variables(response[1], "response", hint))
    expr_cols = sorted(_variables(fixed, "fixed part", hint)) + [
        v for t in terms
        for v in sorted(_variables(t.expr, f"term ({t.expr} | {t.name})", hint))]
    groups = [c for t in terms for c in t.factors]
    for col in response_cols + expr_cols + groups:
        if col not in used:
            used.append(col)
    columns = [str(c) for c in data.columns]
    missing = [c for c in used if c not in columns]
    if missing:
        _fail(f"data: has no column {missing[0]!r} (used by the formula); its columns are "
              f"{', '.join(map(repr, columns))}{hint}.")
    duplicated = [c for c in used if columns.count(c) > 1]
    if duplicated:
        _fail(f"data: column {duplicated[0]!r} appears more than once; the columns that the "
              "formula uses must have unique names.")
    if "Intercept" in expr_cols:
        _fail("data: column 'Intercept' has the name that formulae gives the intercept, and "
              "it would be dropped silently; rename it.")
    frame = data.iloc[:, [columns.index(c) for c in used]].copy()
    frame.columns = used
    na = frame.isna()
    rows = na.any(axis=1).to_numpy()
    n_dropped = 0
    if rows.any():
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
    kept = np.flatnonzero(~rows)  # row of the reduced frame -> row of data
    try:
        arrays, x_names = _build_arrays(frame, response, fixed, terms, family, lhs,
                                        list(dict.fromkeys(response_cols + expr_cols)))
    except ValueError as err:
        message = str(err)
        if n_dropped:  # rows as the caller counts them
            message = re.sub(r"\brow (\d+)", lambda m: f"row {kept[int(m.group(1))]}",
                             message)
        raise ValueError(message) from None
    return FormulaDesign(formula=formula, response=response, fixed=fixed, terms=tuple(terms),
                         x_columns=x_names, arrays=arrays, data=frame, n_dropped=n_dropped)


def _build_arrays(frame: pd.DataFrame, response: tuple, fixed: str, terms: list,
                  family: Family, lhs: str, expr_cols: list) -> tuple[ArrayData, tuple]:
    """The model arrays from the complete rows `frame` (modified: columns normalised)."""
    _normalise_columns(frame, expr_cols)
    y, trials = _response(response, frame, family)
    X, x_names, _ = _design(fixed, frame, "fixed part")
    check_finite(X, "fixed part")
    x_keep = list(range(len(x_names)))
    designs = []
    for t in terms:
        what = f"term ({t.expr} | {t.name})"
        Z, z_names, _ = _design(t.expr, frame, what)
        if Z.shape[1] == 0:
            _fail(f"formula: term ({t.expr} | {t.name}) has no columns.")
        free = []
        for j, zn in enumerate(z_names):
            hits = [i for i in x_keep if x_names[i] == zn]
            if hits:
                x_keep.remove(hits[0])
                free.append(j)
        designs.append((t, Z, z_names, tuple(free)))
    X = X[:, x_keep]
    x_names = tuple(x_names[i] for i in x_keep)
    try:
        common = prepare_common(y, X if X.shape[1] else None, family,
                                trials if family.has_trials else None, None, x_names)
    except ValueError as err:  # name the formula's columns, not from_arrays' arguments
        message = str(err)
        for arg, what in (("y: ", f"response {response[1]!r}: "),
                          ("trials: ", f"trials ({lhs.strip()!r}): "),
                          ("X: ", "fixed part: "), ("x_names: ", "fixed part: ")):
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
            _fail(f"formula: grouping factor {t.name!r} has a single level "
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
    _fail(f"data: response column {col!r} holds {s.dtype} values (e.g. {bad!r}); "
          f"family {family.name!r} needs numbers"
          + (" 0/1 or True/False." if family.name == "bernoulli" else "."))


def _response(response: tuple, frame: pd.DataFrame, family: Family):
    """(y, trials) from the response spec."""
    kind = response[0]
    if kind == "column":
        return _numeric_column(frame, response[1], family), None
    if kind == "expr":
        from formulae import design_matrices
        y = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # log(0): checked later
                dm = design_matrices(f"{response[1]} ~ 1", frame, na_action="error",
                                     extra_namespace=NAMESPACE)
                y = np.asarray(dm.response.design_matrix, dtype=float)
        except Exception as err:
            problem = _one_line(err)
        if y is None:
            _fail(f"formula: cannot evaluate the response {response[1]!r}: {problem}")
        if y.ndim == 2 and y.shape[1] != 1:
            _fail(f"formula: the response {response[1]!r} gives {y.shape[1]} columns; "
                  "it must give one.")
        return y.reshape(-1), None
    s = _numeric_column(frame, response[1], family)
    other = _numeric_column(frame, response[2], family)
    return s, (s + other if kind == "cbind" else other)
