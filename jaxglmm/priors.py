"""Prior specifications (DESIGN.md section 2), their defaults, and their log densities.

    beta, mu : Flat()  or  Normal(loc, scale)      (independent elements, diagonal Sigma_0)
    tau      : Gamma(c, d), d a number or d ~ Gamma(g, h)          (families with a dispersion)
    Omega    : Wishart(nu, S), S^{-1} = diag(gamma), gamma a number, a vector, or
               gamma_j ~ Gamma(g_j, h_j) independently

Specs are frozen dataclasses holding plain floats and tuples, so they are hashable and can be
static arguments of jitted code. ``resolve_priors`` broadcasts a user's (possibly partial) spec
to the model's sizes, fills the defaults scaled to the data, and checks every value. The log
densities are in `jaxglmm.log_densities`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Union

import numpy as np

Number = Union[float, int]


def _as_param(value, name: str):
    """A float or a tuple of floats from a number or a 1-d array-like; checks finiteness."""
    if isinstance(value, (Gamma,)):
        return value
    arr = np.asarray(value, dtype=float)
    if arr.ndim > 1:
        raise ValueError(f"{name}: must be a number or a vector, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be finite, got {value!r}.")
    return float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr)


def _check_positive(value, name: str):
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if np.any(arr <= 0):
        raise ValueError(f"{name}: must be > 0, got {value!r}.")


@dataclass(frozen=True)
class Flat:
    """Improper flat prior p(x) ∝ 1 (allowed for beta and mu; the fit warns about it)."""


@dataclass(frozen=True)
class Normal:
    """Independent normal prior N(loc, scale^2) per element; loc, scale numbers or vectors."""

    loc: Number | tuple = 0.0
    scale: Number | tuple = 1.0

    def __post_init__(self):
        object.__setattr__(self, "loc", _as_param(self.loc, "Normal.loc"))
        object.__setattr__(self, "scale", _as_param(self.scale, "Normal.scale"))
        _check_positive(self.scale, "Normal.scale")


@dataclass(frozen=True)
class Gamma:
    """Gamma(shape, rate) prior, mean shape/rate. For tau the rate may itself be a Gamma
    (the random hyperparameter d of the seed)."""

    shape: Number | tuple = 1.0
    rate: Number | tuple | "Gamma" = 1.0

    def __post_init__(self):
        object.__setattr__(self, "shape", _as_param(self.shape, "Gamma.shape"))
        _check_positive(self.shape, "Gamma.shape")
        if isinstance(self.rate, Gamma):
            if isinstance(self.rate.rate, Gamma):
                raise ValueError("Gamma.rate: a random rate must have a fixed rate itself.")
        else:
            object.__setattr__(self, "rate", _as_param(self.rate, "Gamma.rate"))
            _check_positive(self.rate, "Gamma.rate")

    @property
    def has_random_rate(self) -> bool:
        return isinstance(self.rate, Gamma)


@dataclass(frozen=True)
class Beta:
    """Beta(a, b) prior on (0, 1), mean a / (a + b): the zero-inflation probability's."""

    a: Number = 1.0
    b: Number = 1.0

    def __post_init__(self):
        for name in ("a", "b"):
            value = _as_param(getattr(self, name), f"Beta.{name}")
            if isinstance(value, tuple):
                raise ValueError(f"Beta.{name}: must be a number.")
            _check_positive(value, f"Beta.{name}")
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class Wishart:
    """Omega = D^{-1} ~ Wishart_q(df, S) with S^{-1} = diag(scale_inv_diag); E Omega = df * S.

    scale_inv_diag (the seed's gamma_j) is a number, a vector of q numbers, or a Gamma(g, h)
    (numbers or vectors) making every gamma_j a random hyperparameter.
    """

    df: Number = 1.0
    scale_inv_diag: Number | tuple | Gamma = 1.0

    def __post_init__(self):
        df = _as_param(self.df, "Wishart.df")
        if isinstance(df, tuple):
            raise ValueError("Wishart.df: must be a number.")
        object.__setattr__(self, "df", df)
        _check_positive(df, "Wishart.df")
        if isinstance(self.scale_inv_diag, Gamma):
            if self.scale_inv_diag.has_random_rate:
                raise ValueError("Wishart.scale_inv_diag: a Gamma here must have a fixed rate.")
        else:
            object.__setattr__(
                self, "scale_inv_diag",
                _as_param(self.scale_inv_diag, "Wishart.scale_inv_diag"))
            _check_positive(self.scale_inv_diag, "Wishart.scale_inv_diag")

    @property
    def has_random_gamma(self) -> bool:
        return isinstance(self.scale_inv_diag, Gamma)


