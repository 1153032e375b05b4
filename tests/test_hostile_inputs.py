"""Property-based tests (hypothesis) of both entry points with hostile inputs.

Every call of `GLMM.from_arrays(...)` or `GLMM(formula, data, ...)` must end in one of two
ways:

- a valid model: construction succeeds, and the log density at `initial_position(0)` and its
  gradient are finite in float64; the model's arrays hold the values the caller gave;
- a ValueError raised by jaxglmm's own code (innermost traceback frame in the package, no
  chained exception) with a one-line message that starts by naming the argument or formula
  part at fault ("y: ...", "groups: ...", "data: ...", "formula: ...", ...).

Never a NaN density, a hang, another exception type, or an error from inside JAX, pandas or
formulae; and the caller's objects are never modified.

The inputs vary shapes (n in 0..8, 0-3 columns), containers and dtypes (lists, NumPy
float64/float32/int/bool/object/str, pandas Series and DataFrames with nullable Int64/Float64/
boolean, string and categorical dtypes, non-default indexes), and plant NaN, inf, None,
pd.NA, strings and huge or tiny numbers at random rows; group labels of every kind; one
cluster, one observation, empty inputs; unicode, spaced and otherwise odd column names
(written in a formula with formulae's backticks, or not), duplicate column names.

The two property tests run a fixed-seed batch (derandomize=True) and record how many inputs
each outcome had: printed (pytest -s) and kept in pytest's cache under
"jaxglmm/hostile_inputs" (.pytest_cache/v/jaxglmm/hostile_inputs).
"""
from __future__ import annotations

import collections
import copy
import json
import keyword
import os
import re
import signal
import traceback
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import jaxglmm
from jaxglmm import GLMM

# examples per entry point: the quick tests stay well under a minute together (the machine
# compiles JAX kernels once per array shape, so the first examples are the slow ones); the
# fixed-seed batch (slow set) tries BATCH_EXAMPLES and reports the outcome counts
N_EXAMPLES = int(os.environ.get("JAXGLMM_HOSTILE_EXAMPLES", "40"))
BATCH_EXAMPLES = 300
PKG_DIR = os.path.dirname(os.path.abspath(jaxglmm.__file__)) + os.sep
SETTINGS = settings(max_examples=N_EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck), database=None)
TIMEOUT_S = 60  # one input: a hang fails the test

OUTCOMES: dict[str, collections.Counter] = {"from_arrays": collections.Counter(),
                                            "formula": collections.Counter()}
DETAILS: dict[str, collections.Counter] = {"from_arrays": collections.Counter(),
                                           "formula": collections.Counter()}

# what an error message may start with: the argument (from_arrays) or the part of the formula
# call at fault
ARRAY_PREFIX = re.compile(r"^(y|Z|X|groups|trials|offset|x_names|z_names): |^(family|link)=")
FORMULA_PREFIX = re.compile(
    r"^(formula|data|fixed part|na_action=|response (\S.*?)|trials \(.*?\)|term \(.*?\)"
    r"|grouping factor \S.*?|groups)(: | )")


# ------------------------------------------------------------------------------ outcomes


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"no outcome within {TIMEOUT_S} s")


def _same(a, b) -> bool:
    """Whether the caller's object `a` still equals its deep copy `b` (values, dtype, index,
    column names)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, pd.DataFrame):
        return (list(a.columns) == list(b.columns) and a.index.equals(b.index)
                and list(a.dtypes) == list(b.dtypes)
                and all(_same(a.iloc[:, j], b.iloc[:, j]) for j in range(a.shape[1])))
    if isinstance(a, pd.Series):
        return (a.dtype == b.dtype and a.index.equals(b.index) and a.name == b.name
                and _same(list(a), list(b)))
    if isinstance(a, pd.Categorical):
        return _same(pd.Series(a), pd.Series(b))
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape or a.flags.writeable != b.flags.writeable:
            return False
        if a.dtype.kind == "f":
            return bool(np.array_equal(a, b, equal_nan=True))
        return _same(a.tolist(), b.tolist())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if a is b:
        return True
    try:
        if pd.isna(a) and pd.isna(b):
            return True
    except (TypeError, ValueError):
        pass
    return bool(a == b)


def _check_error(err: BaseException, prefix: re.Pattern) -> str:
    """The outcome name of an acceptable error; fails the test for any other."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    assert type(err) is ValueError, (
        f"{type(err).__name__} leaked from {where}: {err}\n"
        + "".join(traceback.format_exception(err)))
    assert frames[-1].filename.startswith(PKG_DIR), (
        f"ValueError raised outside jaxglmm, at {where}: {err}")
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), (
        f"chained exception: {err!r} from {err.__context__!r}")
    message = str(err)
    assert message and "\n" not in message and message == message.strip(), \
        f"not a one-line message: {message!r}"
    assert "Traced<" not in message
    m = prefix.match(message)
    assert m, f"the message does not start by naming the argument: {message!r}"
    # outcome: the argument named, column names replaced by <name>
    head = re.sub(r"'[^']*'|\([^)]*\)", "<name>", m.group(0).rstrip(": "))
    reason = re.sub(r"'[^']*'|\d+", "_", message[m.end():]).split(";")[0].split(",")[0]
    return f"ValueError {head}: {' '.join(reason.split()[:4])}"


