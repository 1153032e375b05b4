"""Saving a Fit to one netCDF file and loading it back: no pickle, lossless.

File layout (netCDF4/HDF5 written by xarray with the h5netcdf engine):

    root attributes  jaxglmm_format = "jaxglmm.Fit", jaxglmm_format_version, jaxglmm_version,
                     jaxglmm_meta: JSON with info, the run settings (`RunSettings`) and
                     sampler config, family, link and options (`family_options_to_dict`:
                     Student's nu, the zero inflation's zi), priors (`priors_to_dict`), centred
                     (and whether automatic), factor, dtype, the names of the draws and
                     sample stats, the position layout, formula and na_action
    /posterior       the draws with named dims, as in `Fit.to_arviz` (ArviZ reads the file too)
    /sample_stats    the sample statistics, and step_size per draw
    /observed_data   the response
    /jaxglmm_model   the model's arrays: y, X, trials, offset, weights, x_names, and for every
                     random-effect term k = 0, 1, ...: Z_k, cluster_k, groups_k, z_names_k
                     (its grouping factor and free mean columns in the attributes); format
                     version 1 held term 1 only, as Z, cluster, groups, z_names
    /jaxglmm_tuning  the chains' end (`ChainEnd`): step_size (C,), inverse_mass_matrix,
                     last_position (C, d) in the sampler's basis (info["basis"],
                     `jaxglmm.basis`), last_logdensity, last_logdensity_grad, sample_keys:
                     what continuing a run needs
    /jaxglmm_data    for models built from a formula: the data frame (`frame_to_dataset`)

`jaxglmm.loading.load` reads it back. This module writes and knows the layout; it sits
below the Fit (which calls it to save) and imports only the records it writes.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .family_registry import FAMILIES
from .inference_data import (as_response, posterior_dataset, response_name,
                             sample_stats_dataset)
from .model import centred_option
from .prior_dicts import family_options_to_dict, priors_to_dict
from .sampling import ChainEnd
from .version import __version__

FORMAT = "jaxglmm.Fit"
FORMAT_VERSION = 2  # 2: every term's arrays (_k), the run settings; 1: term 1 only
GROUP_MODEL = "jaxglmm_model"
GROUP_TUNING = "jaxglmm_tuning"
GROUP_DATA = "jaxglmm_data"
ENGINE = "h5netcdf"


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


def _meta(fit) -> dict:
    model = fit.model
    family = model.spec.family
    if FAMILIES.get(family.name) is not type(family):
        raise ValueError(f"family: {type(family).__name__} (name {family.name!r}) is not one "
                         "of jaxglmm's registered families; a fit with it cannot be saved.")
    end = fit.end
    layout = None if end is None else end.layout
    return {
        "info": dict(fit.info),
        "settings": None if fit.settings is None else asdict(fit.settings),
        "config": None if fit.config is None else asdict(fit.config),
        "family": {"name": family.name, "link": family.link,
                   "options": family_options_to_dict(family.options())},
        "priors": priors_to_dict(model.priors),
        "centred": centred_option(model),
        "centred_auto": bool(model.centred_auto),
        "factor": model.factor,
        "dtype": model.dtype,
        "draws": list(fit.draws),
        "sample_stats": list(fit.sample_stats),
        "position_layout": None if layout is None else [[k, list(s)] for k, s in layout],
        "formula": model.formula,
        "na_action": model.na_action if model.formula is not None else None,
        "response": response_name(model),
        "n_terms": len(model.spec.terms),
        # per term, the blocks its defaults filled (model.priors marks a per-term block as
        # a default only when every term's is)
        "term_defaults": {t.name: [b for b in ("mu", "omega") if b in ts.priors.spec.defaults]
                          for t, ts in zip(model.arrays.terms, model.spec.terms)},
    }


def _model_dataset(model):
    """The model's arrays; term k's (from 0) with the suffix _k: Z_k (obs, z_k),
    cluster_k (obs,), groups_k (group_k,), z_names_k (z_k,), and its grouping factor and
    free mean columns in the attributes term_names and mu_free (JSON lists)."""
    import xarray as xr

    a = model.arrays
    data = {"y": (("obs",), a.y), "X": (("obs", "x"), a.X), "trials": (("obs",), a.trials),
            "offset": (("obs",), a.offset), "weights": (("obs",), a.weights),
            "x_names": (("x",), np.array(a.x_names, dtype=object))}
    label_types = []
    for k, t in enumerate(a.terms):
        labels, label_type = _labels_to_array(t.groups)
        label_types.append(label_type)
        data.update({f"Z_{k}": (("obs", f"z_{k}"), t.Z), f"cluster_{k}": (("obs",), t.cluster),
                     f"groups_{k}": ((f"group_{k}",), labels),
                     f"z_names_{k}": ((f"z_{k}",), np.array(t.z_names, dtype=object))})
    return xr.Dataset(data, attrs={
        "p": a.X.shape[1], "n_terms": len(a.terms),
        "term_names": _dumps([t.name for t in a.terms]),
        "mu_free": _dumps([list(t.mu_free) for t in a.terms]),
        "group_label_types": _dumps(label_types)})


def _tuning_dataset(end: ChainEnd):
    import xarray as xr

    imm = np.asarray(end.inverse_mass_matrix)
    data = {"step_size": (("chain",), np.asarray(end.step_size)),
            "inverse_mass_matrix": (("chain",) + tuple(f"imm_{k}" for k in
                                                       range(imm.ndim - 1)), imm),
            "last_position": (("chain", "position"), np.asarray(end.position))}
    if end.logdensity is not None:  # what Fit.extend continues from, exactly
        data["last_logdensity"] = (("chain",), np.asarray(end.logdensity))
        data["last_logdensity_grad"] = (("chain", "position"),
                                        np.asarray(end.logdensity_grad))
    if end.sample_keys is not None:
        data["sample_keys"] = (("chain", "key_data"), np.asarray(end.sample_keys))
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
    meta = _meta(fit)
    model = fit.model
    groups = {
        "posterior": posterior_dataset(fit, include_b=True),
        "sample_stats": sample_stats_dataset(fit),
        "observed_data": xr.Dataset(
            {meta["response"]: (("obs",), as_response(model.arrays.y, model))}),
        GROUP_MODEL: _model_dataset(model),
    }
    if fit.end is not None:
        groups[GROUP_TUNING] = _tuning_dataset(fit.end)
    frame = model.data if meta["formula"] else None
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