def _scale_param(value, name: str):
    if value is None:
        return None
    value = _as_param(value, name)
    _check_positive(value, name)
    return value


@dataclass(frozen=True)
class HalfNormal:
    """|N(0, scale^2)|: a prior on a standard deviation; scale a number, a vector (one per
    random-effect column) or None (the data-scaled default, README "Priors")."""

    scale: Number | tuple | None = None

    def __post_init__(self):
        object.__setattr__(self, "scale", _scale_param(self.scale, "HalfNormal.scale"))


@dataclass(frozen=True)
class HalfStudentT:
    """|t_df(0, scale)|: a prior on a standard deviation (brms' default student_t(3, 0, s) on
    sd); scale as for HalfNormal."""

    df: Number = 3.0
    scale: Number | tuple | None = None

    def __post_init__(self):
        df = _as_param(self.df, "HalfStudentT.df")
        if isinstance(df, tuple):
            raise ValueError("HalfStudentT.df: must be a number.")
        _check_positive(df, "HalfStudentT.df")
        object.__setattr__(self, "df", df)
        object.__setattr__(self, "scale", _scale_param(self.scale, "HalfStudentT.scale"))


@dataclass(frozen=True)
class LKJ:
    """D = diag(sd) R diag(sd) with the correlation matrix R ~ LKJ(eta) (density proportional
    to det(R)^(eta - 1); eta = 1 uniform over correlation matrices, larger eta pulls R
    towards the identity) and independent sd_j ~ `scale` (HalfStudentT or HalfNormal; its
    scale None: 2.5 s_j, README "Priors"). The alternative to the seed's Wishart on Omega that
    brms and rstanarm use; sampled through sd and the Cholesky factor of R."""

    eta: Number = 1.0
    scale: HalfStudentT | HalfNormal = HalfStudentT(3.0)

    def __post_init__(self):
        eta = _as_param(self.eta, "LKJ.eta")
        if isinstance(eta, tuple):
            raise ValueError("LKJ.eta: must be a number.")
        _check_positive(eta, "LKJ.eta")
        object.__setattr__(self, "eta", eta)
        if not isinstance(self.scale, (HalfStudentT, HalfNormal)):
            raise ValueError(f"LKJ.scale: must be a jaxglmm.HalfStudentT or HalfNormal, got "
                             f"{self.scale!r}.")


@dataclass(frozen=True)
class Priors:
    """The prior p(psi | hyper) = p(beta) p(mu) p(tau) p(Omega); None means the default."""

    beta: Flat | Normal | None = None
    mu: Flat | Normal | None = None
    tau: Gamma | None = None
    omega: Wishart | None = None
    defaults: tuple = field(default=(), compare=False)  # names filled by the defaults

    def __post_init__(self):
        for name, kinds in (("beta", (Flat, Normal)), ("mu", (Flat, Normal)),
                            ("tau", (Gamma,)), ("omega", (Wishart, LKJ))):
            value = getattr(self, name)
            if isinstance(value, dict) and name in PER_TERM:
                # one prior per random-effect term, keyed by its grouping factor; kept as
                # sorted pairs so that the spec stays hashable
                value = tuple(sorted(value.items()))
                object.__setattr__(self, name, value)
            items = value if isinstance(value, tuple) and name in PER_TERM else (("", value),)
            for term, v in items:
                if v is not None and not isinstance(v, kinds):
                    allowed = " or ".join(k.__name__ for k in kinds)
                    where = f"[{term!r}]" if term else ""
                    raise ValueError(f"priors.{name}{where}: must be {allowed}"
                                     f"{' (or a dict of them per grouping factor)' if name in PER_TERM else ''}"
                                     f", got {v!r}.")

    def for_term(self, name: str, names: tuple) -> "Priors":
        """The priors of the random-effect term of grouping factor `name`: mu and omega
        picked from per-term dicts (None where a dict leaves the term out).

        Raises:
            ValueError: a per-term dict names a grouping factor that is not in `names`.
        """
        picked = {}
        for block in PER_TERM:
            value = getattr(self, block)
            if isinstance(value, tuple):
                unknown = [k for k, _ in value if k not in names]
                if unknown:
                    raise ValueError(f"priors.{block}: {unknown[0]!r} is not a grouping factor "
                                     f"of the model; they are {', '.join(map(repr, names))}.")
                value = dict(value).get(name)
            picked[block] = value
        return replace(self, **picked)