def check_outcome(kind: str, build, inputs: dict, expected: dict | None = None) -> str:
    """Run `build()` and check its outcome (see the module docstring); `inputs` are the
    caller's objects, `expected` the float values a valid model must hold, by array name."""
    snapshot = copy.deepcopy(inputs)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT_S)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model = build()
            except Hang:
                raise
            except Exception as err:  # noqa: BLE001 - the type is what is checked
                outcome = _check_error(err, ARRAY_PREFIX if kind == "from_arrays"
                                       else FORMULA_PREFIX)
            else:
                with jax.enable_x64(True):
                    position = model.initial_position(0)
                    value, grad = jax.value_and_grad(model.logdensity_fn)(position)
                assert np.isfinite(float(value)), f"log density {float(value)} at {position}"
                for name, g in grad.items():
                    assert np.all(np.isfinite(np.asarray(g))), f"gradient {name}: {g}"
                for name, want in (expected or {}).items():
                    got = getattr(model.arrays.terms[0] if name == "Z" else model.arrays, name)
                    np.testing.assert_array_equal(got, np.asarray(want, float).reshape(
                        got.shape), err_msg=f"model.arrays.{name}")
                outcome = "valid"
        for w in caught:
            # warnings are fine (flat priors, dropped rows, continuous grouping columns) but
            # must come from jaxglmm, say what they mean, and not be NumPy's arithmetic ones
            assert issubclass(w.category, UserWarning) and not issubclass(
                w.category, RuntimeWarning), f"{w.category.__name__}: {w.message}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    for name, value in inputs.items():
        assert _same(value, snapshot[name]), f"the caller's {name} was modified"
    OUTCOMES[kind][outcome] += 1
    note(f"outcome: {outcome}")
    return outcome


def _report(request, kind: str) -> None:
    counts = dict(sorted(OUTCOMES[kind].items(), key=lambda kv: (-kv[1], kv[0])))
    total = sum(counts.values())
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    report = cache.get("jaxglmm/hostile_inputs", {}) if cache is not None else {}
    report[kind] = {"inputs": total, "outcomes": counts, "details": dict(DETAILS[kind])}
    if cache is not None:
        cache.set("jaxglmm/hostile_inputs", report)
    print(f"\n{kind}: {total} inputs\n" + json.dumps(report[kind], indent=1,
                                                      ensure_ascii=False))


# ------------------------------------------------------------------- value generation

N_CHOICES = [8, 3, 1, 8, 3, 0]   # few sizes, so that eager JAX reuses compiled kernels
FAMILY_LINKS = [("gaussian", None), ("gaussian", "log"), ("bernoulli", None),
                ("bernoulli", "probit"), ("bernoulli", "cloglog"), ("binomial", None),
                ("binomial", "cloglog"), ("poisson", None)]
HOSTILE = [np.nan, np.inf, -np.inf, None, pd.NA, "a", "1.5", "", 1e300, -1e300, 1e-300,
           5e-324, -0.0, 1e15, 2**63, True, 0.5, -1.0, 3 + 0j, b"1"]
NUMERIC_CONTAINERS = ["list", "float64", "float32", "int64", "int8", "uint8", "bool", "object",
                      "str", "series", "series-Int64", "series-Float64", "series-boolean",
                      "series-category", "series-object", "series-string", "series-index",
                      "tuple"]


def _response_values(draw, family: str, n: int, trials: list | None) -> list:
    if family == "gaussian":
        scale = draw(st.sampled_from([1.0, 1e-6, 1e6, 1e40, 1.0, 1e150]))
        values = draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=n, max_size=n))
        return [v * scale for v in values]
    if family == "bernoulli":
        return draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
    if family == "binomial":
        return [draw(st.integers(0, t)) for t in trials]
    return draw(st.lists(st.sampled_from([0, 0, 1, 2, 7, 40, 10**6]), min_size=n, max_size=n))


