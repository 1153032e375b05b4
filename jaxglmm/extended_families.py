"""Families with a parameter besides tau (`jaxglmm.family_base.FamilyParameter`): Student-t
(degrees of freedom nu) and the zero-inflated Poisson and negative binomial (the probability zi
of a structural zero). Each parameter has a prior, or is fixed by passing a number:
``Student(nu=4)``, ``ZeroInflatedPoisson(zi=jaxglmm.Beta(1, 9))``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from .families import Gaussian, NegBinomial, Poisson
from .family_base import FamilyParameter, parameter_option
from .priors import Beta, Gamma

Array = jax.Array

NU_START = 10.0  # centre of the box initial nu is drawn from


@dataclass(frozen=True)
class Student(Gaussian):
    """y = g^{-1}(eta) + e / sqrt(tau), e ~ Student-t with nu degrees of freedom (brms'
    student): sigma = 1/sqrt(tau) is the scale, var(y | b) = sigma^2 nu / (nu - 2) for nu > 2.
    nu ~ Gamma(2, 0.1) truncated to nu > 1 by default (brms' prior and bound); a number fixes
    nu (>= 1; nu = 1 is the Cauchy). Identity link by default; tau's prior as the gaussian's."""

    nu: Gamma | float = Gamma(2.0, 0.1)
    name: ClassVar[str] = "student"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "nu", parameter_option(self.nu, "nu", self.name, 1.0, None,
                                                        (Gamma,)))

    def parameters(self):
        return (FamilyParameter("nu", self.nu, lower=1.0),)

    @property
    def collapsible(self) -> bool:
        return False

    def parameter_start(self, y):
        return {"nu": NU_START}

    def _nu_guess(self) -> float:
        return NU_START if isinstance(self.nu, Gamma) else float(self.nu)

    def working_weight(self, y, trials):
        # Fisher information for the location: tau (nu + 1) / (nu + 3)
        w, v = super().working_weight(y, trials)
        nu = self._nu_guess()
        return w * (nu + 1.0) / (nu + 3.0), v

    def distribution_text(self, mean):
        return f"Student-t(nu, {mean}, 1/tau)"

    def log_kernel(self, y, eta, tau, trials, extra=None):
        nu = extra["nu"]
        resid = y - self.inverse_link(eta)
        return (gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * jnp.log(nu)
                + 0.5 * jnp.log(tau) - 0.5 * (nu + 1.0) * jnp.log1p(tau * resid**2 / nu))

    def log_base(self, y, trials):
        return jnp.full_like(y, -0.5 * np.log(np.pi))

    def sample(self, key, eta, tau, trials, extra=None):
        nu = jnp.broadcast_to(extra["nu"], eta.shape)
        k_z, k_g = jax.random.split(key)
        # t = z / sqrt(g / (nu / 2)), g ~ Gamma(nu / 2, 1)
        g = jax.random.gamma(k_g, 0.5 * nu, eta.shape, eta.dtype)
        t = jax.random.normal(k_z, eta.shape, eta.dtype) * jnp.sqrt(0.5 * nu / g)
        return self.inverse_link(eta) + t / jnp.sqrt(tau)


def _zero_inflation_start(y: np.ndarray, rate_zero: float) -> float:
    """The share of zeros beyond `rate_zero` (the count model's P(y = 0) at the pooled
    mean), (p0 - rate_zero) / (1 - rate_zero), kept within [0.05, 0.5]."""
    p0 = float(np.mean(y == 0))
    guess = (p0 - rate_zero) / (1.0 - rate_zero) if rate_zero < 1 else 0.0
    return float(np.clip(guess, 0.05, 0.5))


def _zero_inflated(log_f0: Array, log_fy: Array, y: Array, zi: Array) -> Array:
    """log of zi [y = 0] + (1 - zi) f(y), from the count model's log f(0) and log f(y)
    kernels (n_obs,) (their data-only part is 0 at y = 0, so the mixture needs no more)."""
    log_zi, log_keep = jnp.log(zi), jnp.log1p(-zi)
    return jnp.where(y == 0, jnp.logaddexp(log_zi, log_keep + log_f0), log_keep + log_fy)


def _zero_or(key: Array, draw, zi: Array, shape) -> Array:
    """0 with probability zi, else the count model's draw(key)."""
    k_zero, k_count = jax.random.split(key)
    count = draw(k_count)
    return jnp.where(jax.random.bernoulli(k_zero, jnp.broadcast_to(zi, shape)), 0.0, count)


class ZeroInflation:
    """What the zero-inflated families share, mixed in before the count family: the
    parameter zi (a `Beta` prior or a fixed number in [0, 1)), its start, the mean
    (1 - zi) exp(eta), the working weight, the text and the draws. A subclass gives the count
    model's P(y = 0) at the pooled data (`_count_zero_probability`)."""

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "zi", parameter_option(self.zi, "zi", self.name, 0.0, 1.0,
                                                        (Beta,)))

    def parameters(self):
        return (FamilyParameter("zi", self.zi, lower=0.0, upper=1.0),)

    def _count_zero_probability(self, y) -> float:
        raise NotImplementedError

    def _zi_guess(self, y) -> float:
        if not isinstance(self.zi, Beta):
            return float(self.zi)
        return _zero_inflation_start(y, self._count_zero_probability(y))

    def parameter_start(self, y):
        return {"zi": self._zi_guess(y)}

    def mean(self, eta, extra=None):
        return (1.0 - extra["zi"]) * jnp.exp(eta)

    def working_weight(self, y, trials):
        w, v = super().working_weight(y, trials)
        return (1.0 - self._zi_guess(y)) * w, v

    def distribution_text(self, mean):
        return f"ZeroInflated(zi, {super().distribution_text(mean)})"

    def sample(self, key, eta, tau, trials, extra=None):
        count = super(ZeroInflation, self).sample
        return _zero_or(key, lambda k: count(k, eta, tau, trials), extra["zi"], eta.shape)


