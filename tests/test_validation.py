"""Input validation: every bad input is a ValueError raised in NumPy before any JAX tracing,
naming the argument and (for row-wise data) the first offending row; the caller's data are
never modified; group labels of any sortable kind come out sorted."""
from __future__ import annotations

import os
import re

import blackjax
import jax
import jaxlib
import numpy as np
import pandas as pd
import pytest

import jaxglmm
from jaxglmm import GLMM, Flat, Gamma, Normal, Priors, Wishart

N_OBS = 8
BAD_ROW = 3
_JAX_DIRS = tuple(os.path.dirname(m.__file__) + os.sep for m in (jax, jaxlib))


def base_data(family: str = "gaussian") -> dict:
    """Arguments of a valid from_arrays call: 8 rows, 4 groups, p = 1, q = 2."""
    rng = np.random.default_rng(0)
    days = np.arange(N_OBS, dtype=float) % 4
    data = dict(y=rng.normal(size=N_OBS), Z=np.column_stack([np.ones(N_OBS), days]),
                groups=np.repeat([0, 1, 2, 3], 2), X=rng.normal(size=(N_OBS, 1)),
                family=family)
    if family == "binomial":
        data["y"] = np.array([0, 1, 2, 3, 0, 1, 2, 3], float)
        data["trials"] = np.full(N_OBS, 3.0)
    elif family == "bernoulli":
        data["y"] = np.array([0, 1, 1, 0, 0, 1, 0, 1], float)
    elif family == "poisson":
        data["y"] = np.array([0, 1, 4, 2, 0, 7, 3, 1], float)
    return data


def build(family: str = "gaussian", **changes) -> GLMM:
    return GLMM.from_arrays(**{**base_data(family), **changes})


def with_bad(arr: np.ndarray, value, col: int | None = None) -> np.ndarray:
    """A copy of arr with `value` at row BAD_ROW (column `col` for a matrix)."""
    out = np.array(arr, dtype=float)
    if col is None:
        out[BAD_ROW] = value
    else:
        out[BAD_ROW, col] = value
    return out


def assert_clean_value_error(match: str, fn, *args, **kwargs) -> ValueError:
    """fn(*args, **kwargs) raises ValueError matching `match`, from our own code: no frame of
    the traceback is inside JAX (nothing was traced; see jax_frames_visible) and no other
    error is chained to it."""
    with pytest.raises(ValueError, match=match) as info:
        fn(*args, **kwargs)
    in_jax = [str(entry.path) for entry in info.traceback
              if str(entry.path).startswith(_JAX_DIRS)]
    assert not in_jax, f"ValueError raised while JAX was tracing or running: {in_jax}"
    assert info.value.__cause__ is None
    assert "Traced<" not in str(info.value)
    return info.value


@pytest.fixture(autouse=True)
def jax_frames_visible():
    """Keep JAX's own frames in tracebacks (it filters them by default), so that
    assert_clean_value_error sees an error raised while tracing."""
    before = jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")
    yield
    jax.config.update("jax_traceback_filtering", before)


@pytest.fixture(scope="module")
def model() -> GLMM:
    return build()


# ------------------------------------------------------------------------- lengths


@pytest.mark.parametrize("name,family", [("Z", "gaussian"), ("X", "gaussian"),
                                         ("groups", "gaussian"), ("trials", "binomial"),
                                         ("offset", "gaussian")])
@pytest.mark.parametrize("n", [N_OBS - 1, N_OBS + 2])
def test_length_disagreeing_with_y_names_argument(name, family, n):
    data = base_data(family)
    if name == "offset":
        bad = np.zeros(n)
    else:
        bad = np.resize(np.asarray(data[name]), (n,) + np.shape(data[name])[1:])
    data[name] = bad
    assert_clean_value_error(rf"^{name}: has {n} rows but y has {N_OBS}\b",
                             GLMM.from_arrays, **data)