def _plant(draw, values: list, hostile: bool) -> list:
    """values with a hostile element at a random row (sometimes two)."""
    values = list(values)
    if hostile and values:
        for _ in range(draw(st.integers(1, 2))):
            values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from(HOSTILE))
    return values


def _contain(draw, values: list, containers=NUMERIC_CONTAINERS):
    """The values in a container of a random kind; falls back to a list when the dtype
    cannot hold them. Returns (container, the values as the caller means them, or None)."""
    kind = draw(st.sampled_from(containers))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "list":
                out = list(values)
            elif kind == "tuple":
                out = tuple(values)
            elif kind in ("float64", "float32", "int64", "int8", "uint8", "bool", "object",
                          "str"):
                out = np.array(values, dtype=kind)
                if kind == "str" and out.shape == (0,):
                    out = np.array(values, dtype="<U1")
                if kind in ("int64", "int8", "uint8", "bool", "float32"):
                    # only where the dtype holds the values exactly
                    if not np.array_equal(np.asarray(out, dtype=float),
                                          np.asarray(values, dtype=float), equal_nan=True):
                        return list(values), None
            elif kind == "series":
                out = pd.Series(values)
            elif kind == "series-index":
                out = pd.Series(values, index=np.arange(100, 100 + len(values))[::-1])
            elif kind == "series-category":
                out = pd.Series(pd.Categorical(values))
            else:
                out = pd.Series(values, dtype=kind.split("-")[1])
    except (TypeError, ValueError, OverflowError):
        return list(values), None
    return out, out


