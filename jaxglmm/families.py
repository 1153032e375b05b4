"""The exponential-family responses: gaussian, bernoulli, binomial, poisson, negative
binomial, gamma and beta (the interface is `jaxglmm.family_base.Family`, the link functions
are in `jaxglmm.links`; Student-t and the zero-inflated counts, which have a parameter besides
tau, are in `jaxglmm.extended_families`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from .family_base import Family, check_counts, first_bad_row, poisson_draw
from .links import (binary_kernel, binary_working_weight, log_mean, log_p_and_log_1mp,
                    outside_mean_support)

Array = jax.Array


@dataclass(frozen=True)
class Gaussian(Family):
    """y ~ N(g^{-1}(eta), 1/tau); identity link by default (the LMM)."""

    name: ClassVar[str] = "gaussian"
    links: ClassVar[tuple[str, ...]] = ("identity", "log")
    has_dispersion: ClassVar[bool] = True

    @property
    def collapsible(self) -> bool:
        return self.link == "identity"

    def data_scale(self, y):
        if self.link != "identity":
            return 1.0, 0.0
        return float(np.std(y)) or 1.0, float(np.mean(y))

    def tau_prior(self, y):
        """tau = 1/sigma^2 ~ Gamma(1, 0.005 s^2), s = sd(y) for the identity link (1
        otherwise): the seed's Gamma(1, 0.005) on standardised y."""
        s, _ = self.data_scale(y)
        return 1.0, 0.005 * s**2

    def log_tau_start(self, y):
        """log(1 / sd(y)^2): the precision of y without any predictor."""
        return -2.0 * np.log(float(np.std(y)) or 1.0)

    def dispersion_draws(self, tau):
        return {"sigma": 1.0 / jnp.sqrt(tau)}  # the residual sd

    def working_weight(self, y, trials):
        var = float(np.var(y)) or 1.0
        return np.full(np.shape(y), 1.0 / var), var / 2.0

    def distribution_text(self, mean):
        return f"N({mean}, 1/tau)"

    def log_kernel(self, y, eta, tau, trials, extra=None):
        resid = y - self.inverse_link(eta)
        return 0.5 * jnp.log(tau) - 0.5 * tau * resid**2

    def log_base(self, y, trials):
        return jnp.full_like(y, -0.5 * np.log(2 * np.pi))

    def sample(self, key, eta, tau, trials, extra=None):
        return self.inverse_link(eta) + jax.random.normal(key, eta.shape) / jnp.sqrt(tau)


@dataclass(frozen=True)
class Bernoulli(Family):
    """y in {0, 1}, P(y = 1) = g^{-1}(eta); logit link by default."""

    name: ClassVar[str] = "bernoulli"
    links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")
    discrete: ClassVar[bool] = True

    def working_weight(self, y, trials):
        return binary_working_weight(y, trials, self.link), 1.0

    def distribution_text(self, mean):
        return f"Bernoulli({mean})"

    def log_kernel(self, y, eta, tau, trials, extra=None):
        return binary_kernel(y, 1.0, eta, self.link)

    def check_response(self, y, trials):
        bad = (y != 0) & (y != 1)
        if bad.any():
            row = first_bad_row(bad)
            raise ValueError(
                f"y: family 'bernoulli' needs 0/1 responses; row {row} has "
                f"{y[row].item()!r}."
            )

    def sample(self, key, eta, tau, trials, extra=None):
        return jax.random.bernoulli(key, self.inverse_link(eta)).astype(eta.dtype)


@dataclass(frozen=True)
class Binomial(Family):
    """y successes out of `trials`, success probability g^{-1}(eta); logit by default."""

    name: ClassVar[str] = "binomial"
    links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")
    has_trials: ClassVar[bool] = True
    discrete: ClassVar[bool] = True

    def working_weight(self, y, trials):
        return binary_working_weight(y, trials, self.link), 1.0

    def distribution_text(self, mean):
        return f"Binomial(n_ij, {mean})"

    def log_kernel(self, y, eta, tau, trials, extra=None):
        return binary_kernel(y, trials, eta, self.link)

    def log_base(self, y, trials):
        return gammaln(trials + 1) - gammaln(y + 1) - gammaln(trials - y + 1)

    def check_response(self, y, trials):
        if trials is None:
            raise ValueError("trials: family 'binomial' needs the number of trials per row.")
        bad = (trials < 1) | (trials != np.round(trials))
        if bad.any():
            row = first_bad_row(bad)
            raise ValueError(
                f"trials: must be whole numbers >= 1; row {row} has {trials[row].item()!r}."
            )
        bad = (y < 0) | (y != np.round(y)) | (y > trials)
        if bad.any():
            row = first_bad_row(bad)
            raise ValueError(
                f"y: family 'binomial' needs whole numbers 0 <= y <= trials; row {row} has "
                f"y={y[row].item()!r} with trials={trials[row].item()!r}."
            )

    def sample(self, key, eta, tau, trials, extra=None):
        return jax.random.binomial(key, trials, self.inverse_link(eta)).astype(eta.dtype)