def test_empty_y_rejected():
    assert_clean_value_error(r"^y: is empty", GLMM.from_arrays, y=np.zeros(0),
                             Z=np.ones((0, 1)), groups=np.zeros(0))


@pytest.mark.parametrize("name,value", [("y", np.ones((N_OBS, 2))), ("Z", np.ones((N_OBS, 1, 1))),
                                        ("X", np.ones((N_OBS, 2, 2)))])
def test_wrong_number_of_dimensions(name, value):
    assert_clean_value_error(rf"^{name}: must be a", build, **{name: value})


def test_non_numeric_X_rejected():
    X = np.array(["a"] * N_OBS, dtype=object)
    assert_clean_value_error(r"^X: must be numeric", build, X=X)


# ------------------------------------------------------------------- NaN and inf


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name,col,family", [("y", None, "gaussian"), ("X", 0, "gaussian"),
                                             ("Z", 1, "gaussian"), ("offset", None, "gaussian"),
                                             ("trials", None, "binomial")])
def test_non_finite_value_names_argument_and_row(name, col, family, value):
    data = base_data(family)
    data[name] = with_bad(data.get(name, np.zeros(N_OBS)), value, col)
    assert_clean_value_error(rf"^{name}: contains NaN or inf, first at row {BAD_ROW}\b",
                             GLMM.from_arrays, **data)


def test_first_bad_row_is_reported_when_several():
    data = base_data()
    data["y"] = with_bad(data["y"], np.nan)
    data["y"][6] = np.inf
    assert_clean_value_error(rf"^y: .*row {BAD_ROW}\b", GLMM.from_arrays, **data)


# ------------------------------------------------------------------- response support


@pytest.mark.parametrize("family,value", [("bernoulli", 2.0), ("bernoulli", 0.5),
                                          ("bernoulli", -1.0), ("poisson", -1.0),
                                          ("poisson", 1.5), ("binomial", -1.0),
                                          ("binomial", 1.5), ("binomial", 4.0)])
def test_y_outside_support_names_family_and_row(family, value):
    data = base_data(family)
    data["y"] = with_bad(data["y"], value)
    assert_clean_value_error(rf"^y: family '{family}' .*\brow {BAD_ROW}\b", GLMM.from_arrays,
                             **data)


@pytest.mark.parametrize("family,name,value,shown", [
    ("bernoulli", "y", 2.0, "2.0"), ("poisson", "y", 1.5, "1.5"),
    ("binomial", "y", 4.0, "y=4.0 with trials=3.0"), ("binomial", "trials", 2.5, "2.5")])
def test_bad_value_shown_as_written(family, name, value, shown):
    # the offending value as the user wrote it: "row 3 has 2.0", not "np.float64(2.0)"
    data = base_data(family)
    data[name] = with_bad(data[name], value)
    assert_clean_value_error(rf"^{name}: .*\brow {BAD_ROW} has {re.escape(shown)}\.$",
                             GLMM.from_arrays, **data)


@pytest.mark.parametrize("value", [0.0, -2.0, 2.5])
def test_bad_trials_names_row(value):
    data = base_data("binomial")
    data["trials"] = with_bad(data["trials"], value)
    data["y"] = np.zeros(N_OBS)
    assert_clean_value_error(rf"^trials: must be whole numbers >= 1; row {BAD_ROW}\b",
                             GLMM.from_arrays, **data)


def test_binomial_y_above_trials_names_row():
    data = base_data("binomial")
    data["trials"] = with_bad(data["trials"], 2.0)   # y[3] = 3 > 2
    assert_clean_value_error(rf"^y: family 'binomial' .*\brow {BAD_ROW} has y=\S*3\.0\S* with "
                             r"trials=\S*2\.0", GLMM.from_arrays, **data)


def test_binomial_without_trials():
    data = base_data("binomial")
    del data["trials"]
    assert_clean_value_error(r"^trials: family 'binomial' needs", GLMM.from_arrays, **data)


