"""Loading a Fit saved by `Fit.save` (`jaxglmm.storage` writes the file and holds its layout).

`load` rebuilds the GLMM through its public constructors (from the formula and frame when
there is one, else `GLMM.from_arrays`) and returns a Fit equal to the saved one. It sits
above the model and the Fit, which it builds; storage sits below them.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from .families import make_family
from .model import GLMM
from .priors import priors_from_dict
from .results import Fit
from .sampling import SamplerConfig
from .storage import (ENGINE, FORMAT, FORMAT_VERSION, GROUP_DATA, GROUP_MODEL, GROUP_TUNING,
                      SavedState, centred_option, first_line, frame_from_dataset,
                      labels_from_array)


def _read_group(path, group: str):
    import xarray as xr

    try:
        with xr.open_dataset(path, group=group, engine=ENGINE) as ds:
            return ds.load()
    except Exception as err:
        raise ValueError(f"group {group!r} cannot be read: {first_line(err)}") from err


def _build_model(make, priors, centred, centred_auto: bool):
    """make(priors, centred) -> GLMM, with the saved priors and parametrisation; blocks that
    were defaults are left to the defaults again (so the model still marks them) when they
    come out the same."""
    with warnings.catch_warnings():
        # a flat prior was warned about when the model was first built
        warnings.simplefilter("ignore", UserWarning)
        user = replace(priors, **{name: None for name in priors.defaults})
        model = make(user, None if centred_auto else centred)
        if model.priors == priors and centred_option(model) == centred:
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
    return GLMM(formula, frame, **kwargs)


def _rebuild_model(meta: dict, arrays_ds, frame):

    family = make_family(meta["family"]["name"], meta["family"]["link"])
    priors = priors_from_dict(meta["priors"])
    options = {"factor": meta["factor"], "dtype": meta["dtype"]}
    groups = labels_from_array(arrays_ds["groups"].values, arrays_ds.attrs["group_label_type"])
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
                                 f"rebuilt from its formula: {first_line(err)}") from None
            warnings.warn(f"load: rebuilding the model from its formula failed "
                          f"({first_line(err)}); it is rebuilt from the saved arrays "
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
                         f"file or damaged ({first_line(err)}).") from None
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
                         f"({first_line(err)}).") from None
