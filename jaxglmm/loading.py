"""Loading a Fit saved by `Fit.save` (`jaxglmm.storage` writes the file and holds its layout).

`load` rebuilds the Model from the saved arrays of every term (`build_model`), parses a
formula model's formula again only for what predictions need, and returns a Fit equal to
the saved one. Files of format version 1, which saved the first term only, load too (a
model of several terms then comes from its formula). It sits above the model and the Fit,
which it builds; storage sits below them.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace

import numpy as np

from .config import RunSettings, SamplerConfig
from .design import ArrayData, RandomTerm
from .family_registry import make_family
from .formula import parse_formula
from .model import build_model, centred_option
from .prior_dicts import family_options_from_dict, priors_from_dict
from .results import Fit
from .sampling import ChainEnd
from .storage import (ENGINE, FORMAT, FORMAT_VERSION, GROUP_DATA, GROUP_MODEL, GROUP_TUNING,
                      first_line, frame_from_dataset, labels_from_array)


def _read_group(path, group: str):
    import xarray as xr

    try:
        with xr.open_dataset(path, group=group, engine=ENGINE) as ds:
            return ds.load()
    except Exception as err:
        raise ValueError(f"group {group!r} cannot be read: {first_line(err)}") from err


def _user_priors(priors, term_defaults: dict | None):
    """The saved priors with the blocks that were defaults left out: whole blocks, and per
    term (`term_defaults`: {grouping factor: [block, ...]}) the entries of per-term dicts."""
    user = replace(priors, **{name: None for name in priors.defaults})
    for block in ("mu", "omega"):
        value = getattr(user, block)
        if isinstance(value, tuple) and term_defaults:
            kept = {k: v for k, v in value if block not in term_defaults.get(k, ())}
            user = replace(user, **{block: kept or None})
    return user


def _first_term_centred(model):
    """What format version 1 saved as `centred`: "laplace" or the first term's choice."""
    terms = model.spec.terms
    return "laplace" if terms[0].laplace else bool(terms[0].centred)


def _build_model(make, priors, centred, centred_auto: bool, term_defaults: dict | None = None,
                 centred_of=centred_option):
    """make(priors, centred) -> Model, with the saved priors and parametrisation; blocks that
    were defaults are left to the defaults again (so the model still marks them) when they
    come out the same (`centred_of(model)` is what the file saved as centred)."""
    with warnings.catch_warnings():
        # a flat prior was warned about when the model was first built
        warnings.simplefilter("ignore", UserWarning)
        user = _user_priors(priors, term_defaults)
        model = make(user, None if centred_auto else centred)
        if model.priors == priors and centred_of(model) == centred:
            return model
        model = make(replace(priors, defaults=()), centred)
    warnings.warn("load: this jaxglmm version's default priors or automatic "
                  "parametrisation differ from the saved fit's; the saved ones are used.",
                  UserWarning, stacklevel=3)
    return model


def _names(values) -> tuple:
    return tuple(str(v) for v in values.tolist())


def _saved_arrays(ds) -> ArrayData:
    """The model arrays of format version 2: every term as saved (no formula needed)."""
    n_terms = int(ds.attrs["n_terms"])
    names = json.loads(ds.attrs["term_names"])
    mu_free = json.loads(ds.attrs["mu_free"])
    kinds = json.loads(ds.attrs["group_label_types"])
    terms = tuple(RandomTerm(
        Z=np.asarray(ds[f"Z_{k}"].values, float),
        cluster=np.asarray(ds[f"cluster_{k}"].values, np.int32),
        groups=labels_from_array(ds[f"groups_{k}"].values, kinds[k]),
        z_names=_names(ds[f"z_names_{k}"].values), name=names[k],
        mu_free=tuple(int(j) for j in mu_free[k])) for k in range(n_terms))
    return _common_arrays(ds, terms)


def _common_arrays(ds, terms: tuple) -> ArrayData:
    return ArrayData(y=np.asarray(ds["y"].values, float), X=np.asarray(ds["X"].values, float),
                     trials=np.asarray(ds["trials"].values, float),
                     offset=np.asarray(ds["offset"].values, float),
                     x_names=_names(ds["x_names"].values), terms=terms,
                     weights=np.asarray(ds["weights"].values, float) if "weights" in ds
                     else None)


def _same_arrays(a: ArrayData, b: ArrayData) -> bool:
    if len(a.terms) != len(b.terms) or a.x_names != b.x_names:
        return False
    if not all(np.array_equal(getattr(a, k), getattr(b, k))
               for k in ("y", "X", "trials", "offset", "weights")):
        return False
    return all(np.array_equal(s.Z, t.Z) and np.array_equal(s.cluster, t.cluster)
               and s.groups == t.groups and s.z_names == t.z_names and s.name == t.name
               and s.mu_free == t.mu_free for s, t in zip(a.terms, b.terms))


def _design(meta: dict, frame, family, arrays: ArrayData | None):
    """The parsed formula (what predictions need) of a saved formula model, or None with a
    warning when this version parses it into other arrays than `arrays` (or fails)."""
    try:
        # the saved weights (a column or an array): the design must give the saved arrays
        weights = None if arrays is None else arrays.weights
        design = parse_formula(meta["formula"], frame, family, meta.get("na_action") or "raise",
                               weights)
        if arrays is not None and not _same_arrays(design.arrays, arrays):
            raise ValueError("the formula gives other model arrays than the saved ones")
        return design
    except Exception as err:  # defensive: the formula entry point may differ by version
        if arrays is None:
            raise
        warnings.warn(f"load: the saved formula cannot be parsed the same way by this "
                      f"jaxglmm ({first_line(err)}); the model is the saved one, but "
                      "predict() needs a refit.", UserWarning, stacklevel=4)
        return None