@pytest.mark.parametrize("family", ["gaussian", "bernoulli", "poisson"])
def test_trials_for_a_family_without_trials(family):
    assert_clean_value_error(rf"^trials: only the binomial family takes trials, not '{family}'",
                             build, family, trials=np.ones(N_OBS))


# ------------------------------------------------------------------- Z, X, names


def test_empty_Z():
    assert_clean_value_error(r"^Z: has no columns", build, Z=np.zeros((N_OBS, 0)))


@pytest.mark.parametrize("x_col,names", [(0, r"'Intercept' equals Z column 'Intercept'"),
                                         (1, r"'x1' equals Z column 'z2'")])
def test_X_column_equal_to_Z_column(x_col, names):
    data = base_data()
    Z = data["Z"]
    X = np.column_stack([Z[:, x_col], data["X"]]) if x_col == 0 else Z[:, 1:2].copy()
    assert_clean_value_error(rf"^X: column {names}", build, X=X)


@pytest.mark.parametrize("arg,names", [("x_names", ["a", "b"]), ("x_names", []),
                                       ("z_names", ["Intercept"]),
                                       ("z_names", ["a", "b", "c"])])
def test_names_of_wrong_length(arg, names):
    n_cols = 1 if arg == "x_names" else 2
    assert_clean_value_error(rf"^{arg}: has {len(names)} names for {n_cols} columns",
                             build, **{arg: names})


def test_duplicate_names():
    assert_clean_value_error(r"^z_names: names must be unique", build, z_names=["a", "a"])


# ------------------------------------------------------------------- family and link


@pytest.mark.parametrize("family", ["foo", "normal", 3, None])
def test_unknown_family(family):
    err = assert_clean_value_error(rf"^family={re.escape(repr(family))} is unknown", build,
                                   family=family)
    for name in jaxglmm.FAMILIES:
        assert name in str(err)


@pytest.mark.parametrize("family,link", [("gaussian", "foo"), ("poisson", "logit"),
                                         ("bernoulli", "log"), ("binomial", "identity")])
def test_link_not_allowed_for_family(family, link):
    data = base_data(family)
    assert_clean_value_error(rf"^link='{link}' is not allowed for family '{family}'",
                             GLMM.from_arrays, **data, link=link)


def test_link_disagreeing_with_family_object():
    data = base_data("bernoulli")
    data["family"] = jaxglmm.Bernoulli("probit")
    assert_clean_value_error(r"^link='logit' disagrees with the family object's link 'probit'",
                             GLMM.from_arrays, **data, link="logit")


@pytest.mark.parametrize("arg,value", [("factor", "L"), ("dtype", "float16")])
def test_unknown_model_options(arg, value):
    assert_clean_value_error(rf"^{arg}='{value}' is unknown", build, **{arg: value})


# ------------------------------------------------------------------- priors


@pytest.mark.parametrize("make,match", [
    (lambda: Normal(0.0, 0.0), r"^Normal\.scale: must be > 0"),
    (lambda: Normal(0.0, -1.0), r"^Normal\.scale: must be > 0"),
    (lambda: Normal(0.0, [1.0, 0.0]), r"^Normal\.scale: must be > 0"),
    (lambda: Normal(0.0, np.nan), r"^Normal\.scale: must be finite"),
    (lambda: Normal(np.inf, 1.0), r"^Normal\.loc: must be finite"),
    (lambda: Gamma(0.0, 1.0), r"^Gamma\.shape: must be > 0"),
    (lambda: Gamma(-1.0, 1.0), r"^Gamma\.shape: must be > 0"),
    (lambda: Gamma(1.0, 0.0), r"^Gamma\.rate: must be > 0"),
    (lambda: Gamma(1.0, Gamma(1.0, -2.0)), r"^Gamma\.rate: must be > 0"),
    (lambda: Wishart(0.0), r"^Wishart\.df: must be > 0"),
    (lambda: Wishart(-3.0), r"^Wishart\.df: must be > 0"),
    (lambda: Wishart(2.0, 0.0), r"^Wishart\.scale_inv_diag: must be > 0"),
    (lambda: Wishart(2.0, [1.0, -1.0]), r"^Wishart\.scale_inv_diag: must be > 0"),
    (lambda: Wishart(2.0, Gamma(0.0, 1.0)), r"^Gamma\.shape: must be > 0"),
])
def test_non_positive_prior_parameters(make, match):
    assert_clean_value_error(match, make)