def _expected(container) -> np.ndarray | None:
    """The float values a valid model must hold for a vector container."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.array([float(v) for v in list(container)])
    except (TypeError, ValueError, OverflowError):
        return None


@st.composite
def array_inputs(draw):
    family, link = draw(st.sampled_from(FAMILY_LINKS))
    n = draw(st.sampled_from(N_CHOICES))
    hostile_arg = draw(st.sampled_from(
        [None] * 6 + ["y", "Z", "X", "groups", "trials", "offset"]))
    wrong_length = draw(st.sampled_from([None] * 24 + ["y", "Z", "X", "groups", "trials",
                                                       "offset"]))
    kw: dict = {"family": family}
    if link:
        kw["link"] = link
    expected: dict = {}

    lengths = {name: n for name in ("y", "Z", "X", "groups", "trials", "offset")}
    if wrong_length:
        lengths[wrong_length] = max(0, n + draw(st.sampled_from([-1, 1, 2])))

    def length(name):
        return lengths[name]

    trials = None
    if family == "binomial":
        t = draw(st.lists(st.integers(1, 30), min_size=length("trials"),
                          max_size=length("trials")))
        trials = t
        t_c, _ = _contain(draw, _plant(draw, t, hostile_arg == "trials"))
        kw["trials"] = t_c
        expected["trials"] = _expected(t_c)
    elif draw(st.sampled_from([False] * 15 + [True])):
        kw["trials"] = np.ones(n)
    n_y = length("y")
    y_trials = ((trials or []) + [1] * n_y)[:n_y]
    y = _response_values(draw, family, n_y, y_trials)
    y_c, _ = _contain(draw, _plant(draw, y, hostile_arg == "y"))
    kw["y"] = y_c
    expected["y"] = _expected(y_c)

    # Z: a column of ones plus 0-2 others; sometimes a vector, a DataFrame or a bad shape
    q = draw(st.sampled_from([1, 2, 1, 3, 2, 0]))
    cols = []
    for j in range(q):
        if j == 0 and draw(st.booleans()):
            cols.append([1.0] * length("Z"))
        else:
            cols.append(draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, -1.5, 3.0, 1e-8, 1e8]),
                                      min_size=length("Z"), max_size=length("Z"))))
    kw["Z"], expected["Z"] = _matrix(draw, cols, length("Z"), hostile_arg == "Z")
    if draw(st.booleans()):
        p = draw(st.integers(0, 3))
        xcols = [draw(st.lists(st.floats(-5, 5, allow_nan=False, width=32),
                               min_size=length("X"), max_size=length("X"))) for _ in range(p)]
        kw["X"], expected["X"] = _matrix(draw, xcols, length("X"), hostile_arg == "X")
    if draw(st.booleans()):
        off = draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=length("offset"),
                            max_size=length("offset")))
        kw["offset"], _ = _contain(draw, _plant(draw, off, hostile_arg == "offset"))
        expected["offset"] = _expected(kw["offset"])
    kw["groups"] = _groups(draw, length("groups"), hostile_arg == "groups")
    expected = {k: v for k, v in expected.items() if v is not None}
    if wrong_length or hostile_arg:
        expected = {}
    return kw, expected


def _matrix(draw, cols: list, n: int, hostile: bool):
    """A design matrix (n, len(cols)) in a random container; returns (container, expected)."""
    kind = draw(st.sampled_from(["float64", "list", "int", "float32", "object", "frame",
                                 "frame-mixed", "vector"] * 4 + ["3d", "transposed"]))
    M = np.array(cols, dtype=float).T.reshape(n, len(cols))
    values = M.astype(object)
    if hostile and M.size:
        for _ in range(draw(st.integers(1, 2))):
            i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, len(cols) - 1))
            values[i, j] = draw(st.sampled_from(HOSTILE))
    clean = not (hostile and M.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "float64":
            try:
                return np.array(values.tolist(), dtype=float).reshape(n, len(cols)), \
                    M if clean else None
            except (TypeError, ValueError, OverflowError):
                return values, None
        if kind == "list":
            return values.tolist(), M if clean else None
        if kind == "int" and clean and np.all(M == np.round(M)) and np.all(np.abs(M) < 1e6):
            return M.astype(np.int64), M
        if kind == "float32" and clean:
            M32 = M.astype(np.float32)
            return M32, M32.astype(float)
        if kind == "object":
            return values, M if clean else None
        if kind in ("frame", "frame-mixed"):
            frame = pd.DataFrame(values.tolist() if n else None,
                                 columns=[f"c{j}" for j in range(len(cols))],
                                 index=np.arange(n) * 3 + 7)
            if kind == "frame-mixed" and clean:
                for j, c in enumerate(frame.columns):
                    dtype = draw(st.sampled_from(["float64", "Float64", "Int64", "boolean",
                                                  "category", "object"]))
                    try:
                        converted = frame[c].astype(dtype)
                        if np.array_equal(np.asarray(converted, dtype=float), M[:, j]):
                            frame[c] = converted
                    except (TypeError, ValueError):
                        pass
            return frame, M if clean else None
        if kind == "vector" and len(cols) == 1:
            return values[:, 0].tolist(), M if clean else None
        if kind == "3d":
            return np.ones((n, max(1, len(cols)), 2)), None
        if kind == "transposed" and n != len(cols):
            return values.T.tolist(), None
    return values.tolist(), M if clean else None


LABEL_KINDS = ["int", "str", "unicode", "float", "bool", "negative", "mixed", "category",
               "category-unused", "series-string", "series-Int64", "tuple", "datetime",
               "empty-str", "spaces"]


def _groups(draw, n: int, hostile: bool):
    kind = draw(st.sampled_from(LABEL_KINDS))
    n_groups = draw(st.integers(1, max(1, n)))
    idx = draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n))
    table = {
        "int": [7, 3, 11, 5, 2, 9, 4, 8],
        "str": ["b", "a", "c", "d", "e", "f", "g", "h"],
        "unicode": ["ž", "α", "数据", "é", "🙂", "Ω", "ß", "я"],
        "float": [1.5, 0.5, 2.0, 3.25, -1.0, 9.0, 4.5, 6.0],
        "bool": [True, False] * 4,
        "negative": [-1, -5, 0, -3, -2, -8, -4, -7],
        "mixed": [1, "1", 2, "b", 3.0, "c", 4, "d"],
        "category": ["x", "y", "z", "w", "v", "u", "t", "s"],
        "category-unused": ["x", "y", "z", "w", "v", "u", "t", "s"],
        "series-string": ["p", "q", "r", "s", "t", "u", "v", "w"],
        "series-Int64": [10, 20, 30, 40, 50, 60, 70, 80],
        "tuple": [(1, "a"), (0, "b"), (2, "a"), (1, "b"), (3, "c"), (4, "d"), (5, "e"),
                  (6, "f")],
        "datetime": list(pd.date_range("2020-01-01", periods=8)),
        "empty-str": ["", " ", "a", "b", "c", "d", "e", "f"],
        "spaces": ["a b", " a", "a ", "b c", "d", "e", "f", "g"],
    }[kind]
    labels = [table[i % len(table)] for i in idx]
    labels = _plant(draw, labels, hostile)
    if kind in ("category", "category-unused"):
        cats = sorted(set(table)) if kind == "category-unused" else None
        try:
            return pd.Series(pd.Categorical(labels, categories=cats))
        except (TypeError, ValueError):
            return labels
    if kind in ("series-string", "series-Int64"):
        try:
            return pd.Series(labels, dtype=kind.split("-")[1])
        except (TypeError, ValueError):
            return labels
    return draw(st.sampled_from([labels, np.array(labels, dtype=object),
                                 pd.Series(labels, dtype=object)]))


# ----------------------------------------------------------------------- formula inputs

ODD_NAMES = ["my y", "x é", "ß", "数据", "1x", "a.b", "a-b", "a|b", "a(b)", "a~b", "a:b",
             "a+b", "a`b", "", " ", "Intercept", "C", "log", "np", "True", "None", "lambda",
             "0", "x ", "y", "x", "g", "with space", "Ünï cödé"]
PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _write(draw, name: str) -> str:
    """How a formula writes a column name: plain names as they are (or in backticks),
    others in formulae's backticks, or (sometimes) as they are, which is an error."""
    plain = bool(PLAIN.match(name)) and not keyword.iskeyword(name)
    if plain:
        return draw(st.sampled_from([name, name, f"`{name}`"]))
    return draw(st.sampled_from([f"`{name}`", f"`{name}`", f"`{name}`", name]))