def _version1_arrays(ds, meta: dict, frame, family):
    """(arrays, design) of format version 1, which saved the first term only: a model of
    several terms comes from its formula."""
    groups = labels_from_array(ds["groups"].values, ds.attrs["group_label_type"])
    first = RandomTerm(Z=np.asarray(ds["Z"].values, float),
                       cluster=np.asarray(ds["cluster"].values, np.int32), groups=groups,
                       z_names=_names(ds["z_names"].values), name="group",
                       mu_free=tuple(range(ds["Z"].shape[1])))
    saved = _common_arrays(ds, (first,))
    if not (meta.get("formula") and frame is not None):
        return saved, None
    if meta.get("n_terms", 1) > 1:
        try:
            design = _design(meta, frame, family, None)
        except ValueError as err:
            raise ValueError(f"the model of several random-effect terms could not be "
                             f"rebuilt from its formula: {first_line(err)}") from None
        return design.arrays, design
    try:
        design = parse_formula(meta["formula"], frame, family, meta.get("na_action") or "raise")
        ok = _same_arrays(replace(design.arrays, terms=tuple(
            replace(t, name="group", mu_free=first.mu_free) for t in design.arrays.terms)),
            saved)
    except Exception as err:  # defensive, as in _design
        design, ok = None, first_line(err)
    if ok is True:
        return design.arrays, design
    reason = ok if isinstance(ok, str) else "the formula gives other model arrays"
    warnings.warn(f"load: rebuilding the model from its formula failed ({reason}); it is "
                  "rebuilt from the saved arrays instead (without the formula).",
                  UserWarning, stacklevel=4)
    return saved, None


def _legacy_settings(meta: dict) -> RunSettings | None:
    """The run settings of a format-1 file, from its sampler config and info."""
    if meta.get("config") is None:
        return None
    info = meta["info"]
    return RunSettings(method=info["method"], sampler=SamplerConfig(**meta["config"]),
                       chains=info["chains"], warmup=info.get("warmup", 0),
                       chunk=info.get("chunk", 50), thin=info.get("thin", 1),
                       keep_b=info.get("keep_b", True), basis=info.get("basis", "none"),
                       seed=info.get("seed"))


def _chain_end(tuning, meta: dict) -> ChainEnd | None:
    if tuning is None or "last_position" not in tuning:
        return None
    layout = meta.get("position_layout")

    def get(name):
        return np.asarray(tuning[name].values) if name in tuning else None
    return ChainEnd(position=get("last_position"), step_size=get("step_size"),
                    inverse_mass_matrix=get("inverse_mass_matrix"),
                    logdensity=get("last_logdensity"),
                    logdensity_grad=get("last_logdensity_grad"),
                    sample_keys=get("sample_keys"),
                    layout=None if layout is None else tuple((k, tuple(s)) for k, s in layout))


def _read_fit(path: str, attrs: dict):
    meta = json.loads(attrs["jaxglmm_meta"])
    version = int(attrs["jaxglmm_format_version"])
    posterior = _read_group(path, "posterior")
    stats = _read_group(path, "sample_stats")
    arrays_ds = _read_group(path, GROUP_MODEL)
    groups = _group_names(path)
    tuning = _read_group(path, GROUP_TUNING) if GROUP_TUNING in groups else None
    frame = frame_from_dataset(_read_group(path, GROUP_DATA)) if meta.get("formula") \
        and GROUP_DATA in groups else None
    family = make_family(meta["family"]["name"], meta["family"]["link"],
                         **family_options_from_dict(meta["family"].get("options", {})))
    if version == 1:
        arrays, design = _version1_arrays(arrays_ds, meta, frame, family)
    else:
        arrays = _saved_arrays(arrays_ds)
        design = None if frame is None else _design(meta, frame, family, arrays)
    # a version-1 model rebuilt from its arrays has lost its formula (and frame)
    formula = meta.get("formula") if version > 1 or design is not None else None

    def make(priors, centred):
        return build_model(arrays, family, priors, centred, meta["factor"], meta["dtype"],
                           formula=formula, design=design,
                           na_action=meta.get("na_action") or "raise")
    model = _build_model(make, priors_from_dict(meta["priors"]), meta["centred"],
                         meta["centred_auto"], meta.get("term_defaults"),
                         centred_option if version > 1 else _first_term_centred)
    if model.data is None and formula is not None:
        model = replace(model, data=frame)
    settings = RunSettings.from_dict(meta["settings"]) if meta.get("settings") else \
        _legacy_settings(meta)
    fit = Fit(draws={name: np.asarray(posterior[name].values) for name in meta["draws"]},
              sample_stats={name: np.asarray(stats[name].values)
                            for name in meta["sample_stats"]},
              model=model, settings=settings, info=meta["info"], end=_chain_end(tuning, meta))
    fit.posterior_dims()  # the draws' shapes agree with the model's names
    return fit


def _group_names(path) -> set:
    """The names of the file's top-level groups (read once)."""
    import h5netcdf

    with h5netcdf.File(path, "r") as f:
        return set(f.groups)


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
        A `Fit` equal to the saved one: draws, sample stats, info, run settings and the
        chains' end (`fit.end`, from which `extend` continues); its model rebuilt from the
        saved arrays of every term, family, priors, parametrisation, factor and dtype.
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