@pytest.mark.parametrize("priors,match", [
    (lambda: Priors(beta=Gamma(1, 1)), r"^priors\.beta: must be Flat or Normal"),
    (lambda: Priors(mu=Wishart(2.0)), r"^priors\.mu: must be Flat or Normal"),
    (lambda: Priors(tau=Normal()), r"^priors\.tau: must be Gamma"),
    (lambda: Priors(omega=Gamma(1, 1)), r"^priors\.omega: must be Wishart"),
    (lambda: {"beta": Flat()}, r"^priors: must be a jaxglmm\.Priors"),
])
def test_priors_of_wrong_type(priors, match):
    assert_clean_value_error(match, lambda: build(priors=priors()))


def test_tau_prior_for_bernoulli():
    assert_clean_value_error(r"^priors\.tau: this family has no dispersion", build,
                             "bernoulli", priors=Priors(tau=Gamma(1.0, 1.0)))


def test_vector_tau_prior():
    assert_clean_value_error(r"^priors\.tau: shape and rate must be numbers", build,
                             priors=Priors(tau=Gamma([1.0, 2.0], 1.0)))


@pytest.mark.parametrize("priors,match", [
    (Priors(beta=Normal(0.0, [1.0, 2.0])), r"^priors\.beta\.scale: has 2 values, the model "
                                           r"needs 1\b"),
    (Priors(mu=Normal([0.0, 0.0, 0.0], 1.0)), r"^priors\.mu\.loc: has 3 values, the model "
                                              r"needs 2\b"),
    (Priors(omega=Wishart(3.0, [1.0, 1.0, 1.0])), r"^priors\.omega\.scale_inv_diag: has 3 "
                                                  r"values, the model needs 2\b"),
    (Priors(omega=Wishart(3.0, Gamma([1.0, 1.0, 1.0], 1.0))),
     r"^priors\.omega\.scale_inv_diag\.shape: has 3 values, the model needs 2\b"),
])
def test_prior_vectors_of_wrong_length(priors, match):
    assert_clean_value_error(match, build, priors=priors)


@pytest.mark.parametrize("df", [1.5, 2.0, 0.5])
def test_wishart_df_not_above_q_minus_1(df):
    data = base_data()
    data["Z"] = np.column_stack([data["Z"], data["Z"][:, 1] ** 2])   # q = 3
    assert_clean_value_error(rf"^priors\.omega: Wishart df must exceed q - 1 = 2; got {df}",
                             GLMM.from_arrays, **data, priors=Priors(omega=Wishart(df)))


def test_wishart_df_just_above_q_minus_1_accepted():
    data = base_data()
    data["Z"] = np.column_stack([data["Z"], data["Z"][:, 1] ** 2])
    model = GLMM.from_arrays(**data, priors=Priors(omega=Wishart(2.5)))
    assert model.priors.omega.df == 2.5


# ------------------------------------------------------------------- groups


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA])
@pytest.mark.parametrize("kind", ["list", "series", "strings"])
def test_missing_group_label_names_row(missing, kind):
    labels = list(base_data()["groups"])
    if kind == "strings":
        labels = [f"g{v}" for v in labels]
    labels[BAD_ROW] = missing
    groups = pd.Series(labels, index=np.arange(100, 100 + N_OBS)) if kind == "series" \
        else labels
    assert_clean_value_error(rf"^groups: missing label at row {BAD_ROW}\b", build,
                             groups=groups)