def _column(draw, n: int, kind: str, hostile: bool):
    """A data column of `kind` with n rows (pandas-compatible values)."""
    if kind == "float":
        values = draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=n, max_size=n))
    elif kind == "count":
        values = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    elif kind == "binary":
        values = draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
    elif kind == "bool":
        values = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    else:  # level or group: usually 2 or 3 levels, each row's level at random
        table = ["a", "b", "c", "ä b"] if kind == "level" else [1, 2, 3, 4]
        k = draw(st.sampled_from([2, 3, 2, 3, 1, 4]))
        shift = draw(st.integers(0, 3))
        values = [table[(i + shift) % k] for i in range(n)]
        values = [values[i] for i in draw(st.permutations(range(n)))]
    values = _plant(draw, values, hostile)
    dtype = draw(st.sampled_from({
        "float": [None, "float32", "Float64", "object"],
        "count": [None, "Int64", "float64", "Float64", "object", "category"],
        "binary": [None, "Int64", "boolean", "float64", "category"],
        "bool": [None, "boolean", "object"],
        "level": [None, "category", "string", "object"],
        "group": [None, "Int64", "category", "string", "float64", "object"],
    }[kind]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.Series(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        return pd.Series(values, dtype=object)


@st.composite
def formula_inputs(draw):
    family, link = draw(st.sampled_from(FAMILY_LINKS))
    n = draw(st.sampled_from([8, 8, 4, 2, 1, 0]))
    hostile = draw(st.sampled_from([None, None, "missing", "response", "x", "f", "g"]))
    names = draw(st.lists(st.sampled_from(ODD_NAMES), min_size=5, max_size=5))
    if draw(st.sampled_from([True] * 5 + [False])):  # usually distinct names
        names = list(dict.fromkeys(names + ["yy", "xx", "ff", "gg", "hh", "nn"]))[:6]
    resp, x, f, g, h = names[:5]
    extra = names[5] if len(names) > 5 else "trials"
    columns = {}
    if family == "binomial":
        columns[resp] = _column(draw, n, "count", hostile == "response")
        columns[extra] = pd.Series(np.full(n, 9, dtype=int))
        lhs = draw(st.sampled_from([f"cbind({{r}}, {{e}})", "{r}/{e}", "p({r}, {e})"]))
        lhs = lhs.format(r=_write(draw, resp), e=_write(draw, extra))
    else:
        kind = {"gaussian": "float", "bernoulli": draw(st.sampled_from(["binary", "bool"])),
                "poisson": "count"}[family]
        columns[resp] = _column(draw, n, kind, hostile == "response")
        lhs = _write(draw, resp)
    columns[x] = _column(draw, n, draw(st.sampled_from(["float", "count", "bool"])),
                         hostile == "x")
    columns[f] = _column(draw, n, "level", hostile == "f")
    columns[g] = _column(draw, n, "group", hostile == "g")
    columns[h] = _column(draw, n, draw(st.sampled_from(["group", "level"])), False)
    if hostile == "missing" and n:  # one missing cell (NaN, None or pd.NA) in x, f or g
        col = draw(st.sampled_from([x, f, g]))
        values = columns[col].astype(object).tolist()
        values[draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, None, pd.NA]))
        try:
            columns[col] = pd.Series(values, dtype=columns[col].dtype)
        except (TypeError, ValueError):
            columns[col] = pd.Series(values, dtype=object)
    frame = pd.DataFrame({k: v for k, v in columns.items()}) if len(set(columns)) == len(
        columns) else None
    if frame is None or draw(st.sampled_from([False] * 9 + [True])):
        # duplicate column names (or names that collided above)
        frame = pd.concat([pd.Series(v, name=k) for k, v in columns.items()]
                          + [pd.Series(columns[x], name=x)], axis=1)
    fixed = draw(st.sampled_from(["1", "{x}", "{x} + {f}", "{x} * {f}", "C({g})", "0 + {x}",
                                  "log1p(abs({x}))", "{x}:{f}"]))
    random = draw(st.sampled_from(["(1 | {g})", "(1 + {x} | {g})", "({x} || {g})",
                                   "(1 | {g}) + (1 | {h})", "(1 | {g}/{h})", "(0 + {x} | {g})",
                                   "(1 | {g}:{h})"]))
    rhs = " + ".join(p for p in (fixed, random) if p)
    rhs = rhs.format(x=_write(draw, x), f=_write(draw, f), g=_write(draw, g),
                     h=_write(draw, h))
    formula = f"{lhs} ~ {rhs}"
    kw = {"family": family, "na_action": draw(st.sampled_from(["raise", "drop"]))}
    if link:
        kw["link"] = link
    return formula, frame, kw


# ------------------------------------------------------------------------------- tests


def _from_arrays_case(case):
    kw, expected = case
    note(repr(kw))
    outcome = check_outcome("from_arrays", lambda: GLMM.from_arrays(**kw), kw, expected)
    if outcome == "valid":  # what the valid models had
        d = DETAILS["from_arrays"]
        values = [v for k, v in kw.items() if k not in ("family", "link")]
        d["valid with one observation"] += len(kw["groups"]) == 1
        d["valid with one cluster"] += len(set(map(repr, kw["groups"]))) == 1
        d["valid with pandas inputs"] += any(isinstance(v, (pd.Series, pd.DataFrame))
                                             for v in values)
        d["valid with nullable or categorical dtypes"] += any(
            isinstance(t, (pd.CategoricalDtype, pd.api.extensions.ExtensionDtype))
            for v in values if isinstance(v, (pd.Series, pd.DataFrame))
            for t in (v.dtypes if isinstance(v, pd.DataFrame) else [v.dtype]))
        d["valid with lists or object arrays"] += any(
            isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.dtype == object)
            for v in values)