@dataclass(frozen=True)
class Poisson(Family):
    """y counts with mean exp(eta) (log link)."""

    name: ClassVar[str] = "poisson"
    links: ClassVar[tuple[str, ...]] = ("log",)
    discrete: ClassVar[bool] = True

    def working_weight(self, y, trials):
        return np.full(np.shape(y), max(float(np.mean(y)), 0.01)), 1.0

    def distribution_text(self, mean):
        return f"Poisson({mean})"

    def log_kernel(self, y, eta, tau, trials, extra=None):
        return y * eta - jnp.exp(eta)

    def log_base(self, y, trials):
        return -gammaln(y + 1)

    def check_response(self, y, trials):
        check_counts(y, self.name)

    def sample(self, key, eta, tau, trials, extra=None):
        return poisson_draw(key, jnp.exp(eta))


@dataclass(frozen=True)
class NegBinomial(Family):
    """y counts with mean mu = exp(eta) and variance mu + mu^2 / tau (NB2, brms' and
    glmmTMB's negative binomial): tau = phi is brms' shape and glmmTMB's theta, 1/tau the
    overdispersion; tau -> infinity is the Poisson. Log link."""

    name: ClassVar[str] = "negbinomial"
    links: ClassVar[tuple[str, ...]] = ("log",)
    has_dispersion: ClassVar[bool] = True
    discrete: ClassVar[bool] = True

    def tau_prior(self, y):
        """tau ~ Gamma(1, 0.1 / m), m = max(mean(y), 0.1): exponential with mean 10 m, so
        that a priori the extra variance mu^2/tau at mu = m is below the Poisson variance m
        with probability 0.9 (median 0.14 m); tau is in the units of y."""
        return 1.0, 0.1 / max(float(np.mean(y)), 0.1)

    def log_tau_start(self, y):
        """log of the moment estimate m^2 / (var(y) - m), or of 10 m without overdispersion,
        kept within [0.1 m, 100 m]."""
        m = max(float(np.mean(y)), 0.1)
        extra = float(np.var(y)) - m
        phi = m * m / extra if extra > 0 else 10 * m
        return float(np.log(np.clip(phi, 0.1 * m, 100 * m)))

    def working_weight(self, y, trials):
        m = max(float(np.mean(y)), 0.01)
        phi = float(np.exp(self.log_tau_start(y)))
        return np.full(np.shape(y), m / (1.0 + m / phi)), 1.0

    def distribution_text(self, mean):
        return f"NegBinomial2({mean}, phi = tau)"

    def log_kernel(self, y, eta, tau, trials, extra=None):
        # y log(mu / (tau + mu)) + tau log(tau / (tau + mu)) + lgamma(y + tau) - lgamma(tau),
        # the two logs as -softplus(log tau - eta) and -softplus(eta - log tau): no
        # difference of large numbers when tau >> mu (near the Poisson) or mu >> tau. The
        # lgamma difference still loses about eps * tau log(tau) (1e-8 at tau = 1e7).
        log_tau = jnp.log(tau)
        return (-y * jax.nn.softplus(log_tau - eta) - tau * jax.nn.softplus(eta - log_tau)
                + gammaln(y + tau) - gammaln(tau))

    def log_base(self, y, trials):
        return -gammaln(y + 1)

    def check_response(self, y, trials):
        check_counts(y, self.name)

    def sample(self, key, eta, tau, trials, extra=None):
        k_rate, k_y = jax.random.split(key)
        # mu times a Gamma(tau, rate tau) draw of mean 1 (in this order: no overflow)
        rate = jnp.exp(eta) * (jax.random.gamma(k_rate, tau, eta.shape, eta.dtype) / tau)
        return poisson_draw(k_y, rate)