@pytest.mark.parametrize("groups", [np.zeros((N_OBS, 2)), "abc", 3])
def test_groups_not_one_dimensional(groups):
    assert_clean_value_error(r"^groups: must be a one-dimensional array", build, groups=groups)


def test_groups_of_mixed_types_rejected():
    # 1 and "1" would be two clusters both printed as "1".
    labels = [1, 1, "1", "1", 2, 2, 3, 3]
    assert_clean_value_error(r"^groups: labels must be of one comparable type", build,
                             groups=labels)


# ------------------------------------------------------------------- sample arguments


@pytest.mark.parametrize("kwargs,match", [
    (dict(chains=0), r"^chains: must be an integer >= 1"),
    (dict(chains=1.5), r"^chains: must be an integer >= 1"),
    (dict(chains=True), r"^chains: must be an integer >= 1"),
    (dict(draws=0), r"^draws: must be an integer >= 1"),
    (dict(warmup=-1), r"^warmup: must be an integer >= 0"),
    (dict(chunk=0), r"^chunk: must be an integer >= 1"),
    (dict(kernel="foo"), r"^kernel='foo' is unknown"),
    (dict(kernel=blackjax.rmh), r"^kernel: must be 'nuts', 'hmc', 'mala'"),
    (dict(target_accept=1.5), r"^target_accept: must be in \(0, 1\)"),
    (dict(target_accept=0.0), r"^target_accept: must be in \(0, 1\)"),
    (dict(max_tree_depth=0), r"^max_tree_depth: must be a positive integer"),
    (dict(num_integration_steps=0), r"^num_integration_steps: must be a positive integer"),
    (dict(seed="abc"), r"^seed: must be an integer or a jax\.random key"),
    (dict(seed=1.5), r"^seed: must be an integer or a jax\.random key"),
    (dict(method="foo"), r"^method='foo' is unknown"),
])
def test_bad_sample_arguments(model, kwargs, match):
    assert_clean_value_error(match, model.sample, progress=False, **kwargs)


def test_collapsed_method_refused_for_bernoulli():
    assert_clean_value_error(r"^method='collapsed': .*gaussian", build("bernoulli").sample,
                             method="collapsed", progress=False)


# ------------------------------------------------------ caller's data and group labels

EFFECTS = {10: 4.0, 3: -4.0, 7: 0.0}            # true b_i - mu by label
STRINGS = {10: "sc", 3: "ab", 7: "zz"}          # sorted: ab (-4), sc (+4), zz (0)


def labelled_inputs(labels: str) -> dict:
    """Random intercepts for labels in first-seen order 10, 3, 7 (or their strings), 10 rows
    each, sd(y | b) = 0.2. y, groups and X are pandas objects with a non-default index; Z and
    offset are NumPy arrays, Z read-only (accepted, and any write to it would raise)."""
    rng = np.random.default_rng(4)
    raw = np.repeat([10, 3, 7], 10)
    n = raw.size
    x = rng.normal(size=n)
    offset = np.full(n, 0.25)
    y = 1.0 + np.array([EFFECTS[g] for g in raw]) + 0.5 * x + offset + 0.2 * rng.normal(size=n)
    idx = np.arange(50, 50 + n)
    groups = raw if labels == "ints" else np.array([STRINGS[g] for g in raw], dtype=object)
    Z = np.ones((n, 1))
    Z.flags.writeable = False
    return dict(y=pd.Series(y, index=idx), Z=Z, groups=pd.Series(groups, index=idx),
                X=pd.DataFrame({"x": x}, index=idx), offset=offset)


def _snapshot(inputs: dict) -> dict:
    return {k: v.copy() for k, v in inputs.items()}