PER_TERM = ("mu", "omega")  # prior blocks that may differ between random-effect terms


# ----------------------------------------------------------------------------- defaults


def _broadcast(value, n: int, name: str) -> tuple:
    arr = np.broadcast_to(np.asarray(value, dtype=float), (n,)) if np.ndim(value) == 0 \
        else np.asarray(value, dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"{name}: has {arr.size} values, the model needs {n}.")
    return tuple(float(v) for v in arr)


def _column_scales(M: np.ndarray, s: float, center: float, widen: float) -> tuple[list, list]:
    """Prior loc and scale for each column: slopes N(0, 2.5 s / sd(x)); constant columns
    (intercepts) N(center / c, widen / |c|)."""
    locs, scales = [], []
    for col in M.T:
        sd = float(np.std(col))
        if sd > 1e-12 * max(1.0, float(np.max(np.abs(col)))):
            locs.append(0.0)
            scales.append(2.5 * s / sd)
        else:
            c = float(col[0]) if col.size else 1.0
            c = c if c != 0 else 1.0
            locs.append(center / c)
            scales.append(widen / abs(c))
    return locs, scales


def intercept_width(y, family, designs) -> float:
    """w = 5 s + sum over the slope (non-constant) columns of every design in `designs` of
    2.5 s |mean(x)| / sd(x): the default scale of an intercept, which is the mean at x = 0,
    so that uncentred predictors anywhere in the model (X or any random-effect term's Z)
    cannot push it outside its prior (s as in `default_priors`)."""
    s, _ = family.data_scale(np.asarray(y, dtype=float))
    shift = 0.0
    for M in designs:
        for col in np.asarray(M, float).T:
            sd = float(np.std(col))
            if sd > 1e-12 * max(1.0, float(np.max(np.abs(col)))):
                shift += 2.5 * s * abs(float(np.mean(col))) / sd
    return 5.0 * s + shift


def default_priors(y, X, Z, family, trials=None, widen: float | None = None) -> Priors:
    """Proper, weakly informative priors scaled to the data (documented in README "Priors").

    With s = sd(y) and m = mean(y) for the gaussian identity link (s = 1, m = 0 on other links):
      - slopes (non-constant columns of X or Z): N(0, (2.5 s / sd(x))^2);
      - intercepts (constant columns): N(m, w^2), w = `intercept_width` of the model's
        designs (`widen`; None: of X and Z), so that uncentred predictors cannot push the
        intercept, which is the mean at x = 0, outside its prior;
      - tau = 1/sigma^2 ~ Gamma(1, 0.005 var(y)): the seed's Gamma(1, 0.005) on standardised y;
      - Omega ~ Wishart(q, S), S^{-1} = diag(gamma_j), gamma_j = 0.1 s_j^2, with s_j the scale
        of column j (s for the constant column, s / sd(z_j) otherwise). For q = 1 this makes
        sd(b) = sqrt(gamma) / |N(0, 1)| a priori: 90% between 0.16 s_j and 5 s_j.
    beta and tau depend on y, X and `widen` only: every term of a model gets the same ones.
    """
    y = np.asarray(y, dtype=float)
    s, m = family.data_scale(y)
    widen = intercept_width(y, family, (X, Z)) if widen is None else float(widen)
    bl, bs = _column_scales(X, s, m, widen)
    ml, ms = _column_scales(Z, s, m, widen)
    s_j = [s if np.std(Z[:, j]) == 0 else s / float(np.std(Z[:, j])) for j in range(Z.shape[1])]
    q = Z.shape[1]
    return Priors(
        beta=Normal(bl, bs) if X.shape[1] else Flat(),
        mu=Normal(ml, ms),
        tau=Gamma(*family.tau_prior(y)) if family.has_dispersion else None,
        omega=Wishart(float(q), tuple(DEFAULT_GAMMA_FACTOR * v**2 for v in s_j)),
    )


