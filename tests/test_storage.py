"""Fit.save / jaxglmm.load: lossless netCDF round trips without pickle, clear errors."""
import json
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from jax.flatten_util import ravel_pytree

import jaxglmm
from jaxglmm import fitting, loading
from jaxglmm.basis import to_user
from jaxglmm.config import RunSettings, SamplerConfig
from jaxglmm.results import Fit
from jaxglmm.sampling import ChainEnd
from jaxglmm.storage import frame_from_dataset, frame_to_dataset

ARRAY_FIELDS = ("y", "X", "trials", "offset")
TERM_FIELDS = ("Z", "cluster")


def label_kind(value) -> str:
    """str, bool, int or float, whether a Python or a NumPy scalar."""
    for kind, types in (("str", str), ("bool", (bool, np.bool_)), ("int", (int, np.integer)),
                        ("float", (float, np.floating))):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def assert_same_fit(got: Fit, want: Fit):
    assert got.draws.keys() == want.draws.keys()
    for name, x in want.draws.items():
        np.testing.assert_array_equal(got.draws[name], x)
        assert got.draws[name].dtype == x.dtype, name
    assert got.sample_stats.keys() == want.sample_stats.keys()
    for name, x in want.sample_stats.items():
        np.testing.assert_array_equal(got.sample_stats[name], x)
        assert got.sample_stats[name].dtype == x.dtype, name
    np.testing.assert_array_equal(got.step_size, want.step_size)
    np.testing.assert_array_equal(got.inverse_mass_matrix, want.inverse_mass_matrix)
    assert got.info == want.info
    assert got.config == want.config
    assert got.settings == want.settings
    a, b = got.model.arrays, want.model.arrays
    for name in ARRAY_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
    assert a.x_names == b.x_names and len(a.terms) == len(b.terms)
    for s, t in zip(a.terms, b.terms):  # every term
        for name in TERM_FIELDS:
            np.testing.assert_array_equal(getattr(s, name), getattr(t, name))
            assert getattr(s, name).dtype == getattr(t, name).dtype, name
        assert s.groups == t.groups
        assert [label_kind(g) for g in s.groups] == [label_kind(g) for g in t.groups]
        assert (s.z_names, s.name, s.mu_free) == (t.z_names, t.name, t.mu_free)
    assert got.model.priors == want.model.priors
    assert got.model.priors.defaults == want.model.priors.defaults
    assert got.model.describe_priors() == want.model.describe_priors()
    assert got.model.spec == want.model.spec
    assert got.model.dtype == want.model.dtype
    assert got.model.centred_auto == want.model.centred_auto