def _formula_case(case):
    formula, frame, kw = case
    note(f"{formula!r}\n{frame!r}\n{frame.dtypes}\n{kw}")
    outcome = check_outcome("formula", lambda: GLMM(formula, frame, **kw),
                            {"data": frame, "formula": formula})
    if outcome == "valid":  # what the valid models had
        names = [str(c) for c in frame.columns]
        DETAILS["formula"]["valid with backticked names"] += "`" in formula
        DETAILS["formula"]["valid with a non-identifier column name"] += any(
            not PLAIN.match(c) for c in names)
        DETAILS["formula"]["valid after dropping missing rows"] += bool(
            frame.isna().to_numpy().any())
        DETAILS["formula"]["valid with nullable, string or categorical dtypes"] += any(
            isinstance(t, (pd.CategoricalDtype, pd.api.extensions.ExtensionDtype))
            for t in frame.dtypes)


@pytest.fixture
def counts(request):
    """Counts the outcomes of the test that uses it; reports them at its end (printed, and
    kept in pytest's cache under jaxglmm/hostile_inputs)."""
    kind = "from_arrays" if "from_arrays" in request.node.name else "formula"
    OUTCOMES[kind].clear()
    DETAILS[kind].clear()
    yield
    _report(request, kind)


def test_from_arrays_valid_model_or_clear_error(counts):
    SETTINGS(given(array_inputs())(_from_arrays_case))()


def test_formula_valid_model_or_clear_error(counts):
    SETTINGS(given(formula_inputs())(_formula_case))()


@pytest.mark.slow
def test_fixed_seed_batch_from_arrays(counts):
    settings(SETTINGS, max_examples=BATCH_EXAMPLES)(given(array_inputs())(_from_arrays_case))()


@pytest.mark.slow
def test_fixed_seed_batch_formula(counts):
    settings(SETTINGS, max_examples=BATCH_EXAMPLES)(given(formula_inputs())(_formula_case))()


# ------------------------------------------- defects the property tests found (regressions)

_G = np.repeat([0, 1, 2, 3], 2)
_Y = np.random.default_rng(0).normal(size=8)
_ONES = np.ones(8)


