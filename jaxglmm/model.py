"""The model as a frozen record: its validated arrays, static description (spec), resolved
priors, precision and initial box, built once by `build_model`, and its description in the
notation of DESIGN.md section 1. Sampling it is `jaxglmm.fitting`'s job; `jaxglmm.GLMM` is
the facade over both.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .density import ModelData, ModelSpec, TermSpec, log_posterior, weighted
from .design import ArrayData, choose_centred
from .family_base import Family
from .formula import FormulaDesign
from .links import MEAN_TEXT
from .parameters import init_box
from .priors import (Flat, Normal, Priors, default_priors, describe_priors, intercept_width,
                     resolve_priors)

FACTORS = ("D", "omega")
DTYPES = ("float64", "float32")


@dataclass(frozen=True, eq=False)
class Model:
    """A generalized linear mixed model (DESIGN.md section 1), every choice made:

        y_ij | b ~ family with mean h(x_ij' beta + sum_k z_kij' b_k[ij] + offset_ij)
        b_k,l ~ N_qk(mu_k, D_k) for each level l of term k,   Omega_k = D_k^{-1}

    Attributes:
        spec: sizes, family, resolved priors and parametrisation of every term (static; it
            keys the compile cache).
        arrays: the validated data (`jaxglmm.design.ArrayData`), every term alike.
        dtype: "float64" or "float32", the precision of the computations.
        factor: "D" or "omega", the Cholesky factor the sampler moves (every term).
        centred_auto: whether the parametrisation was chosen by the data (centred=None).
        init_loc, init_scale: centre and half-width of the box that initial positions are
            drawn from, per position name (`jaxglmm.parameters.init_box`).
        formula, data, na_action, design: for a model built from a formula, the formula,
            the rows of the user's frame it uses, the missing-value rule and the parsed
            design (`jaxglmm.formula.FormulaDesign`; predictions need it); else None.
    """

    spec: ModelSpec
    arrays: ArrayData
    dtype: str
    factor: str
    centred_auto: bool
    init_loc: dict = field(repr=False)
    init_scale: dict = field(repr=False)
    formula: str | None = None
    data: Any = field(default=None, repr=False)
    na_action: str = "raise"
    design: FormulaDesign | None = field(default=None, repr=False)

    @property
    def priors(self) -> Priors:
        """The priors used, user values and defaults filled in; with several random-effect
        terms mu and omega are dicts by grouping factor."""
        first = self.spec.priors.spec
        if len(self.spec.terms) == 1:
            return first
        names = [t.name for t in self.arrays.terms]
        per_term = {block: {n: getattr(ts.priors.spec, block)
                            for n, ts in zip(names, self.spec.terms)}
                    for block in ("mu", "omega")}
        defaults = tuple(b for b in ("beta", "tau") if b in first.defaults) + tuple(
            b for b in ("mu", "omega")
            if all(b in ts.priors.spec.defaults for ts in self.spec.terms))
        return Priors(beta=first.beta, tau=first.tau, defaults=defaults, **per_term)

    @property
    def can_collapse(self) -> bool:
        """Whether b can be integrated out exactly (gaussian family, identity link): all of
        it with one random-effect term, one term's with several."""
        return self.spec.family.collapsible

    def model_data(self) -> ModelData:
        """The arrays on the device, in the precision JAX is set to now."""
        a = self.arrays
        f = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        y, trials = jnp.asarray(a.y, f), jnp.asarray(a.trials, f)
        terms = tuple((jnp.asarray(t.Z, f), jnp.asarray(t.cluster)) for t in a.terms)
        # no weights array when every weight is 1: the unweighted program, exactly
        w = None if np.all(a.weights == 1.0) else jnp.asarray(a.weights, f)
        return ModelData(y=y, X=jnp.asarray(a.X, f), trials=trials,
                         offset=jnp.asarray(a.offset, f), weights=w,
                         log_base=jnp.sum(weighted(self.spec.family.log_base(y, trials), w)),
                         terms=terms)

    @property
    def logdensity_fn(self):
        """The joint log posterior as a pure function of the unconstrained pytree (dict).

        It computes in the precision JAX is set to when it is called: turn on
        `jax.config.update("jax_enable_x64", True)` (or use `with jax.enable_x64(True):`)
        for float64. `sample` does this by itself for a float64 model. Under `jax.jit` the
        data it closes over become constants of the compiled program; to pass them as an
        argument instead (one compiled program for data sets of one shape), use
        `GLMM.problem(...)`: `problem.make_logdensity(problem.data)`.
        """
        spec = self.spec

        def logdensity(position):
            return log_posterior(position, self.model_data(), spec)
        return logdensity

    def position_names(self) -> dict:
        """Element names of the population blocks: "beta" -> x names, "mu..." -> the free
        columns' z names."""
        names = {"beta": tuple(self.arrays.x_names)}
        for t, ts in zip(self.arrays.terms, self.spec.terms):
            names[ts.name("mu")] = tuple(t.z_names[j] for j in ts.mu_free)
        return names

    def describe_priors(self) -> str:
        """The priors used, one line per block or coefficient, defaults marked."""
        a, spec = self.arrays, self.spec
        lines = describe_priors(spec.priors, a.x_names, (), blocks=("beta", "tau"))
        lines += spec.family.describe_parameters()
        for t, ts in zip(a.terms, spec.terms):
            mu_names = tuple(t.z_names[j] for j in ts.mu_free)
            lines += describe_priors(ts.priors, (), t.z_names, mu_names, ts.key,
                                     blocks=("mu", "omega"))
        return "\n".join(lines)

    def describe(self) -> str:
        """The model's hierarchy in the notation of DESIGN.md section 1, with its priors."""
        return describe(self)

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        s = self.spec
        head = f"{self.formula!r}, " if self.formula is not None else ""
        sizes = "".join(f", {t.key[1:] or 'N'}={t.N}" for t in s.terms)
        return (f"Model({head}family={s.family.name!r}, link={s.family.link!r}, "
                f"n_obs={self.arrays.y.shape[0]}, p={s.p}{sizes})")


