"""Priors as JSON-ready dicts and back: what a saved fit keeps of them (`jaxglmm.storage`
writes it, `jaxglmm.loading` reads it)."""
from __future__ import annotations

from dataclasses import fields

from .priors import (LKJ, PER_TERM, Beta, Flat, Gamma, HalfNormal, HalfStudentT, Normal,
                     Priors, Wishart)

PRIOR_FIELDS = {"beta": (Flat, Normal), "mu": (Flat, Normal), "tau": (Gamma,),
                "omega": (Wishart, LKJ)}
_KINDS = {cls.__name__: cls for cls in (Flat, Normal, Gamma, Beta, Wishart, LKJ,
                                          HalfNormal, HalfStudentT)}


def _param_to_json(value):
    """A prior parameter (float, tuple of floats, None, or a nested prior: a Gamma, or LKJ's
    HalfStudentT or HalfNormal) as JSON-ready data."""
    if value is None:
        return None
    if isinstance(value, (Gamma, HalfNormal, HalfStudentT)):
        return _prior_to_dict(value)
    if isinstance(value, tuple):
        return [float(v) for v in value]
    return float(value)


def _prior_to_dict(prior) -> dict | None:
    if prior is None:
        return None
    if isinstance(prior, Flat):
        return {"kind": "Flat"}
    if isinstance(prior, Normal):
        return {"kind": "Normal", "loc": _param_to_json(prior.loc),
                "scale": _param_to_json(prior.scale)}
    if isinstance(prior, Gamma):
        return {"kind": "Gamma", "shape": _param_to_json(prior.shape),
                "rate": _param_to_json(prior.rate)}
    if isinstance(prior, LKJ):
        return {"kind": "LKJ", "eta": float(prior.eta), "scale": _prior_to_dict(prior.scale)}
    if isinstance(prior, HalfNormal):
        return {"kind": "HalfNormal", "scale": _param_to_json(prior.scale)}
    if isinstance(prior, HalfStudentT):
        return {"kind": "HalfStudentT", "df": float(prior.df),
                "scale": _param_to_json(prior.scale)}
    if isinstance(prior, Beta):
        return {"kind": "Beta", "a": float(prior.a), "b": float(prior.b)}
    if isinstance(prior, Wishart):
        return {"kind": "Wishart", "df": float(prior.df),
                "scale_inv_diag": _param_to_json(prior.scale_inv_diag)}
    raise ValueError(f"priors: cannot serialise {prior!r}.")  # pragma: no cover


def priors_to_dict(priors: Priors) -> dict:
    """A Priors as plain JSON-ready data (no pickle), read back by `priors_from_dict`.

    Each block is None or {"kind": "Flat" | "Normal" | "Gamma" | "Wishart", <parameters>};
    a parameter is a number, a list of numbers, or a {"kind": "Gamma", ...} dict (random
    rate of tau, random gamma_j of the Wishart). "defaults" lists the blocks filled in by the
    defaults. Example: {"beta": {"kind": "Normal", "loc": 0.0, "scale": [1.0, 2.0]},
    "mu": None, "tau": {"kind": "Gamma", "shape": 1.0, "rate": {"kind": "Gamma",
    "shape": 1.0, "rate": 0.5}}, "omega": None, "defaults": []}.

    Raises:
        ValueError: `priors` is not a jaxglmm.Priors.
    """
    if not isinstance(priors, Priors):
        raise ValueError(f"priors: must be a jaxglmm.Priors, got {type(priors).__name__}.")
    out = {}
    for name in PRIOR_FIELDS:
        value = getattr(priors, name)
        if isinstance(value, tuple):  # one prior per random-effect term
            out[name] = {"per_term": {k: _prior_to_dict(v) for k, v in value}}
        else:
            out[name] = _prior_to_dict(value)
    out["defaults"] = list(priors.defaults)
    return out


def _param_from_json(value, where: str):
    if value is None:
        return None
    if isinstance(value, dict):
        return _prior_from_dict(value, where, (Gamma, HalfNormal, HalfStudentT))
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        return tuple(float(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{where}: must be a number, a list of numbers or a Gamma dict, "
                     f"got {value!r}.")


def _prior_from_dict(data, where: str, kinds: tuple):
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("kind") not in _KINDS:
        raise ValueError(f"{where}: must be None or a dict with 'kind' one of "
                         f"{', '.join(_KINDS)}, got {data!r}.")
    cls = _KINDS[data["kind"]]
    if cls not in kinds:
        raise ValueError(f"{where}: kind {data['kind']!r} is not allowed here; use "
                         f"{' or '.join(k.__name__ for k in kinds)}.")
    params = {k: v for k, v in data.items() if k != "kind"}
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {', '.join(unknown)} for "
                         f"{cls.__name__}; allowed: {', '.join(allowed) or 'none'}.")
    try:
        return cls(**{k: _param_from_json(v, f"{where}.{k}") for k, v in params.items()})
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def priors_from_dict(data: dict) -> Priors:
    """The Priors written by `priors_to_dict` (missing blocks are None).

    Raises:
        ValueError: an unknown key or kind, or a bad parameter, naming where it is.
    """
    if not isinstance(data, dict):
        raise ValueError(f"priors: must be a dict, got {type(data).__name__}.")
    unknown = sorted(set(data) - set(PRIOR_FIELDS) - {"defaults"})
    if unknown:
        raise ValueError(f"priors: unknown key(s) {', '.join(map(repr, unknown))}; allowed: "
                         f"{', '.join(PRIOR_FIELDS)}, defaults.")
    blocks = {}
    for name, kinds in PRIOR_FIELDS.items():
        value = data.get(name)
        if isinstance(value, dict) and set(value) == {"per_term"} and name in PER_TERM \
                and isinstance(value["per_term"], dict):
            blocks[name] = {k: _prior_from_dict(v, f"priors.{name}[{k!r}]", kinds)
                            for k, v in value["per_term"].items()}
        else:
            blocks[name] = _prior_from_dict(value, f"priors.{name}", kinds)
    defaults = data.get("defaults", [])
    if not isinstance(defaults, list) or not set(defaults) <= set(PRIOR_FIELDS):
        raise ValueError(f"priors.defaults: must be a list of block names "
                         f"({', '.join(PRIOR_FIELDS)}), got {defaults!r}.")
    return Priors(**blocks, defaults=tuple(defaults))


def family_options_to_dict(options: dict) -> dict:
    """A family's parameter options ({"nu": Gamma(2, 0.1)} or {"nu": 4.0}, see
    `Family.options`) as JSON-ready data: a number stays a number, a prior becomes its dict."""
    return {name: float(v) if isinstance(v, (int, float)) else _prior_to_dict(v)
            for name, v in options.items()}


def family_options_from_dict(data: dict) -> dict:
    """The options written by `family_options_to_dict`.

    Raises:
        ValueError: a value that is neither a number nor a Gamma or Beta dict.
    """
    if not isinstance(data, dict):
        raise ValueError(f"family.options: must be a dict, got {type(data).__name__}.")
    out = {}
    for name, value in data.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
        else:
            out[name] = _prior_from_dict(value, f"family.options.{name}", (Gamma, Beta))
    return out