@pytest.mark.parametrize("kw,match", [
    # complex numbers lost their imaginary part silently
    (dict(y=_Y.astype(complex)), r"^y: must be real numbers, got an array of dtype complex"),
    # numeric strings were read as numbers
    (dict(y=[str(v) for v in _Y]), r"^y: must be numeric; row 0 has '[-0-9.]+' \(a string\)\.$"),
    # pd.NA gave "float() argument must be ... 'NAType'" with no row
    (dict(y=list(_Y[:3]) + [pd.NA] + list(_Y[4:])), r"^y: contains NaN or inf, first at row 3\b"),
    (dict(y=pd.Series([0, 1, 2, pd.NA, 0, 1, 2, 3], dtype="Int64"), family="poisson"),
     r"^y: contains NaN or inf, first at row 3\b"),
    # an int too large for a float leaked OverflowError
    (dict(y=[2**1100] + list(_Y[1:])), r"^y: must be numeric; row 0 has \d+\.\.\. \(int, too "
                                       r"large for a float\)\.$"),
    # a ragged list gave numpy's multi-clause message
    (dict(Z=[[1, 2]] * 7 + [[1]]), r"^Z: must be a rectangular array of numbers"),
    # 1e300 in Z underflowed a default prior scale: "Normal.scale: must be > 0"
    (dict(Z=np.column_stack([_ONES, [1e300] + [0] * 7])),
     r"^Z: row 0, column 1 has 1e\+300; numbers must be at most 1e\+60"),
    (dict(Z=np.column_stack([_ONES, [1e-70] + [0] * 7])), r"^Z: column 1 varies too little"),
    # True and 1 were one cluster
    (dict(groups=[True, True, 1, 1, 2, 2, 3, 3]),
     r"^groups: labels must be of one comparable type .* row 0 has True \(boolean\) but row 2 "
     r"has 1 \(number\)\.$"),
    # exp(offset) overflowed: log density -inf at every position
    (dict(y=np.arange(8) % 3, family="poisson", offset=np.r_[1000.0, np.zeros(7)]),
     r"^offset: row 0 has 1000; with the log link exp\(offset\) overflows"),
    # dates were read as nanoseconds since 1970
    (dict(y=pd.date_range("2020", periods=8)), r"^y: must be numeric; row 0 has Timestamp"),
    (dict(y=pd.Series(pd.Categorical(["a", "b"] * 4))), r"^y: must be numeric; row 0 has 'a'"),
])
def test_found_bad_input_named_clearly(kw, match):
    kw = {"y": _Y, "Z": _ONES, "groups": _G, **kw}
    with pytest.raises(ValueError, match=match) as info:
        GLMM.from_arrays(**kw)
    _check_error(info.value, ARRAY_PREFIX)


@pytest.mark.parametrize("kw", [
    # an off-diagonal Cholesky entry started at +-0.1 whatever its row's scale: with a Z
    # column of scale 1e-8 (values up to 1e8), eta started near 1e6 and exp(eta) overflowed
    dict(y=np.zeros(8), Z=np.column_stack([_ONES, [0] * 7 + [1e8]]), groups=[7] * 8,
         family="gaussian", link="log"),
    # an uncentred covariate (values 1e6, 1e6 + 1) started beta at +-0.5, eta at +-5e5
    dict(y=np.arange(8) % 3, Z=_ONES, X=np.c_[[1e6 + i % 2 for i in range(8)]], groups=_G,
         family="poisson"),
])
def test_found_initial_position_finite(kw):
    model = GLMM.from_arrays(**kw)
    with jax.enable_x64(True):
        value, grad = jax.value_and_grad(model.logdensity_fn)(model.initial_position(0))
    assert np.isfinite(float(value))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grad.values())


@pytest.mark.parametrize("y", [
    pd.Series([0, 1, 1, 0, 1, 0, 0, 1], dtype="Int64"),
    pd.Series([0.0, 1, 1, 0, 1, 0, 0, 1], dtype="Float64"),
    pd.Series([False, True, True, False, True, False, False, True], dtype="boolean"),
    pd.Series(pd.Categorical([0, 1, 1, 0, 1, 0, 0, 1])),
    np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=object),
    [False, True, True, False, True, False, False, True],
])
def test_numbers_in_any_container_accepted_as_values(y):
    model = GLMM.from_arrays(y, _ONES, _G, family="bernoulli")
    np.testing.assert_array_equal(model.arrays.y, [0, 1, 1, 0, 1, 0, 0, 1])


def _frame(**columns) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    base = {"y": rng.normal(size=12), "x": rng.normal(size=12), "g": np.repeat([1, 2, 3], 4)}
    return pd.DataFrame({**base, **columns})


