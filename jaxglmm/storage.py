"""Saving a Fit to one netCDF file and loading it back: no pickle, lossless.

File layout (netCDF4/HDF5 written by xarray with the h5netcdf engine):

    root attributes  jaxglmm_format = "jaxglmm.Fit", jaxglmm_format_version, jaxglmm_version,
                     jaxglmm_meta: JSON with info, sampler config, family and link, priors
                     (`priors_to_dict`), centred (and whether automatic), factor, dtype,
                     the names of the draws and sample stats, formula and na_action
    /posterior       the draws with named dims, as in `Fit.to_arviz` (ArviZ reads the file too)
    /sample_stats    the sample statistics, and step_size per draw
    /observed_data   the response
    /jaxglmm_model   the model's arrays: y, X, Z, cluster, trials, offset, group labels,
                     x_names, z_names
    /jaxglmm_tuning  step_size (C,), inverse_mass_matrix, and last_position (C, d): each
                     chain's last unconstrained position in the sampler's basis (info["basis"],
                     `jaxglmm.basis`): what continuing a run needs
    /jaxglmm_data    for models built from a formula: the data frame (`frame_to_dataset`)

`load` rebuilds the GLMM through its public constructors (from the formula and frame when
there is one, else `GLMM.from_arrays`) and returns a Fit equal to the saved one.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

FORMAT = "jaxglmm.Fit"
FORMAT_VERSION = 1
GROUP_MODEL = "jaxglmm_model"
GROUP_TUNING = "jaxglmm_tuning"
GROUP_DATA = "jaxglmm_data"
ENGINE = "h5netcdf"


class SavedState(NamedTuple):
    """The end of a loaded fit's chains: what continuing the run needs (C chains, d
    unconstrained parameters). `layout` names the blocks of the flat position in order,
    ((name, shape), ...), as `jax.flatten_util.ravel_pytree` lays out the position dict."""

    position: np.ndarray             # (C, d)
    layout: tuple | None             # ((name, shape), ...)
    step_size: np.ndarray            # (C,)
    inverse_mass_matrix: np.ndarray  # (C, d), (C, d, d) or a flat block (C, k*k + d - k)


# ------------------------------------------------------------------------------- helpers


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value) -> str:
    return json.dumps(value, default=_json_default, allow_nan=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else ""
    line = f"{type(err).__name__}: {line}" if line else type(err).__name__
    return line if len(line) <= 240 else line[:237] + "..."


def _labels_to_array(labels) -> tuple[np.ndarray, str]:
    """Group labels (N,) as an array netCDF can hold, and their type ("str", "bool", "int",
    "float") so that `load` gives back the same Python values."""
    values = list(labels)
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=object), "str"
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.array(values, dtype=bool), "bool"
    numbers = all(isinstance(v, (int, float, np.integer, np.floating))
                  and not isinstance(v, (bool, np.bool_)) for v in values)
    if numbers and all(isinstance(v, (int, np.integer)) for v in values):
        return np.array(values, dtype=np.int64), "int"
    if numbers:
        return np.array(values, dtype=np.float64), "float"
    kinds = sorted({type(v).__name__ for v in values})
    raise ValueError(f"groups: labels of type {', '.join(kinds)} cannot be saved; use "
                     "strings or numbers as group labels.")


def _labels_from_array(values: np.ndarray, kind: str) -> tuple:
    casts = {"str": str, "bool": bool, "int": int, "float": float}
    if kind not in casts:
        raise ValueError(f"unknown group label type {kind!r}")
    return tuple(casts[kind](v) for v in np.asarray(values).tolist())


def _encoding(ds) -> dict:
    """Compression (and checksums, so that damaged data fail to read) for numeric arrays."""
    out = {}
    for name, var in ds.data_vars.items():
        if var.ndim and var.size and var.dtype.kind in "biuf":
            out[name] = {"zlib": True, "complevel": 4, "fletcher32": True}
    return out


# ---------------------------------------------------------------------- data frames


def _check_json_values(values, what: str) -> None:
    for v in values:
        if not (v is None or isinstance(v, (str, bool, int, float))):
            raise ValueError(f"data: {what} has the value {v!r} of type {type(v).__name__}, "
                             "which cannot be saved; use strings or numbers.")


def _encode_column(series, label: str):
    """(values (n,), attrs) of one column for netCDF; attrs say how to rebuild it."""
    import pandas as pd

    dtype = series.dtype
    missing = series.isna().to_numpy()
    attrs = {"pandas_dtype": str(dtype)}
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories.tolist()
        _check_json_values(categories, f"{label} (categories)")
        if len({str(c) for c in categories}) != len(categories):
            raise ValueError(f"data: {label} has categories that are equal as strings; "
                             "they cannot be saved as strings.")
        values = np.array(["" if m else str(v) for v, m in zip(series.tolist(), missing)],
                          dtype=object)
        attrs.update(kind="categorical", categories=_dumps(categories),
                     ordered=int(bool(dtype.ordered)))
    elif isinstance(dtype, pd.StringDtype) or (
            dtype == object and all(isinstance(v, str) for v, m
                                    in zip(series.tolist(), missing) if not m)):
        values = np.array(["" if m else v for v, m in zip(series.tolist(), missing)],
                          dtype=object)
        attrs["kind"] = "string"
    elif isinstance(dtype, pd.DatetimeTZDtype):
        values = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        attrs.update(kind="datetime_tz", tz=str(dtype.tz))
    elif isinstance(dtype, np.dtype) and dtype.kind in "biufMm":
        values = series.to_numpy()
        attrs["kind"] = "numpy"
    elif isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "biuf":
        values = series.to_numpy(dtype=float, na_value=np.nan)
        attrs["kind"] = "extension"
    else:
        raise ValueError(f"data: {label} has dtype {dtype}, which cannot be saved; convert "
                         "it to numbers, strings or a categorical.")
    if attrs["kind"] in ("categorical", "string"):
        attrs["missing"] = _dumps(np.flatnonzero(missing).tolist())
    return values, attrs


def _decode_column(values: np.ndarray, attrs: dict):
    import pandas as pd

    kind = attrs.get("kind")
    if kind in ("categorical", "string"):
        missing = np.zeros(len(values), bool)
        missing[json.loads(attrs.get("missing", "[]"))] = True
        strings = [None if m else str(v) for v, m in zip(values.tolist(), missing)]
        if kind == "string":
            out = pd.Series(strings, dtype=object)
            dtype = attrs.get("pandas_dtype", "object")
            return out if dtype == "object" else out.astype(dtype)
        categories = json.loads(attrs["categories"])
        by_string = {str(c): c for c in categories}
        return pd.Series(pd.Categorical([None if s is None else by_string[s] for s in strings],
                                        categories=categories,
                                        ordered=bool(attrs.get("ordered", 0))))
    if kind == "datetime_tz":
        return pd.Series(pd.to_datetime(values)).dt.tz_localize("UTC").dt.tz_convert(
            attrs["tz"])
    if kind == "extension":
        return pd.Series(values).astype(attrs["pandas_dtype"])
    if kind == "numpy":
        out = pd.Series(values)
        return out if str(out.dtype) == attrs["pandas_dtype"] else out.astype(
            attrs["pandas_dtype"])
    raise ValueError(f"unknown column kind {kind!r}")


def frame_to_dataset(frame):
    """A pandas DataFrame as an xarray Dataset netCDF can hold, read back by
    `frame_from_dataset`: column k is variable "c<k>" along dim "row" (names, JSON, in the
    attribute "columns"); categoricals are stored as strings with their categories and
    order in attributes, string columns as strings, missing entries listed by row; the
    index is kept unless it is the default 0..n-1.

    Raises:
        ValueError: a column (or the index) of a type netCDF cannot hold, naming it.
    """
    import pandas as pd
    import xarray as xr

    names = list(frame.columns)
    _check_json_values(names, "a column name")
    data_vars = {}
    for k, name in enumerate(names):
        values, attrs = _encode_column(frame.iloc[:, k], f"column {name!r}")
        data_vars[f"c{k}"] = xr.Variable(("row",), values, attrs)
    index = frame.index
    default_index = isinstance(index, pd.RangeIndex) and index.start == 0 \
        and index.step == 1 and index.name is None
    if not default_index:
        _check_json_values([index.name], "the index name")
        values, attrs = _encode_column(index.to_series(), "the index")
        attrs["name"] = _dumps(index.name)
        data_vars["index"] = xr.Variable(("row",), values, attrs)
    return xr.Dataset(data_vars, attrs={"columns": _dumps(names), "n_rows": len(frame)})


def frame_from_dataset(ds):
    """The DataFrame written by `frame_to_dataset`."""
    import pandas as pd

    names = json.loads(ds.attrs["columns"])
    columns = {}
    for k in range(len(names)):
        var = ds[f"c{k}"]
        columns[k] = _decode_column(var.values, dict(var.attrs)).reset_index(drop=True)
    frame = pd.DataFrame(columns) if columns else pd.DataFrame(
        index=range(int(ds.attrs.get("n_rows", 0))))
    frame.columns = pd.Index(names, dtype=object if not names else None)
    if "index" in ds:
        var = ds["index"]
        index = _decode_column(var.values, dict(var.attrs))
        frame.index = pd.Index(index, name=json.loads(var.attrs["name"]))
    return frame


# ------------------------------------------------------------------------------- saving


def _last_position(fit) -> np.ndarray | None:
    """Each chain's last flat unconstrained position (C, d), or None when unknown."""
    from .sampling import ChainState

    if getattr(fit, "chain_state", None) is not None:
        return np.asarray(fit.chain_state["position"])
    state = fit.last_state
    if isinstance(state, SavedState):
        return np.asarray(state.position)
    if isinstance(state, ChainState):
        return np.asarray(state.state.position)
    return None


