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

`jaxglmm.loading.load` reads it back. This module writes and knows the layout; it imports
neither the model nor the Fit, so that `Fit.save` can call it from below.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .families import FAMILIES
from .inference_data import (as_response, posterior_dataset, response_name,
                             sample_stats_dataset)
from .priors import priors_to_dict
from .sampling import ChainState
from .version import __version__
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


def first_line(err: BaseException) -> str:
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


def labels_from_array(values: np.ndarray, kind: str) -> tuple:
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


def centred_option(model):
    """The `centred` argument that rebuilds the model's parametrisation: "laplace" or a bool."""
    return "laplace" if model.spec.terms[0].laplace else bool(model.spec.centred)


def _meta(fit, position) -> dict:

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
        "centred": centred_option(model),
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