@pytest.mark.parametrize("formula,columns,kw,z_names", [
    # a random column outside the fixed part crashed in model._pick (numpy broadcast error)
    ("y ~ 1 + (1 + x | g)", {}, {}, ("Intercept", "x")),
    # backticked names (formulae's quoting) failed in jaxglmm's own splitting of the formula
    ("y ~ x + (1 | `herd id`)", {"herd id": np.repeat(["a", "b", "c"], 4)}, {},
     ("Intercept",)),
    ("y ~ x + (1 + `a|b` | g)", {"a|b": np.arange(12.0)}, {}, ("Intercept", "a|b")),
    ("y ~ `a~b` + (1 | `g:h`)", {"a~b": np.arange(12.0), "g:h": np.repeat([1, 2], 6)}, {},
     ("Intercept",)),
    ("cbind(`s s`, f) ~ x + (1 | g)", {"s s": np.arange(12) % 3, "f": 2 - np.arange(12) % 3},
     {"family": "binomial"}, ("Intercept",)),
    ("`my y` ~ `x é` + (1 | `数据`)", {"my y": np.arange(12.0), "x é": np.arange(12) % 4,
                                        "数据": np.repeat(["α", "β"], 6)}, {}, ("Intercept",)),
    # a categorical response of numbers was refused ("holds category values")
    ("y ~ x + (1 | g)", {"y": pd.Categorical(np.arange(12) % 2)}, {"family": "bernoulli"},
     ("Intercept",)),
])
def test_found_formula_now_valid(formula, columns, kw, z_names):
    model = GLMM(formula, _frame(**columns), **kw)
    assert model.arrays.terms[0].z_names == z_names
    with jax.enable_x64(True):
        assert np.isfinite(float(model.logdensity_fn(model.initial_position(0))))


@pytest.mark.parametrize("formula,columns,kw,match", [
    # formulae's "Variable is of an unrecognized type (<class 'pandas.Series'>)", chained to
    # formulae's traceback, and naming no column
    ("y ~ m + (1 | g)", {"m": np.array([1, "a"] * 6, dtype=object)}, {},
     r"^data: column 'm' mixes kinds of values \(row 0 has 1 \(int\), row 1 has 'a'"),
    ("y ~ x + (1 | g)", {"x": pd.date_range("2020", periods=12)}, {},
     r"^data: column 'x' holds datetime64\S* values, which a formula cannot use"),
    # a column named Intercept was silently dropped (formulae names its intercept so)
    ("y ~ Intercept + (1 | g)", {"Intercept": np.arange(12.0)}, {},
     r"^data: column 'Intercept' has the name that formulae gives the intercept"),
    # after na_action='drop', rows were counted in the reduced frame, and "fixed part" was
    # all the message said about the column
    ("y ~ x + (1 | g)", {"x": np.r_[np.nan, 1.0, np.inf, np.arange(9.0)]},
     {"na_action": "drop"}, r"^data: column 'x' has inf at row 2; a formula needs finite"),
    # a name with a backtick cannot be written: say so
    ("y ~ x + (1 | `a`b`)", {"a`b": np.repeat([1, 2, 3], 4)}, {},
     r"^formula: unbalanced backtick .* a name that holds a backtick cannot be written"),
    ("y ~ x + (1 | g)", {"g": pd.Series(["1", 2, 3, 4] * 3, dtype=object)}, {},
     r"^grouping factor 'g': labels must be of one comparable type"),
    # a column named "" (written ``) was dropped from the columns used: "unknown name ''"
    ("y ~ 1 + (`` || g)", {"": np.arange(12.0)}, {},
     r"^formula: `` \(a column with an empty name\) cannot be used"),
    ("my y ~ x + (1 | g)", {"my y": np.arange(12.0)}, {},
     r"^data: has no column 'my' .*written in backticks: `my y`\)\.$"),
])
@pytest.mark.filterwarnings("ignore:na_action='drop'")
def test_found_formula_error_named_clearly(formula, columns, kw, match):
    frame = _frame(**columns)
    before = frame.copy()
    with pytest.raises(ValueError, match=match) as info:
        GLMM(formula, frame, **kw)
    _check_error(info.value, FORMULA_PREFIX)
    pd.testing.assert_frame_equal(frame, before)


def test_duplicate_column_names_only_matter_when_used():
    frame = _frame()
    dup = pd.concat([frame, frame[["x"]].rename(columns={"x": "z"}),
                     frame[["x"]].rename(columns={"x": "z"})], axis=1)
    assert GLMM("y ~ x + (1 | g)", dup).arrays.x_names == ("x",)
    with pytest.raises(ValueError, match=r"^data: column 'z' appears more than once"):
        GLMM("y ~ z + (1 | g)", dup)
