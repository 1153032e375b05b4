"""The response-family interface (`Family`), the family parameters beyond tau
(`FamilyParameter`: Student's nu, the zero-inflation probability), and pieces several families
share (support checks, count draws).

A family is a small frozen dataclass that holds everything jaxglmm knows of it: the log density
of y given the linear predictor eta (and the precision tau = 1/phi where the family has a
dispersion, and its further parameters), the inverse link, the support check, whether y is
discrete, whether b can be integrated out exactly, the GLM working weight the centring rule
uses, the data scale the default priors use, for a family with a dispersion the default prior
of tau, where its initial values start and what is reported beside it (the gaussian's sigma),
and how the model text names it. Adding a family means writing one such object and
registering it in `jaxglmm.family_registry.FAMILIES`.

All densities are written in terms of eta, not of the mean, so that the numerically stable
forms (softplus, log_ndtr, exp of the log link) are used on the whole real line.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaincc

from .links import INVERSE_LINKS
from .log_densities import beta_logpdf, gamma_logpdf
from .priors import Beta, Gamma

Array = jax.Array


def first_bad_row(mask: np.ndarray) -> int:
    """Index of the first True of a boolean (n_obs,) mask."""
    return int(np.flatnonzero(mask)[0])


def check_counts(y: np.ndarray, name: str) -> None:
    """Raise ValueError naming the first row of y that is not a non-negative whole count."""
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        row = first_bad_row(bad)
        raise ValueError(f"y: family {name!r} needs non-negative whole counts; row {row} has "
                         f"{y[row].item()!r}.")


def poisson_draw(key: Array, rate: Array) -> Array:
    """Poisson draws as floats of rate's dtype, valid for any rate >= 0: jax.random.poisson
    returns 0 for rates past about 1e19 and garbage for inf or NaN (prior predictive draws
    under wide priors reach them). Above 1e15 the normal approximation, exact to float64
    resolution there; inf stays inf and NaN NaN."""
    k_small, k_big = jax.random.split(key)
    big = ~(rate <= 1e15)  # also inf and NaN
    small = jax.random.poisson(k_small, jnp.where(big, 0.0, rate)).astype(rate.dtype)
    finite = jnp.where(jnp.isfinite(rate), rate, 0.0)
    approx = jnp.round(finite + jnp.sqrt(finite) * jax.random.normal(k_big, rate.shape,
                                                                     rate.dtype))
    approx = jnp.where(jnp.isfinite(rate), approx, rate)
    return jnp.where(big, approx, small)


def _fmt(v) -> str:
    return f"{v:.4g}"


@dataclass(frozen=True)
class FamilyParameter:
    """A family's parameter besides tau, e.g. Student's degrees of freedom nu or the
    zero-inflation probability zi.

    The sampler moves it on an unconstrained scale: x = log(value - lower) when `upper` is
    None, else x = logit((value - lower) / (upper - lower)); the position key is "log_<name>"
    or "logit_<name>".

    Attributes:
        name: the draw's name ("nu", "zi").
        prior: a `jaxglmm.Gamma` (numbers; truncated to value > lower), a `jaxglmm.Beta`
            (on (lower, upper)), or a number: the parameter is then fixed, not sampled.
        lower, upper: the support (lower, upper), upper None for (lower, inf).
    """

    name: str
    prior: Gamma | Beta | float
    lower: float = 0.0
    upper: float | None = None

    @property
    def fixed(self) -> bool:
        return not isinstance(self.prior, (Gamma, Beta))

    @property
    def position_name(self) -> str:
        return ("log_" if self.upper is None else "logit_") + self.name

    def natural(self, x: Array) -> tuple[Array, Array]:
        """(value, log|d value / dx|) from the unconstrained x (())."""
        if self.upper is None:
            return self.lower + jnp.exp(x), x
        width = self.upper - self.lower
        log_jac = np.log(width) - jax.nn.softplus(-x) - jax.nn.softplus(x)
        return self.lower + width * jax.nn.sigmoid(x), log_jac

    def unconstrained(self, value: Array) -> Array:
        """The x of `natural` for a value inside the support (numpy in, numpy out; a JAX
        array in, a JAX array out)."""
        xp = jnp if isinstance(value, jax.Array) else np
        if self.upper is None:
            return xp.log(value - self.lower)
        u = (value - self.lower) / (self.upper - self.lower)
        return xp.log(u) - xp.log1p(-u)

    def hyperparameters(self) -> dict:
        """The prior's numbers by name: {"shape", "rate"} of a Gamma, {"a", "b"} of a Beta;
        {} when the parameter is fixed."""
        pri = self.prior
        if isinstance(pri, Gamma):
            return {"shape": float(pri.shape), "rate": float(pri.rate)}
        if isinstance(pri, Beta):
            return {"a": float(pri.a), "b": float(pri.b)}
        return {}

    def log_prior(self, value: Array, hyper: dict | None = None) -> Array:
        """log p(value), normalised on the support (a Gamma truncated to value > lower is
        divided by P(value > lower)), (); `hyper` replaces the prior's numbers (the keys of
        `hyperparameters`, e.g. for derivatives with respect to them)."""
        h = self.hyperparameters() if hyper is None else hyper
        if isinstance(self.prior, Gamma):
            out = gamma_logpdf(value, h["shape"], h["rate"])
            if self.lower > 0:
                out = out - jnp.log(gammaincc(h["shape"], h["rate"] * self.lower))
            return out
        width = self.upper - self.lower
        return beta_logpdf((value - self.lower) / width, h["a"], h["b"]) - np.log(width)

    def draw(self, key: Array, dtype) -> Array:
        """One draw from the prior, () of dtype: a truncated Gamma by rejection (exact; the
        loop ends after 1 / P(value > lower) tries on average, 1.005 for Gamma(2, 0.1) > 1)."""
        pri = self.prior
        if isinstance(pri, Beta):
            u = jax.random.beta(key, jnp.asarray(pri.a, dtype), jnp.asarray(pri.b, dtype),
                                (), dtype)
            return self.lower + (self.upper - self.lower) * u

        def propose(k):
            return jax.random.gamma(k, jnp.asarray(pri.shape, dtype), (), dtype) / pri.rate

        def step(state):
            k, _ = state
            k, sub = jax.random.split(k)
            return k, propose(sub)

        k0, sub = jax.random.split(key)
        _, value = jax.lax.while_loop(lambda s: s[1] <= self.lower, step, (k0, propose(sub)))
        return value

    def text(self, default: bool) -> str:
        """One line of the prior's description, e.g. "nu ~ Gamma(2, 0.1), nu > 1 (default)"."""
        tag = " (default)" if default else ""
        pri = self.prior
        if self.fixed:
            return f"{self.name} = {_fmt(pri)} (fixed){tag}"
        if isinstance(pri, Gamma):
            bound = f", {self.name} > {_fmt(self.lower)}" if self.lower > 0 else ""
            return f"{self.name} ~ Gamma({_fmt(pri.shape)}, {_fmt(pri.rate)}){bound}{tag}"
        return f"{self.name} ~ Beta({_fmt(pri.a)}, {_fmt(pri.b)}){tag}"