def _pick(prior, columns: tuple):
    """A Normal prior restricted to `columns` (the random columns with a mean parameter)."""
    if isinstance(prior, Normal):
        def pick(v):
            v = np.asarray(v, float)
            return tuple((v[list(columns)] if v.ndim else np.full(len(columns), v)).tolist())
        return Normal(pick(prior.loc), pick(prior.scale))
    return prior


def build_model(arrays: ArrayData, family: Family, priors: Priors | None = None,
                centred: bool | str | None = None, factor: str = "D", dtype: str = "float64",
                *, formula: str | None = None, design: FormulaDesign | None = None,
                na_action: str = "raise") -> Model:
    """The Model of validated `arrays`: the priors resolved per term (defaults scaled to the
    data), each term's parametrisation chosen (`centred` None: by the data, see
    `jaxglmm.design.choose_centred`), and the initial box. Arguments as in
    `GLMM.from_arrays`; `formula`, `design` and `na_action` are carried for a formula model.

    Raises:
        ValueError: an unknown factor or dtype, a bad centred or priors argument.
    Warns:
        UserWarning: a flat (improper) prior on beta or mu.
    """
    if factor not in FACTORS:
        raise ValueError(f"factor={factor!r} is unknown; choose one of "
                         f"{', '.join(map(repr, FACTORS))}.")
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is unknown; choose 'float64' or 'float32'.")
    is_laplace = isinstance(centred, str) and centred == "laplace"
    p = arrays.X.shape[1]
    terms = arrays.terms
    names = tuple(t.name for t in terms)
    if isinstance(centred, dict):
        if set(centred) != set(names) or not all(isinstance(v, (bool, np.bool_))
                                                 for v in centred.values()):
            raise ValueError(f"centred: a dict needs True or False for each grouping factor "
                             f"{', '.join(map(repr, names))}; got {centred!r}.")
    elif centred is not None and not is_laplace and not isinstance(centred, (bool, np.bool_)):
        raise ValueError(f"centred: must be True, False, 'laplace', a dict of them by "
                         f"grouping factor, or None (chosen by the data), got {centred!r}.")
    if priors is not None and not isinstance(priors, Priors):
        raise ValueError(f"priors: must be a jaxglmm.Priors, got {type(priors).__name__}.")
    priors = priors if priors is not None else Priors()
    # beta and tau (global) come out the same for every term: the intercepts' width sees
    # every design
    widen = intercept_width(arrays.y, family, [arrays.X] + [t.Z for t in terms])
    term_specs, defaults_k = [], []
    for k, t in enumerate(terms):
        q = t.Z.shape[1]
        defaults = default_priors(arrays.y, arrays.X, t.Z, family, arrays.trials, widen)
        defaults = replace(defaults, mu=_pick(defaults.mu, t.mu_free))
        resolved = resolve_priors(priors.for_term(t.name, names), defaults, p, q,
                                  family.has_dispersion, q_mu=len(t.mu_free))
        if is_laplace:
            c = False
        elif isinstance(centred, dict):
            c = bool(centred[t.name])
        else:
            c = choose_centred(arrays, family, k) if centred is None else bool(centred)
        key = "" if len(terms) == 1 else f"|{t.name}"
        term_specs.append(TermSpec(key=key, q=q, N=len(t.groups), mu_free=t.mu_free,
                                   centred=c, priors=resolved,
                                   # an LKJ prior is stated for D's factor diag(sd) L_R
                                   factor=factor if resolved.lkj is None else "D",
                                   laplace=is_laplace))
        defaults_k.append(defaults)
    # the global blocks (beta, tau, d) are the same in every term's resolution
    spec = ModelSpec(family=family, priors=term_specs[0].priors, p=p, terms=tuple(term_specs))
    init_loc, init_scale = init_box(arrays, spec, defaults_k)
    flat = []
    if p and isinstance(spec.priors.spec.beta, Flat):
        flat.append("beta")
    if any(isinstance(ts.priors.spec.mu, Flat) and ts.mu_free for ts in term_specs):
        flat.append("mu")
    if flat:
        warnings.warn(f"priors.{' and '.join(flat)}: flat (improper) prior; the posterior "
                      "is proper only if the data identify these coefficients.",
                      UserWarning, stacklevel=4)
    return Model(spec=spec, arrays=arrays, dtype=dtype, factor=factor,
                 centred_auto=centred is None, init_loc=init_loc, init_scale=init_scale,
                 formula=formula, data=None if design is None else design.data,
                 na_action=na_action, design=design)