DEFAULT_GAMMA_FACTOR = 0.1  # the default Wishart's gamma_j = 0.1 s_j^2


@dataclass(frozen=True)
class ResolvedPriors:
    """Priors broadcast to the model's sizes; every field concrete (hashable, static in jit).

    beta, mu: None (flat) or (loc, scale) tuples of length p / q.
    tau: None (no dispersion) or (c, d) with d a float or a (g, h) pair (random d).
    omega_df: float; gamma: tuple of q floats, or ((g_1..g_q), (h_1..h_q)) when random.
    lkj: None (Wishart on Omega), or (eta, df, scales) for D = diag(sd) R diag(sd), R ~
        LKJ(eta), sd_j ~ half-t_df(0, scales_j) (df None: half-normal); omega_df and gamma
        are then unused.
    """

    beta: tuple | None
    mu: tuple | None
    tau: tuple | None
    omega_df: float
    gamma: tuple
    random_d: bool
    random_gamma: bool
    spec: Priors  # the full spec as used (user values and filled defaults)
    lkj: tuple | None = None


def resolve_priors(priors: Priors | None, defaults: Priors, p: int, q: int,
                   has_dispersion: bool, q_mu: int | None = None) -> ResolvedPriors:
    """Fill the user's spec with the defaults, broadcast it to (p, q), and check it.
    `q_mu` (default q) is the number of random-effect columns with a mean parameter.

    Raises:
        ValueError: wrong lengths, a tau prior for a family without dispersion, or
            Wishart df <= q - 1.
    """
    priors = priors if priors is not None else Priors()
    if not isinstance(priors, Priors):
        raise ValueError(f"priors: must be a jaxglmm.Priors, got {type(priors).__name__}.")
    filled = {}
    used_defaults = []
    for name in ("beta", "mu", "tau", "omega"):
        value = getattr(priors, name)
        if value is None:
            value = getattr(defaults, name)
            used_defaults.append(name)
        filled[name] = value
    if priors.tau is not None and not has_dispersion:
        raise ValueError("priors.tau: this family has no dispersion parameter tau; leave it None.")
    spec = replace(Priors(**filled), defaults=tuple(used_defaults))

    def location_scale(prior, n, name):
        if isinstance(prior, Flat) or n == 0:
            return None
        return (_broadcast(prior.loc, n, f"priors.{name}.loc"),
                _broadcast(prior.scale, n, f"priors.{name}.scale"))

    tau = None
    random_d = False
    if has_dispersion:
        t = spec.tau
        if isinstance(t.shape, tuple) or (not t.has_random_rate and isinstance(t.rate, tuple)):
            raise ValueError("priors.tau: shape and rate must be numbers.")
        if t.has_random_rate:
            random_d = True
            g, h = t.rate.shape, t.rate.rate
            if isinstance(g, tuple) or isinstance(h, tuple):
                raise ValueError("priors.tau.rate: the Gamma(g, h) of d takes numbers.")
            tau = (t.shape, (g, h))
        else:
            tau = (t.shape, t.rate)

    om = spec.omega
    if isinstance(om, LKJ):
        scale = om.scale.scale
        if scale is None:  # 2.5 s_j, s_j the column scale the default Wishart's gamma_j holds
            scale = tuple(2.5 * np.sqrt(np.asarray(defaults.omega.scale_inv_diag, float)
                                        / DEFAULT_GAMMA_FACTOR) * np.ones(q))
        df = om.scale.df if isinstance(om.scale, HalfStudentT) else None
        lkj = (om.eta, df, _broadcast(scale, q, "priors.omega.scale.scale"))
        return ResolvedPriors(
            beta=location_scale(spec.beta, p, "beta"),
            mu=location_scale(spec.mu, q if q_mu is None else q_mu, "mu"),
            tau=tau, omega_df=float("nan"), gamma=(), random_d=random_d, random_gamma=False,
            spec=spec, lkj=lkj)
    if om.df <= q - 1:
        raise ValueError(f"priors.omega: Wishart df must exceed q - 1 = {q - 1}; got {om.df}.")
    if om.has_random_gamma:
        gamma = (_broadcast(om.scale_inv_diag.shape, q, "priors.omega.scale_inv_diag.shape"),
                 _broadcast(om.scale_inv_diag.rate, q, "priors.omega.scale_inv_diag.rate"))
    else:
        gamma = _broadcast(om.scale_inv_diag, q, "priors.omega.scale_inv_diag")
    return ResolvedPriors(
        beta=location_scale(spec.beta, p, "beta"),
        mu=location_scale(spec.mu, q if q_mu is None else q_mu, "mu"),
        tau=tau, omega_df=om.df, gamma=gamma,
        random_d=random_d, random_gamma=om.has_random_gamma, spec=spec,
    )