@dataclass(frozen=True)
class ZeroInflatedPoisson(ZeroInflation, Poisson):
    """y = 0 with probability zi, else Poisson(exp(eta)) (brms' zero_inflated_poisson): mean
    (1 - zi) exp(eta). zi ~ Beta(1, 1) by default (brms'); a number in [0, 1) fixes it."""

    zi: Beta | float = Beta(1.0, 1.0)
    name: ClassVar[str] = "zero_inflated_poisson"

    def _count_zero_probability(self, y):
        return float(np.exp(-np.mean(y)))

    def log_kernel(self, y, eta, tau, trials, extra=None):
        # log f(0) = -exp(eta) at eta <= 709 (past it f(0) = 0 exactly next to zi), and the
        # rows y = 0 meet log f(y) at eta 0: no -inf times a zero weight (a NaN gradient)
        zero = y == 0
        log_f0 = -jnp.exp(jnp.minimum(eta, 709.0))
        log_fy = super().log_kernel(y, jnp.where(zero, 0.0, eta), tau, trials)
        return _zero_inflated(log_f0, log_fy, y, extra["zi"])


@dataclass(frozen=True)
class ZeroInflatedNegBinomial(ZeroInflation, NegBinomial):
    """y = 0 with probability zi, else NB2 with mean exp(eta) and shape tau (brms'
    zero_inflated_negbinomial): mean (1 - zi) exp(eta). zi ~ Beta(1, 1) by default; tau's
    prior as the negative binomial's."""

    zi: Beta | float = Beta(1.0, 1.0)
    name: ClassVar[str] = "zero_inflated_negbinomial"

    def _count_zero_probability(self, y):
        m = max(float(np.mean(y)), 0.1)
        phi = float(np.exp(self.log_tau_start(y)))
        return float((phi / (phi + m)) ** phi)

    def log_kernel(self, y, eta, tau, trials, extra=None):
        log_f0 = super().log_kernel(jnp.zeros_like(y), eta, tau, trials)  # finite for any eta
        return _zero_inflated(log_f0, super().log_kernel(y, eta, tau, trials), y, extra["zi"])