def _position_layout(fit, d: int):
    """((name, shape), ...) of the flat position, or None when it cannot be told."""
    if isinstance(fit.last_state, SavedState):
        return fit.last_state.layout
    try:
        template = fit.model.initial_positions(0, 1, fit.info["method"])[0]
    except (KeyError, ValueError, TypeError):
        return None
    layout = tuple((name, tuple(int(n) for n in np.shape(template[name])))
                   for name in sorted(template))
    return layout if sum(int(np.prod(s)) for _, s in layout) == d else None


def _meta(fit, position) -> dict:
    from .families import FAMILIES
    from .inference_data import response_name
    from .priors import priors_to_dict

    model = fit.model
    family = model.spec.family
    if FAMILIES.get(family.name) is not type(family):
        raise ValueError(f"family: {type(family).__name__} (name {family.name!r}) is not one "
                         "of jaxglmm's registered families; a fit with it cannot be saved.")
    formula = getattr(model, "formula", None)
    na_action = getattr(model, "na_action", None)
    layout = None if position is None else _position_layout(fit, position.shape[1])
    return {
        "info": dict(fit.info),
        "config": None if fit.config is None else asdict(fit.config),
        "family": {"name": family.name, "link": family.link},
        "priors": priors_to_dict(model.priors),
        "centred": _centred_option(model),
        "centred_auto": bool(getattr(model, "centred_auto", False)),
        "factor": model.spec.factor,
        "dtype": model.dtype,
        "draws": list(fit.draws),
        "sample_stats": list(fit.sample_stats),
        "position_layout": None if layout is None else [[k, list(s)] for k, s in layout],
        "formula": formula if isinstance(formula, str) else None,
        "na_action": na_action if isinstance(na_action, str) else None,
        "response": response_name(model),
        "n_terms": len(model.spec.terms),
    }