def _fmt(v) -> str:
    return f"{v:.4g}"


def describe_priors(priors: ResolvedPriors, x_names, z_names, mu_names=None, key: str = "",
                    blocks=("beta", "mu", "tau", "omega")) -> list[str]:
    """One readable line per prior, e.g. "mu[Days] ~ Normal(0, 49.03)", with (default) where
    the value was filled in from the data and "random" hyperparameters spelled out.

    mu_names: the random-effect columns with a mean parameter (default: all of z_names);
    key: the term's name suffix ("|g") for models with several terms; blocks: which of
    beta, mu, tau, omega to describe.
    """
    mu_names = z_names if mu_names is None else mu_names
    tag = {name: " (default)" if name in priors.spec.defaults else ""
           for name in ("beta", "mu", "tau", "omega")}
    lines = []
    for block, names, values in (("beta", x_names, priors.beta), ("mu", mu_names, priors.mu)):
        if not names or block not in blocks:
            continue
        label = block + (key if block == "mu" else "")
        if values is None:
            lines.append(f"{label} ~ Flat() (improper){tag[block]}")
            continue
        for name, loc, scale in zip(names, *values):
            lines.append(f"{label}[{name}] ~ Normal({_fmt(loc)}, {_fmt(scale)}){tag[block]}")
    if priors.tau is not None and "tau" in blocks:
        c, d = priors.tau
        if priors.random_d:
            lines.append(f"tau ~ Gamma({_fmt(c)}, d){tag['tau']},  d ~ Gamma({_fmt(d[0])}, "
                         f"{_fmt(d[1])}) (random)")
        else:
            lines.append(f"tau ~ Gamma({_fmt(c)}, {_fmt(d)}){tag['tau']}")
    if "omega" not in blocks:
        return lines
    omega = f"Omega{key}"
    if priors.lkj is not None:
        eta, df, scales = priors.lkj
        half = "HalfNormal(" if df is None else f"HalfStudentT({_fmt(df)}, "
        sds = ", ".join(f"sd{key}[{n}] ~ {half}{_fmt(v)})" for n, v in zip(z_names, scales))
        lines.append(f"D{key} = diag(sd) R diag(sd), R ~ LKJ({_fmt(eta)}){tag['omega']},  "
                     f"{sds}")
        return lines
    if priors.random_gamma:
        g, h = priors.gamma
        hyper = ", ".join(f"gamma{key}[{n}] ~ Gamma({_fmt(a)}, {_fmt(b)})"
                          for n, a, b in zip(z_names, g, h))
        lines.append(f"{omega} ~ Wishart({_fmt(priors.omega_df)}, S), S^-1 = diag(gamma)"
                     f"{tag['omega']},  {hyper} (random)")
    else:
        gamma = ", ".join(_fmt(v) for v in priors.gamma)
        lines.append(f"{omega} ~ Wishart({_fmt(priors.omega_df)}, S), S^-1 = diag({gamma})"
                     f"{tag['omega']}")
    return lines