def save_and_load(fit, directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fit.nc"
    fit.save(path)
    assert [p.name for p in directory.iterdir()] == ["fit.nc"]  # no temporary file left
    return jaxglmm.load(path)


# ------------------------------------------------------------------ sampled fits


@pytest.mark.parametrize("which", ["sleep_fit", "binomial_fit"])
def test_round_trip_is_lossless(which, request, tmp_path):
    fit = request.getfixturevalue(which)
    loaded = save_and_load(fit, tmp_path)
    assert_same_fit(loaded, fit)
    pd.testing.assert_frame_equal(loaded.summary(warn=False), fit.summary(warn=False))
    np.testing.assert_array_equal(loaded.to_arviz().log_likelihood["y"].values,
                                  fit.to_arviz().log_likelihood["y"].values)
    # the end of the chains, for continuing the run later
    state = loaded.end
    assert isinstance(state, ChainEnd)
    np.testing.assert_array_equal(state.position, fit.end.position)
    np.testing.assert_array_equal(state.step_size, fit.step_size)
    np.testing.assert_array_equal(state.inverse_mass_matrix, fit.inverse_mass_matrix)
    # a loaded fit saves again to the same content
    again = save_and_load(loaded, tmp_path / "again")
    assert_same_fit(again, fit)
    np.testing.assert_array_equal(again.end.position, state.position)
    assert again.end.layout == state.layout


def test_saved_layout_unravels_the_last_position(binomial_fit, tmp_path):
    fit = binomial_fit  # joint: the model's log density is the sampler's
    state = save_and_load(fit, tmp_path).end
    names = [name for name, _ in state.layout]
    assert names == sorted(["beta", "mu", "chol", "log_gamma", "b"])
    assert dict(state.layout)["b"] == (6, 1)
    template = {name: np.zeros(shape) for name, shape in state.layout}
    _, unravel = ravel_pytree(template)
    # the position is in the sampler's basis (fit.info["basis"], jaxglmm.basis)
    layout, shift = fitting.sampler_basis(fit.model, fit.info["method"], fit.info["basis"])
    assert layout.block == "mu"  # the intercept moves with x's coefficient
    with jax.enable_x64(True):
        lp = [fit.model.logdensity_fn(to_user(unravel(x), layout, shift))
              for x in state.position]
    np.testing.assert_allclose(lp, fit.end.logdensity, rtol=1e-10)


def test_file_is_readable_by_arviz(sleep_fit, tmp_path):
    import arviz as az
    path = tmp_path / "fit.nc"
    sleep_fit.save(path)
    idata = az.from_netcdf(path)  # an xarray.DataTree in ArviZ 1.x
    assert {"posterior", "sample_stats", "observed_data"} <= set(idata.children)
    np.testing.assert_array_equal(idata.posterior["b"].values, sleep_fit.draws["b"])
    assert list(idata.posterior["group"].values) == list(sleep_fit.model.arrays.terms[0].groups)


# ------------------------------------------------------------ fabricated fits (cheap)


def fabricated(groups, X=None, dtype="float64", family="gaussian", seed=0) -> Fit:
    """A fit with random draws of the right shapes (nothing sampled)."""
    rng = np.random.default_rng(seed)
    n = len(groups)
    y = rng.integers(0, 2, n) if family == "bernoulli" else rng.normal(size=n)
    model = jaxglmm.GLMM.from_arrays(y, np.ones(n), groups, X=X, family=family, dtype=dtype)
    C, S, N, p = 2, 7, len(set(groups)), model.spec.p
    f = np.float64 if dtype == "float64" else np.float32
    draws = {"mu": rng.normal(size=(C, S, 1)), "D": np.exp(rng.normal(size=(C, S, 1, 1))),
             "sd": np.ones((C, S, 1)), "corr": np.ones((C, S, 1, 1)),
             "b": rng.normal(size=(C, S, N, 1))}
    if p:
        draws["beta"] = rng.normal(size=(C, S, p))
    if family == "gaussian":
        draws["tau"] = np.exp(rng.normal(size=(C, S)))
        draws["sigma"] = draws["tau"] ** -0.5
    draws = {k: v.astype(f) for k, v in draws.items()}
    stats = {"diverging": rng.random((C, S)) < 0.1, "lp": rng.normal(size=(C, S)).astype(f),
             "n_steps": rng.integers(1, 9, (C, S)), "acceptance_rate": rng.random((C, S))}
    info = {"method": "joint", "parametrisation": "non-centred", "chains": C, "draws": S,
            "seed": None, "compile_s": 1.25, "dtype": dtype}
    settings = RunSettings(method="joint", sampler=SamplerConfig(kernel="mala"), chains=C,
                           warmup=0)
    return Fit(draws=draws, sample_stats=stats, model=model.model, settings=settings,
               info=info)


@pytest.mark.parametrize("groups", [
    np.repeat(["b", "a", "ä c"], 3),         # strings (sorted, non-ASCII)
    np.repeat([30, 10, 20], 3),              # integers
    np.repeat([0.5, -1.25, 2.0], 3),         # floats
    np.repeat([True, False], 4),             # booleans
], ids=["str", "int", "float", "bool"])
def test_group_labels_keep_their_type(groups, tmp_path):
    fit = fabricated(groups)
    loaded = save_and_load(fit, tmp_path)
    assert_same_fit(loaded, fit)
    assert loaded.end is None


def test_no_fixed_effects_float32_and_bernoulli(tmp_path):
    for kwargs in ({"dtype": "float32"}, {"family": "bernoulli",
                                          "X": np.arange(9.0)[:, None]}):
        fit = fabricated(np.repeat(["a", "b", "c"], 3), **kwargs)
        assert_same_fit(save_and_load(fit, tmp_path / kwargs.get("family", "f32")), fit)


def test_save_replaces_an_existing_file_and_keeps_the_fit(tmp_path):
    first, second = fabricated(np.repeat(["a", "b"], 3)), fabricated(np.repeat(["a", "b"], 3),
                                                                      seed=1)
    draws = {k: v.copy() for k, v in second.draws.items()}
    path = tmp_path / "fit.nc"
    first.save(path)
    second.save(str(path))
    assert_same_fit(jaxglmm.load(str(path)), second)
    for k, v in draws.items():
        np.testing.assert_array_equal(second.draws[k], v)


def test_unsavable_group_labels_raise(tmp_path):
    days = pd.to_datetime(["2024-01-01", "2024-01-02"]).repeat(3)
    fit = fabricated(np.asarray(days, dtype=object))
    with pytest.raises(ValueError, match="groups: labels of type Timestamp cannot be saved"):
        fit.save(tmp_path / "fit.nc")
    assert list(tmp_path.iterdir()) == []


def test_custom_family_cannot_be_saved(tmp_path):
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True)
    class MyPoisson(jaxglmm.Poisson):
        name: ClassVar[str] = "poisson"

    fit = fabricated(np.repeat(["a", "b"], 3), family="bernoulli")
    model = jaxglmm.GLMM.from_array_data(fit.model.arrays, MyPoisson(), None)
    fake = Fit(fit.draws, fit.sample_stats, model.model, fit.settings, fit.info)
    with pytest.raises(ValueError, match="family: MyPoisson"):
        fake.save(tmp_path / "fit.nc")