def _model_dataset(model):
    import xarray as xr

    a = model.arrays
    labels, label_type = _labels_to_array(a.groups)
    return xr.Dataset(
        {"y": (("obs",), a.y), "X": (("obs", "x"), a.X), "Z": (("obs", "z"), a.Z),
         "cluster": (("obs",), a.cluster), "trials": (("obs",), a.trials),
         "offset": (("obs",), a.offset), "groups": (("group",), labels),
         "x_names": (("x",), np.array(a.x_names, dtype=object)),
         "z_names": (("z",), np.array(a.z_names, dtype=object))},
        attrs={"group_label_type": label_type, "p": a.X.shape[1], "q": a.Z.shape[1]})


def _tuning_dataset(fit, position):
    import xarray as xr

    imm = np.asarray(fit.inverse_mass_matrix)
    data = {"step_size": (("chain",), np.asarray(fit.step_size)),
            "inverse_mass_matrix": (("chain",) + tuple(f"imm_{k}" for k in
                                                       range(imm.ndim - 1)), imm)}
    if position is not None:
        data["last_position"] = (("chain", "position"), position)
    chain_state = getattr(fit, "chain_state", None)
    if chain_state is not None:  # what Fit.extend continues from, exactly
        data["last_logdensity"] = (("chain",), np.asarray(chain_state["logdensity"]))
        data["last_logdensity_grad"] = (("chain", "position"),
                                        np.asarray(chain_state["logdensity_grad"]))
    if getattr(fit, "sample_keys", None) is not None:
        data["sample_keys"] = (("chain", "key_data"), np.asarray(fit.sample_keys))
    return xr.Dataset(data)