def _unchanged(inputs: dict, copies: dict) -> dict:
    """name -> whether the caller's object still equals its copy (values, dtype, index)."""
    out = {}
    for name, value in inputs.items():
        copy = copies[name]
        if isinstance(value, (pd.Series, pd.DataFrame)):
            out[name] = value.equals(copy) and value.index.equals(copy.index) \
                and np.array_equal(np.asarray(value), np.asarray(copy))
        else:
            out[name] = value.dtype == copy.dtype and np.array_equal(value, copy)
    return out


@pytest.fixture(scope="module")
def sampled():
    """The integer-labelled model, checked after from_arrays and after a short sample."""
    inputs = labelled_inputs("ints")
    copies = _snapshot(inputs)
    model = GLMM.from_arrays(**inputs)
    after_build = _unchanged(inputs, copies)
    fit = model.sample(chains=1, warmup=100, draws=30, seed=3, progress=False)
    return dict(inputs=inputs, model=model, fit=fit, after_build=after_build,
                after_sample=_unchanged(inputs, copies))


@pytest.mark.parametrize("labels", ["ints", "strings"])
def test_caller_data_not_modified_by_from_arrays(labels):
    inputs = labelled_inputs(labels)
    copies = _snapshot(inputs)
    GLMM.from_arrays(**inputs)
    unchanged = _unchanged(inputs, copies)
    assert all(unchanged.values()), unchanged


def test_caller_data_not_modified_by_sample(sampled):
    assert all(sampled["after_build"].values()), sampled["after_build"]
    assert all(sampled["after_sample"].values()), sampled["after_sample"]


@pytest.mark.parametrize("labels", ["ints", "strings"])
def test_model_keeps_its_own_copy(labels):
    inputs = labelled_inputs(labels)
    arrays = GLMM.from_arrays(**inputs).arrays
    for name in ("y", "X", "offset"):
        assert not np.shares_memory(np.asarray(inputs[name]), getattr(arrays, name)), name
    assert not np.shares_memory(np.asarray(inputs["Z"]), arrays.terms[0].Z)


@pytest.mark.parametrize("labels,expected", [("ints", [3, 7, 10]),
                                             ("strings", ["ab", "sc", "zz"])])
def test_group_labels_sorted_and_rows_mapped(labels, expected):
    inputs = labelled_inputs(labels)
    model = GLMM.from_arrays(**inputs)
    assert list(model.arrays.terms[0].groups) == expected
    # cluster i of every row is the i-th sorted label
    assert [expected[c] for c in model.arrays.terms[0].cluster] == list(inputs["groups"])


def test_fit_coords_are_sorted_labels(sampled):
    fit = sampled["fit"]
    assert fit.coords["groups"] == [3, 7, 10]
    assert fit.draws["b"].shape == (1, 30, 3, 1)


def test_b_follows_sorted_label_order(sampled):
    b_mean = sampled["fit"].draws["b"][..., 0].mean(axis=(0, 1))    # (N,)
    want = np.array([1.0 + EFFECTS[g] for g in (3, 7, 10)])         # b_i = mu + effect
    np.testing.assert_allclose(b_mean, want, atol=0.5)
    assert list(np.argsort(b_mean)) == list(np.argsort(want))
    summary = sampled["fit"].summary(include_b=True, warn=False)
    for g, value in zip((3, 7, 10), want):
        assert abs(summary.loc[f"b[{g},Intercept]", "mean"] - value) < 0.5


def test_seeds_become_keys_by_one_rule():
    import jax
    from jaxglmm.keys import as_key
    k = jax.random.key(3)
    assert jax.random.key_data(as_key(3)).tolist() == jax.random.key_data(k).tolist()
    assert as_key(k) is k
    raw = jax.random.key_data(k)
    assert jax.random.key_data(as_key(raw)).tolist() == raw.tolist()
    for bad in (True, 1.5, "3", None):
        with pytest.raises(ValueError, match="seed: must be an integer or a jax.random key"):
            as_key(bad)