def parameter_option(value, name: str, family: str, lower: float, upper: float | None,
                     kinds: tuple, closed_lower: bool = True):
    """A family's parameter option checked: a prior of one of `kinds` (numbers only), or a
    fixed number in the support ([lower, upper) with `closed_lower`, else (lower, upper)).

    Raises:
        ValueError: naming the option and the family.
    """
    if isinstance(value, kinds):
        if isinstance(value, Gamma) and (value.has_random_rate or isinstance(value.shape, tuple)
                                         or isinstance(value.rate, tuple)):
            raise ValueError(f"{name}: the Gamma prior of family {family!r} takes numbers.")
        return value
    allowed = " or ".join(f"a jaxglmm.{k.__name__} prior" for k in kinds)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        v = float(value)
        inside = (v >= lower if closed_lower else v > lower) and (upper is None or v < upper)
        if np.isfinite(v) and inside:
            return v
    low = f"{'>=' if closed_lower else '>'} {_fmt(lower)}"
    high = f" and < {_fmt(upper)}" if upper is not None else ""
    raise ValueError(f"{name}: family {family!r} needs {allowed}, or a fixed number {low}"
                     f"{high}; got {value!r}.")


@dataclass(frozen=True)
class Family:
    """Interface of a response family (subclasses set the class variables).

    `extra` below is a mapping from the names of the family's `parameters` (nu, zi) to their
    natural-scale values (each () or broadcasting against eta); None for families without.

    Attributes:
        link: name of the link function g, with E(y | b) = g^{-1}(eta).
    """

    link: str = ""
    name: ClassVar[str] = ""
    links: ClassVar[tuple[str, ...]] = ()
    has_dispersion: ClassVar[bool] = False
    has_trials: ClassVar[bool] = False
    discrete: ClassVar[bool] = False  # y takes integer values (predictive draws are rounded)

    def __post_init__(self):
        if not self.link:
            object.__setattr__(self, "link", self.links[0])
        if self.link not in self.links:
            raise ValueError(
                f"link={self.link!r} is not allowed for family {self.name!r}; "
                f"choose one of {', '.join(map(repr, self.links))}."
            )

    def inverse_link(self, eta: Array) -> Array:
        """Mean of y given eta, (n_obs,) -> (n_obs,); for binomial the mean per trial."""
        return INVERSE_LINKS[self.link](eta)

    def mean(self, eta: Array, extra: Mapping | None = None) -> Array:
        """E(y | eta) (per trial for binomial), shaped as eta: the inverse link, except where
        a family parameter enters the mean (zero inflation: (1 - zi) exp(eta))."""
        return self.inverse_link(eta)

    def log_density(self, y: Array, eta: Array, tau: Array, trials: Array,
                    extra: Mapping | None = None) -> Array:
        """log p(y_ij | eta_ij, tau, extra), each (n_obs,) (tau ()), -> (n_obs,)."""
        return self.log_kernel(y, eta, tau, trials, extra) + self.log_base(y, trials)

    def log_kernel(self, y: Array, eta: Array, tau: Array, trials: Array,
                   extra: Mapping | None = None) -> Array:
        """The part of log_density that depends on eta, tau or extra, (n_obs,)."""
        raise NotImplementedError

    def log_base(self, y: Array, trials: Array) -> Array:
        """The data-only part of log_density (n_obs,): computed once per fit, not per step."""
        return jnp.zeros_like(y)

    def check_response(self, y: np.ndarray, trials: np.ndarray | None) -> None:
        """Raise ValueError naming the first row of y (or trials) outside the support."""

    def sample(self, key: Array, eta: Array, tau: Array, trials: Array,
               extra: Mapping | None = None) -> Array:
        """One draw of y per element of eta (posterior predictive)."""
        raise NotImplementedError

    def parameters(self) -> tuple[FamilyParameter, ...]:
        """The family's parameters besides tau (fixed or sampled), in a fixed order."""
        return ()

    @property
    def sampled_parameters(self) -> tuple[FamilyParameter, ...]:
        """The `parameters` that have a prior (the others are fixed numbers)."""
        return tuple(p for p in self.parameters() if not p.fixed)

    def options(self) -> dict:
        """The constructor's arguments besides the link ({"nu": Gamma(2, 0.1)}): what a saved
        fit keeps to rebuild the family."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "link"}

    def default_options(self) -> dict:
        """`options` at the constructor's defaults."""
        return {f.name: f.default for f in fields(self) if f.name != "link"}

    def describe_parameters(self) -> list[str]:
        """One line per family parameter's prior (or fixed value)."""
        defaults = self.default_options()
        return [p.text(defaults.get(p.name) == p.prior) for p in self.parameters()]

    def parameter_start(self, y: np.ndarray) -> dict[str, float]:
        """Natural-scale centre of the box each sampled parameter's initial value is drawn
        from (README "Initial values")."""
        return {}

    def extra_values(self, draws: Mapping, shape: tuple) -> dict[str, np.ndarray]:
        """The `extra` mapping for arrays of draws (shape e.g. (C, S)): a sampled parameter's
        draws, a fixed one's value broadcast to `shape`."""
        return {p.name: np.full(shape, p.prior) if p.fixed else np.asarray(draws[p.name])
                for p in self.parameters()}

    @property
    def collapsible(self) -> bool:
        """Whether b can be integrated out exactly (a gaussian likelihood linear in b)."""
        return False

    def data_scale(self, y: np.ndarray) -> tuple[float, float]:
        """(s, m): the scale and centre of y on the linear predictor's scale that the default
        priors are written in: sd(y) and mean(y) where eta is y's mean, else (1, 0)."""
        return 1.0, 0.0

    def tau_prior(self, y: np.ndarray) -> tuple[float, float]:
        """(c, d) of the default prior tau ~ Gamma(c, d) of a family with a dispersion,
        written from the data (README "Priors")."""
        raise NotImplementedError

    def log_tau_start(self, y: np.ndarray) -> float:
        """Centre of the box initial log tau is drawn from (README "Initial values")."""
        raise NotImplementedError

    def dispersion_draws(self, tau: Array) -> dict[str, Array]:
        """Natural-scale quantities reported beside tau, e.g. {"sigma": 1 / sqrt(tau)} for
        the gaussian; shapes as tau."""
        return {}

    def working_weight(self, y: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, float]:
        """(w (n_obs,), v): the GLM working weight of each observation at the pooled mean
        and a prior guess of var(b) on the link scale, for the centring rule
        (`design.information_ratio`)."""
        raise NotImplementedError

    def distribution_text(self, mean: str) -> str:
        """y_ij | b_i's distribution as the model's description writes it, given the text
        of its mean."""
        raise NotImplementedError