@dataclass(frozen=True)
class GammaFamily(Family):
    """y > 0 from a Gamma with mean mu = g^{-1}(eta) and shape tau (variance mu^2 / tau;
    1/tau the dispersion of the exponential family); log link by default, inverse (the
    canonical one, mean 1/eta, eta > 0) available."""

    name: ClassVar[str] = "gamma"
    links: ClassVar[tuple[str, ...]] = ("log", "inverse")
    has_dispersion: ClassVar[bool] = True

    @staticmethod
    def _shape_estimate(y) -> float:
        m, v = float(np.mean(y)), float(np.var(y))
        return m * m / v if v > 0 else 10.0

    def tau_prior(self, y):
        """tau ~ Gamma(1, 0.1 / k), k = mean(y)^2 / var(y) the pooled moment estimate of the
        shape: exponential with mean 10 k (the predictors and random effects leave less
        variance than the pooled y has, hence the factor)."""
        return 1.0, 0.1 / self._shape_estimate(y)

    def log_tau_start(self, y):
        """log of the pooled moment estimate of the shape, mean(y)^2 / var(y)."""
        return float(np.log(self._shape_estimate(y)))

    def working_weight(self, y, trials):
        # Fisher information for eta per observation: tau for the log link; for the inverse
        # link tau / eta^2 = tau mu^2 at the pooled mean
        k = self._shape_estimate(y)
        m = float(np.mean(y))
        w = k if self.link == "log" else k * m * m
        return np.full(np.shape(y), w), 1.0 if self.link == "log" else 1.0 / (m * m)

    def data_scale(self, y):
        if self.link == "inverse":  # eta is 1/mean: its scale is that of 1/y
            return 1.0 / float(np.mean(y)), 1.0 / float(np.mean(y))
        return 1.0, 0.0

    def distribution_text(self, mean):
        return f"Gamma(shape tau, mean {mean})"

    def log_kernel(self, y, eta, tau, trials, extra=None):
        log_mu = log_mean(eta, self.link)
        out = (tau * (jnp.log(tau) - log_mu) + (tau - 1.0) * jnp.log(y)
               - tau * y * jnp.exp(-log_mu) - gammaln(tau))
        return jnp.where(outside_mean_support(eta, self.link), -jnp.inf, out)

    def check_response(self, y, trials):
        bad = ~(y > 0)
        if bad.any():
            row = first_bad_row(bad)
            raise ValueError(f"y: family 'gamma' needs positive responses (y > 0); row {row} "
                             f"has {y[row].item()!r}.")

    def sample(self, key, eta, tau, trials, extra=None):
        return self.inverse_link(eta) * (jax.random.gamma(key, tau, eta.shape, eta.dtype) / tau)


@dataclass(frozen=True)
class BetaFamily(Family):
    """y in (0, 1) from a Beta with mean mu = g^{-1}(eta) and precision tau: shapes mu tau
    and (1 - mu) tau, variance mu (1 - mu) / (1 + tau) (brms' beta, with phi = tau); logit
    link by default."""

    name: ClassVar[str] = "beta"
    links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")
    has_dispersion: ClassVar[bool] = True

    @staticmethod
    def _precision_estimate(y) -> float:
        """The pooled moment estimate m (1 - m) / var(y) - 1, at least 1."""
        m, v = float(np.mean(y)), float(np.var(y))
        return max(m * (1 - m) / v - 1.0, 1.0) if v > 0 else 10.0

    def tau_prior(self, y):
        """tau ~ Gamma(1, 0.1 / k), k the pooled moment estimate of the precision: exponential
        with mean 10 k (as for the gamma family's shape)."""
        return 1.0, 0.1 / self._precision_estimate(y)

    def log_tau_start(self, y):
        """log of the pooled moment estimate of the precision."""
        return float(np.log(self._precision_estimate(y)))

    def working_weight(self, y, trials):
        # Fisher information for eta: tau (psi'(mu tau) + psi'((1 - mu) tau)) (dmu/deta)^2
        from scipy.special import polygamma
        from scipy.stats import norm

        k = self._precision_estimate(y)
        m = float(np.clip(np.mean(y), 0.01, 0.99))
        if self.link == "logit":
            dmu = m * (1 - m)
        elif self.link == "probit":
            dmu = norm.pdf(norm.ppf(m))
        else:
            dmu = -(1 - m) * np.log1p(-m)
        info = k * (polygamma(1, m * k) + polygamma(1, (1 - m) * k)) * dmu**2
        return np.full(np.shape(y), float(info)), 1.0

    def distribution_text(self, mean):
        return f"Beta(mean {mean}, precision tau)"

    def log_kernel(self, y, eta, tau, trials, extra=None):
        # -lgamma(a) as log(a) - lgamma(1 + a), with log a = log tau + log mu exact: a shape
        # that underflows (eta far out) keeps its log instead of giving lgamma(0) = inf
        log_mu, log_1m_mu = log_p_and_log_1mp(eta, self.link)
        log_a, log_b = jnp.log(tau) + log_mu, jnp.log(tau) + log_1m_mu
        a, b = jnp.exp(log_a), jnp.exp(log_b)
        return (gammaln(tau) + log_a - gammaln(1.0 + a) + log_b - gammaln(1.0 + b)
                + (a - 1.0) * jnp.log(y) + (b - 1.0) * jnp.log1p(-y))

    def check_response(self, y, trials):
        bad = ~((y > 0) & (y < 1))
        if bad.any():
            row = first_bad_row(bad)
            raise ValueError(f"y: family 'beta' needs responses strictly between 0 and 1; row "
                             f"{row} has {y[row].item()!r}.")

    def sample(self, key, eta, tau, trials, extra=None):
        mu = self.inverse_link(eta)
        y = jax.random.beta(key, mu * tau, (1.0 - mu) * tau, eta.shape, eta.dtype)
        # a shape far below 1 rounds draws to exactly 0 or 1, outside the support: the
        # nearest floats inside it instead (prior predictive data stay fittable)
        info = jnp.finfo(eta.dtype)
        return jnp.clip(y, info.tiny, 1.0 - info.epsneg)