# -------------------------------------------------------------------- bad files


def assert_one_line_value_error(path, match):
    with pytest.raises(ValueError, match=match) as info:
        jaxglmm.load(path)
    assert "\n" not in str(info.value)


def test_load_rejects_a_file_that_is_not_netcdf(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("y,x\n1,2\n")
    assert_one_line_value_error(path, r"is not a netCDF-4 \(HDF5\) file")
    path.write_bytes(b"")
    assert_one_line_value_error(path, r"is not a netCDF-4 \(HDF5\) file")


def test_load_rejects_a_corrupt_file(tmp_path):
    path = tmp_path / "fit.nc"
    fabricated(np.repeat(["a", "b", "c"], 3)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated (an interrupted copy)
    assert_one_line_value_error(path, r"cannot be read as netCDF|damaged")


def test_load_rejects_damaged_contents(tmp_path):
    path = tmp_path / "fit.nc"
    fabricated(np.repeat(["a", "b", "c"], 3)).save(path)
    with xr.open_dataset(path, engine="h5netcdf") as root:
        attrs = dict(root.attrs)
    broken = tmp_path / "broken.nc"
    xr.Dataset(attrs=attrs).to_netcdf(broken, engine="h5netcdf")  # groups missing
    assert_one_line_value_error(broken, r"damaged or incomplete jaxglmm fit .*posterior")
    meta = json.loads(attrs["jaxglmm_meta"])
    meta["priors"]["tau"] = {"kind": "Normal"}
    xr.Dataset(attrs=dict(attrs, jaxglmm_meta=json.dumps(meta))).to_netcdf(
        broken, engine="h5netcdf")
    assert_one_line_value_error(broken, r"damaged or incomplete")


def test_load_rejects_netcdf_that_is_not_a_fit(tmp_path, sleep_fit):
    path = tmp_path / "other.nc"
    xr.Dataset({"t": ("x", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    assert_one_line_value_error(path, r"netCDF file but not a saved jaxglmm fit")
    path = tmp_path / "idata.nc"
    sleep_fit.to_arviz(log_likelihood=False).to_netcdf(str(path))
    assert_one_line_value_error(path, r"not a saved jaxglmm fit")


def test_load_rejects_a_newer_format(tmp_path):
    path = tmp_path / "fit.nc"
    xr.Dataset(attrs={"jaxglmm_format": "jaxglmm.Fit", "jaxglmm_format_version": 99}
               ).to_netcdf(path, engine="h5netcdf")
    assert_one_line_value_error(path, r"format version 99.*Upgrade jaxglmm")


def test_load_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        jaxglmm.load(tmp_path / "nothing.nc")


def test_no_pickle_anywhere():
    for module in ("storage.py", "inference_data.py", "results.py"):
        text = (Path(jaxglmm.__file__).parent / module).read_text()
        assert "pickle" not in text.replace("no pickle", "").replace("without pickle", "")


# ------------------------------------------------------- data frames and formulas


def test_data_frame_round_trip(tmp_path):
    frame = pd.DataFrame({
        "Reaction": [250.5, 260.25, np.nan, 301.0],
        "Days": np.array([0, 1, 2, 3], dtype=np.int64),
        "ok": [True, False, True, True],
        "Subject": pd.Categorical(["s2", "s1", None, "s2"], categories=["s2", "s1", "s3"]),
        "dose": pd.Categorical([1, 2, 2, 1], categories=[1, 2], ordered=True),
        "note": ["a", None, "", "ä"],
        "count": pd.array([1, None, 3, 4], dtype="Int64"),
        "label": pd.array(["x", "y", None, "z"], dtype="string"),
        "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]),
        7: np.float32([1, 2, 3, 4]),
    }, index=pd.Index([10, 11, 12, 13], name="row_id"))
    path = tmp_path / "frame.nc"
    frame_to_dataset(frame).to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        back = frame_from_dataset(ds.load())
    pd.testing.assert_frame_equal(back, frame)


def test_data_frame_with_unsavable_column():
    with pytest.raises(ValueError, match=r"column 'c' has dtype complex128"):
        frame_to_dataset(pd.DataFrame({"c": [1j, 2j]}))
    with pytest.raises(ValueError, match=r"column 'o'"):
        frame_to_dataset(pd.DataFrame({"o": [object(), 1]}))


def formula_fit():
    """A fabricated fit whose model carries `formula`, `data` and `na_action`, as models
    from the formula entry point do."""
    fit = fabricated(np.repeat(["a", "b", "c"], 3), X=np.arange(9.0)[:, None])
    a = fit.model.arrays
    frame = pd.DataFrame({"Reaction": a.y, "x1": a.X[:, 0],
                          "g": pd.Categorical(np.repeat(["a", "b", "c"], 3))})
    model = replace(fit.model, formula="Reaction ~ x1 + (1 | g)", data=frame,
                    na_action="raise")
    return replace(fit, model=model)


def test_formula_models_store_their_data_and_formula(tmp_path, monkeypatch):
    fit = formula_fit()
    path = tmp_path / "fit.nc"
    fit.save(path)
    with xr.open_dataset(path, group="jaxglmm_data", engine="h5netcdf") as ds:
        pd.testing.assert_frame_equal(frame_from_dataset(ds.load()), fit.model.data)
    with xr.open_dataset(path, group="observed_data", engine="h5netcdf") as ds:
        assert list(ds.data_vars) == ["Reaction"]

    calls = []

    def fake_parse(formula, frame, family, na_action, weights=None):
        """The saved arrays as the formula's design (only predictions use it)."""
        np.testing.assert_array_equal(weights, fit.model.arrays.weights)
        calls.append((formula, frame, family, na_action))
        return SimpleNamespace(arrays=fit.model.arrays, data=frame)
    monkeypatch.setattr(loading, "parse_formula", fake_parse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = jaxglmm.load(path)
    formula, frame, family, na_action = calls[0]
    assert formula == "Reaction ~ x1 + (1 | g)"
    pd.testing.assert_frame_equal(frame, fit.model.data)
    assert na_action == "raise" and family == fit.model.spec.family
    assert_same_fit(loaded, fit)
    assert loaded.model.formula == fit.model.formula and loaded.model.design is not None


def test_formula_parse_failure_keeps_the_saved_model(tmp_path, monkeypatch):
    fit = formula_fit()
    path = tmp_path / "fit.nc"
    fit.save(path)

    def broken(formula, frame, family, na_action, weights=None):
        raise TypeError("GLMM() takes no formula")
    monkeypatch.setattr(loading, "parse_formula", broken)
    with pytest.warns(UserWarning, match="cannot be parsed the same way"):
        loaded = jaxglmm.load(path)
    assert_same_fit(loaded, fit)
    pd.testing.assert_frame_equal(loaded.model.data, fit.model.data)
    with pytest.raises(ValueError, match="refit the model to predict"):
        loaded.predict(fit.model.data)


# ------------------------------------------------------- formula models, several terms


def _crossed_frame(seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{i}" for i in range(6)], 12)
    h = np.tile(np.repeat(["u", "v", "w"], 4), 6)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g, "h": pd.Categorical(h)})


@pytest.fixture(scope="module")
def crossed_fit():
    import warnings
    model = jaxglmm.GLMM("y ~ x + (1 + x | g) + (1 | h)", _crossed_frame(),
                         priors=jaxglmm.Priors(omega={"h": jaxglmm.Wishart(2.0, 0.5)}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.sample(chains=2, warmup=100, draws=40, seed=4, progress=False)


def test_formula_fit_round_trip_with_several_terms(crossed_fit, tmp_path):
    path = tmp_path / "crossed.nc"
    crossed_fit.save(path)
    loaded = jaxglmm.load(path)
    assert loaded.model.formula == crossed_fit.model.formula
    assert [ts.key for ts in loaded.model.spec.terms] == ["|g", "|h"]
    assert loaded.model.priors == crossed_fit.model.priors
    assert loaded.model.spec == crossed_fit.model.spec
    pd.testing.assert_frame_equal(loaded.model.data, crossed_fit.model.data)
    for k in crossed_fit.draws:
        np.testing.assert_array_equal(loaded.draws[k], crossed_fit.draws[k])
    for k in crossed_fit.sample_stats:
        np.testing.assert_array_equal(loaded.sample_stats[k], crossed_fit.sample_stats[k])


def test_loaded_fit_extends_like_the_original(crossed_fit, tmp_path):
    import warnings
    path = tmp_path / "crossed.nc"
    crossed_fit.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = crossed_fit.extend(20, progress=False)
        b = jaxglmm.load(path).extend(20, progress=False)
    for k in a.draws:
        np.testing.assert_array_equal(a.draws[k], b.draws[k])


def test_several_terms_to_arviz(crossed_fit):
    import arviz as az
    idata = crossed_fit.to_arviz(posterior_predictive=True)
    post = idata.posterior
    assert post["b|g"].dims == ("chain", "draw", "group|g", "re_dim|g")
    assert list(post["group|h"].values) == ["u", "v", "w"]
    assert post["mu|g"].dims[-1] == "re_dim|g" and "mu|h" not in post
    assert idata.log_likelihood["y"].shape == (2, 40, 72)
    # the pointwise log likelihood is the sum over terms' contributions: check one draw
    from scipy import stats
    d = crossed_fit.draws
    tg, th = crossed_fit.model.arrays.terms
    x = crossed_fit.model.data.x.to_numpy()
    eta = (d["b|g"][0, 0][tg.cluster] * np.c_[np.ones(72), x]).sum(1) + d["b|h"][0, 0][th.cluster, 0]
    want = stats.norm.logpdf(crossed_fit.model.data.y, eta, d["sigma"][0, 0])
    np.testing.assert_allclose(idata.log_likelihood["y"].values[0, 0], want, rtol=1e-10)
    assert np.isfinite(az.loo(idata).elpd)


def test_several_terms_load_without_parsing_the_formula(crossed_fit, tmp_path, monkeypatch):
    path = tmp_path / "crossed.nc"
    crossed_fit.save(path)
    with xr.open_dataset(path, group="jaxglmm_model", engine="h5netcdf") as ds:
        assert {"Z_0", "Z_1", "cluster_1", "groups_1", "z_names_1"} <= set(ds.data_vars)
        assert json.loads(ds.attrs["term_names"]) == ["g", "h"]

    def broken(*args, **kwargs):
        raise ValueError("formulae changed its mind")
    monkeypatch.setattr(loading, "parse_formula", broken)
    with pytest.warns(UserWarning, match="cannot be parsed the same way"):
        loaded = jaxglmm.load(path)
    assert_same_fit(loaded, crossed_fit)  # every term's arrays, from the file alone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = crossed_fit.extend(10, progress=False)
        b = loaded.extend(10, progress=False)
    for k in a.draws:
        np.testing.assert_array_equal(a.draws[k], b.draws[k])


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name,formula", [
    ("v1_sleepstudy.nc", "Reaction ~ Days + (1 + Days | Subject)"),
    ("v1_crossed.nc", "y ~ x + (1 + x | g) + (1 | h)"),
    ("v1_arrays_binomial.nc", None)])
def test_fits_saved_by_format_version_1_load(name, formula):
    """Files of the release before the redesign (tests/data/make_v1.py): the model comes
    back with the saved priors and parametrisation, draws and tuning as written, the run
    goes on, and formula models still predict."""
    path = DATA / name
    with xr.open_dataset(path, engine="h5netcdf") as root:
        assert root.attrs["jaxglmm_format_version"] == 1
    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as ds:
        posterior = ds.load()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no rebuild warning: the model is the saved one
        fit = jaxglmm.load(path)
    assert fit.model.formula == formula
    for k in fit.draws:
        np.testing.assert_array_equal(fit.draws[k], posterior[k].values)
    t = fit.model.arrays.terms[0]
    if formula is None:
        assert fit.model.spec.family.name == "binomial" and t.groups == tuple(range(8))
    else:
        fresh = jaxglmm.GLMM(formula, fit.model.data)
        assert fit.model.spec == fresh.spec and fit.model.priors == fresh.priors
        assert [s.name for s in fit.model.arrays.terms] == [
            s.name for s in fresh.arrays.terms]
        pred = fit.predict(fit.model.data.iloc[:3], summary=True)
        assert pred.shape == (3, 5) and np.all(np.isfinite(pred.to_numpy()))
    assert fit.settings.chains == 2 and fit.settings.method == fit.info["method"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxglmm.SamplingWarning)
        more = fit.extend(5, progress=False)
    assert more.info["draws"] == fit.info["draws"] + 5
    for k in fit.draws:
        np.testing.assert_array_equal(more.draws[k][:, :fit.info["draws"]], fit.draws[k])


@pytest.mark.parametrize("name,formula", [
    ("v2_sleepstudy.nc", "Reaction ~ Days + (1 + Days | Subject)"),
    ("v2_poisson_offset_weights.nc",
     "y ~ x + offset(log(exposure)) + (1 + x | g) + (1 | h)")])
def test_fits_saved_by_the_release_before_arviz_1_load(name, formula):
    """Files of the release before the ArviZ 1.x move, written in its own environment
    (Python 3.11, arviz 0.23, jax 0.10; tests/data/make_v2.py): the draws, offsets and
    weights come back as written, the fit goes to ArviZ 1.x data, predicts and goes on."""
    path = DATA / name
    with xr.open_dataset(path, engine="h5netcdf") as root:
        assert root.attrs["jaxglmm_format_version"] == 2
        assert root.attrs["jaxglmm_version"] == "0.1.0"
    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as ds:
        posterior = ds.load()
    with warnings.catch_warnings():
        warnings.simplefilter("error", jaxglmm.SamplingWarning)
        fit = jaxglmm.load(path)
    assert fit.model.formula == formula
    for k in fit.draws:
        np.testing.assert_array_equal(fit.draws[k], posterior[k].values)
    data, arrays = fit.model.data, fit.model.arrays
    if "weights" in name:
        rng = np.random.default_rng(1)  # make_v2.py's weights, drawn after x and exposure
        rng.normal(size=72), rng.uniform(1, 3, size=72)
        np.testing.assert_array_equal(arrays.weights, rng.integers(1, 4, size=72))
        np.testing.assert_allclose(arrays.offset, np.log(data.exposure.to_numpy()), rtol=1e-15)
        assert fit.model.spec.family.name == "poisson" and len(arrays.terms) == 2
    tree = fit.to_arviz()
    assert isinstance(tree, xr.DataTree)
    for k in fit.draws:
        np.testing.assert_array_equal(tree["posterior"][k].values, fit.draws[k])
    pred = fit.predict(data.iloc[:3], summary=True)
    assert pred.shape == (3, 5) and np.all(np.isfinite(pred.to_numpy()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxglmm.SamplingWarning)
        more = fit.extend(5, progress=False)
    for k in fit.draws:
        np.testing.assert_array_equal(more.draws[k][:, :fit.info["draws"]], fit.draws[k])