def save(fit, path) -> None:
    """Write `fit` to `path` as netCDF (layout in the module docstring), replacing the file.

    The file is written next to `path` first and moved into place when complete, so an
    interrupted save never leaves a half-written file under `path`.

    Raises:
        ValueError: a custom family, or group labels / data columns netCDF cannot hold.
    """
    import xarray as xr

    from . import __version__
    from .inference_data import posterior_dataset, sample_stats_dataset, as_response

    path = Path(path)
    position = _last_position(fit)
    meta = _meta(fit, position)
    model = fit.model
    groups = {
        "posterior": posterior_dataset(fit, include_b=True),
        "sample_stats": sample_stats_dataset(fit),
        "observed_data": xr.Dataset(
            {meta["response"]: (("obs",), as_response(model.arrays.y, model))}),
        GROUP_MODEL: _model_dataset(model),
        GROUP_TUNING: _tuning_dataset(fit, position),
    }
    frame = getattr(model, "data", None) if meta["formula"] else None
    if frame is not None:
        groups[GROUP_DATA] = frame_to_dataset(frame)
    attrs = {"jaxglmm_format": FORMAT, "jaxglmm_format_version": FORMAT_VERSION,
             "jaxglmm_version": __version__, "jaxglmm_meta": _dumps(meta)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        xr.Dataset(attrs=attrs).to_netcdf(tmp, mode="w", engine=ENGINE)
        for name, ds in groups.items():
            ds.to_netcdf(tmp, mode="a", group=name, engine=ENGINE, encoding=_encoding(ds))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ------------------------------------------------------------------------------ loading


def _read_group(path, group: str):
    import xarray as xr

    try:
        with xr.open_dataset(path, group=group, engine=ENGINE) as ds:
            return ds.load()
    except Exception as err:
        raise ValueError(f"group {group!r} cannot be read: {_first_line(err)}") from err


def _centred_option(model):
    """The `centred` argument that rebuilds the model's parametrisation: "laplace" or a bool."""
    return "laplace" if model.spec.terms[0].laplace else bool(model.spec.centred)


def _build_model(make, priors, centred, centred_auto: bool):
    """make(priors, centred) -> GLMM, with the saved priors and parametrisation; blocks that
    were defaults are left to the defaults again (so the model still marks them) when they
    come out the same."""
    with warnings.catch_warnings():
        # a flat prior was warned about when the model was first built
        warnings.simplefilter("ignore", UserWarning)
        user = replace(priors, **{name: None for name in priors.defaults})
        model = make(user, None if centred_auto else centred)
        if model.priors == priors and _centred_option(model) == centred:
            return model
        model = make(replace(priors, defaults=()), centred)
    warnings.warn("load: this jaxglmm version's default priors or automatic "
                  "parametrisation differ from the saved fit's; the saved ones are used.",
                  UserWarning, stacklevel=3)
    return model


def _same_arrays(a, b) -> bool:
    return (all(np.array_equal(getattr(a, k), getattr(b, k))
                for k in ("y", "X", "Z", "cluster", "trials", "offset"))
            and tuple(a.groups) == tuple(b.groups) and tuple(a.x_names) == tuple(b.x_names)
            and tuple(a.z_names) == tuple(b.z_names))


def _model_from_formula(formula: str, frame, **kwargs):
    """GLMM(formula, frame, family=..., priors=..., centred=..., factor=..., dtype=...,
    [na_action=...]): the formula entry point (DESIGN.md section 6)."""
    from .model import GLMM
    return GLMM(formula, frame, **kwargs)


def _rebuild_model(meta: dict, arrays_ds, frame):
    from .families import make_family
    from .model import GLMM
    from .priors import priors_from_dict

    family = make_family(meta["family"]["name"], meta["family"]["link"])
    priors = priors_from_dict(meta["priors"])
    options = {"factor": meta["factor"], "dtype": meta["dtype"]}
    groups = _labels_from_array(arrays_ds["groups"].values, arrays_ds.attrs["group_label_type"])
    cluster = np.asarray(arrays_ds["cluster"].values)
    x_names = tuple(str(v) for v in arrays_ds["x_names"].values.tolist())
    z_names = tuple(str(v) for v in arrays_ds["z_names"].values.tolist())
    X = np.asarray(arrays_ds["X"].values, float)

    def from_arrays(user_priors, centred):
        labels = np.empty(len(groups), dtype=object)
        labels[:] = groups
        return GLMM.from_arrays(
            arrays_ds["y"].values, arrays_ds["Z"].values, labels[cluster],
            X=X if X.shape[1] else None, family=family,
            trials=arrays_ds["trials"].values if family.has_trials else None,
            offset=arrays_ds["offset"].values, priors=user_priors,
            x_names=x_names if X.shape[1] else None, z_names=z_names, centred=centred,
            **options)

    model = None
    if meta.get("formula") and frame is not None:
        na = {"na_action": meta["na_action"]} if meta.get("na_action") else {}

        def from_formula(user_priors, centred):
            return _model_from_formula(meta["formula"], frame, family=family,
                                       priors=user_priors, centred=centred, **options, **na)
        try:
            model = _build_model(from_formula, priors, meta["centred"], meta["centred_auto"])
            if not _same_arrays(model.arrays, _saved_arrays(arrays_ds, groups)):
                raise ValueError("the formula gives other model arrays than the saved ones")
        except Exception as err:  # defensive: the formula entry point may differ by version
            if meta.get("n_terms", 1) > 1:
                raise ValueError(f"the model of several random-effect terms could not be "
                                 f"rebuilt from its formula: {_first_line(err)}") from None
            warnings.warn(f"load: rebuilding the model from its formula failed "
                          f"({_first_line(err)}); it is rebuilt from the saved arrays "
                          "instead (without the formula).", UserWarning, stacklevel=3)
            model = None
    if model is None:
        model = _build_model(from_arrays, priors, meta["centred"], meta["centred_auto"])
        if not _same_arrays(model.arrays, _saved_arrays(arrays_ds, groups)):
            raise ValueError("the rebuilt model's arrays differ from the saved ones")
    return model


class _Arrays(NamedTuple):
    y: np.ndarray
    X: np.ndarray
    Z: np.ndarray
    cluster: np.ndarray
    trials: np.ndarray
    offset: np.ndarray
    groups: tuple
    x_names: tuple
    z_names: tuple


def _saved_arrays(ds, groups) -> _Arrays:
    return _Arrays(ds["y"].values, ds["X"].values, ds["Z"].values, ds["cluster"].values,
                   ds["trials"].values, ds["offset"].values, groups,
                   tuple(str(v) for v in ds["x_names"].values.tolist()),
                   tuple(str(v) for v in ds["z_names"].values.tolist()))


def _read_fit(path: str, attrs: dict):
    from .results import Fit
    from .sampling import SamplerConfig

    meta = json.loads(attrs["jaxglmm_meta"])
    posterior = _read_group(path, "posterior")
    stats = _read_group(path, "sample_stats")
    arrays_ds = _read_group(path, GROUP_MODEL)
    tuning = _read_group(path, GROUP_TUNING)
    frame = frame_from_dataset(_read_group(path, GROUP_DATA)) if meta.get("formula") \
        and _has_group(path, GROUP_DATA) else None
    draws = {name: np.asarray(posterior[name].values) for name in meta["draws"]}
    sample_stats = {name: np.asarray(stats[name].values) for name in meta["sample_stats"]}
    model = _rebuild_model(meta, arrays_ds, frame)
    step_size = np.asarray(tuning["step_size"].values)
    imm = np.asarray(tuning["inverse_mass_matrix"].values)
    last_state = None
    if "last_position" in tuning:
        layout = meta.get("position_layout")
        last_state = SavedState(
            position=np.asarray(tuning["last_position"].values),
            layout=None if layout is None else tuple((k, tuple(s)) for k, s in layout),
            step_size=step_size, inverse_mass_matrix=imm)
    chain_state = sample_keys = None
    if "last_logdensity" in tuning and last_state is not None:
        chain_state = {"position": last_state.position,
                       "logdensity": np.asarray(tuning["last_logdensity"].values),
                       "logdensity_grad": np.asarray(tuning["last_logdensity_grad"].values)}
    if "sample_keys" in tuning:
        sample_keys = np.asarray(tuning["sample_keys"].values)
    config = None if meta["config"] is None else SamplerConfig(**meta["config"])
    fit = Fit(draws=draws, sample_stats=sample_stats, model=model, config=config,
              info=meta["info"], step_size=step_size, inverse_mass_matrix=imm,
              last_state=last_state, chain_state=chain_state, sample_keys=sample_keys)
    fit.posterior_dims()  # the draws' shapes agree with the model's names
    return fit


def _has_group(path, group: str) -> bool:
    import h5netcdf

    with h5netcdf.File(path, "r") as f:
        return group in f.groups


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _has_hdf5_signature(path: str) -> bool:
    """Whether the HDF5 signature is where HDF5 puts it (offset 0, 512, 1024, 2048, ...)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            f.seek(offset)
            if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else 2 * offset
    return False


def load(path):
    """Read a fit written by `Fit.save`.

    Returns:
        A `Fit` equal to the saved one: draws, sample stats, step size, inverse mass matrix,
        info and sampler config; its model rebuilt from the saved data, family, priors,
        parametrisation, factor and dtype. `last_state` is a `SavedState` (each chain's
        last unconstrained position and the tuning), not the sampler's own state.
    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not netCDF, is damaged, or is not a jaxglmm fit.
    """
    import xarray as xr

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no file {path!r}.")
    if not _has_hdf5_signature(path):
        raise ValueError(f"load: {path!r} is not a netCDF-4 (HDF5) file; jaxglmm.load reads "
                         "files written by Fit.save.")
    try:
        with xr.open_dataset(path, engine=ENGINE) as root:
            attrs = dict(root.attrs)
    except Exception as err:
        raise ValueError(f"load: {path!r} cannot be read as netCDF: it is another kind of "
                         f"file or damaged ({_first_line(err)}).") from None
    if attrs.get("jaxglmm_format") != FORMAT:
        raise ValueError(f"load: {path!r} is a netCDF file but not a saved jaxglmm fit (no "
                         "jaxglmm_format attribute); jaxglmm.load reads files written by "
                         "Fit.save.")
    version = attrs.get("jaxglmm_format_version")
    if not isinstance(version, (int, np.integer)) or not 1 <= int(version) <= FORMAT_VERSION:
        shown = int(version) if isinstance(version, (int, np.integer)) else repr(version)
        raise ValueError(f"load: {path!r} has jaxglmm format version {shown}; this jaxglmm "
                         f"reads versions 1 to {FORMAT_VERSION}. Upgrade jaxglmm.")
    try:
        return _read_fit(path, attrs)
    except Exception as err:
        raise ValueError(f"load: {path!r} is a damaged or incomplete jaxglmm fit "
                         f"({_first_line(err)}).") from None