def centred_option(model: Model):
    """The `centred` argument that rebuilds the model's parametrisation: "laplace", a bool
    when every term has the same, else a dict by grouping factor."""
    if any(t.laplace for t in model.spec.terms):
        return "laplace"
    kinds = [bool(t.centred) for t in model.spec.terms]
    return kinds[0] if len(set(kinds)) == 1 else {
        t.name: c for t, c in zip(model.arrays.terms, kinds)}


def describe(model: Model) -> str:
    """The model's hierarchy in the notation of DESIGN.md section 1, with its priors."""
    a, spec = model.arrays, model.spec
    fam = spec.family
    dist = fam.distribution_text(MEAN_TEXT[fam.link])
    multi = len(spec.terms) > 1
    lines = [f"GLMM: {fam.name} family, {fam.link} link"]
    if model.formula is not None:
        lines.append(f"  formula: {model.formula}")
    lines.append(f"  data: {a.y.shape[0]} observations")
    if np.any(a.weights != 1.0):
        lines.append(f"  weights: w_ij in [{a.weights.min():.4g}, {a.weights.max():.4g}], sum "
                     f"{a.weights.sum():.6g} (each log likelihood term multiplied by w_ij)")
    has_offset = bool(np.any(a.offset != 0))
    parts = (["offset_ij"] if has_offset else []) + (["x_ij' beta"] if spec.p else [])
    for ts in spec.terms:
        parts.append(f"z{ts.key}_ij' b{ts.key}[ij]" if multi else "z_ij' b_i")
    lines.append(f"  y_ij | b ~ {dist},  eta_ij = {' + '.join(parts)}")
    if multi:
        lines.append("    (b|g[ij]: the coefficients of the level of g that row ij has)")
    if has_offset:
        offsets = model.design.offsets if model.design is not None else ()
        known = " + ".join(f"offset({e})" for e in offsets) or "given"
        lines.append(f"    offset = {known} (known, no coefficient)")
    if spec.p:
        lines.append(f"    x = ({', '.join(a.x_names)})")
    for t, ts in zip(a.terms, spec.terms):
        b, mu, D = (f"{n}{ts.key}" for n in ("b", "mu", "D"))
        mean = "0" if not ts.mu_free else mu
        if ts.mu_free and len(ts.mu_free) < ts.q:
            free = ", ".join(t.z_names[j] for j in ts.mu_free)
            mean += f" (free for {free}; 0 for the other columns)"
        where = (f"one per level of {t.name} ({ts.N} levels)")
        lines.append(f"    z{ts.key} = ({', '.join(t.z_names)})")
        lines.append(f"  {b}{'_l' if multi else '_i'} ~ N_{ts.q}({mean}, {D}), {where}; "
                     f"Omega{ts.key} = {D}^-1")
    psi = (["beta"] if spec.p else []) + [f"mu{ts.key}" for ts in spec.terms if ts.mu_free]
    if fam.has_dispersion:
        psi.append("tau")
    psi += [p.name for p in fam.sampled_parameters]
    psi += [f"Omega{ts.key}" for ts in spec.terms]
    lines.append(f"  psi = ({', '.join(psi)})")
    lines.append("Priors:")
    lines += ["  " + line for line in model.describe_priors().splitlines()]
    return "\n".join(lines)
