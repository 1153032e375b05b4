"""Link functions g with E(y | b) = g^{-1}(eta), and the stable log forms of the means the
families' densities are written in (pure functions of eta; see `jaxglmm.families`)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtr

Array = jax.Array

MEAN_TEXT = {  # E(y | b) = g^{-1}(eta) as the model's description writes it
    "identity": "eta_ij", "log": "exp(eta_ij)", "logit": "logit^-1(eta_ij)",
    "probit": "Phi(eta_ij)", "cloglog": "1 - exp(-exp(eta_ij))", "inverse": "1/eta_ij",
}

INVERSE_LINKS = {
    "identity": lambda eta: eta,
    "log": jnp.exp,
    "logit": jax.nn.sigmoid,
    "probit": ndtr,
    "cloglog": lambda eta: -jnp.expm1(-jnp.exp(eta)),
    "inverse": lambda eta: 1.0 / eta,
}


def log_p_and_log_1mp(eta: Array, link: str) -> tuple[Array, Array]:
    """log P(success) and log P(failure) for a binary link, stable for every eta. Shapes as eta."""
    if link == "logit":
        return -jax.nn.softplus(-eta), -jax.nn.softplus(eta)
    if link == "probit":
        return log_ndtr(eta), log_ndtr(-eta)
    if link == "cloglog":
        # p = 1 - exp(-exp(eta)):  log p = log(-expm1(-exp(eta))),  log(1 - p) = -exp(eta).
        # exp(eta) underflows below eta ~ -745: there log p = eta - exp(eta)/2 + O(exp(2 eta)).
        # Above eta = 40, log p = -exp(-exp(eta)) is -0.0 in float64 (exp(-2e17)), exactly
        # the value returned, and its gradient 0; without that branch exp(eta) overflows
        # past eta ~ 710 and the gradient of log p is 0 * inf = NaN. The clamps keep the
        # branches not taken (and their gradients) finite.
        e_low = jnp.exp(jnp.minimum(eta, -20.0))
        e_mid = jnp.exp(jnp.clip(eta, -20.0, 40.0))
        log_p = jnp.where(eta < -20.0, eta - 0.5 * e_low,
                          jnp.where(eta > 40.0, 0.0, jnp.log(-jnp.expm1(-e_mid))))
        return log_p, -jnp.exp(eta)
    raise ValueError(f"link={link!r} is not a binary link")  # pragma: no cover - checked earlier


def binary_kernel(y: Array, n: Array, eta: Array, link: str) -> Array:
    """y log p + (n - y) log(1 - p), p = g^{-1}(eta); shapes as eta.

    For the logit link, with a = |eta|: -n log1p(exp(-a)) + y min(eta, 0) - (n - y) max(eta, 0),
    exact on the whole line with one exp and one log1p (its gradient reuses them).
    """
    if link == "logit":
        return (-n * jnp.log1p(jnp.exp(-jnp.abs(eta))) + y * jnp.minimum(eta, 0.0)
                - (n - y) * jnp.maximum(eta, 0.0))
    # Each of log p, log(1 - p) is evaluated only where it is used (elsewhere at eta = 0):
    # where all trials succeeded, log(1 - p) = -exp(eta) (cloglog) is -inf for eta > 710,
    # and jnp.where would pass its 0 * inf = NaN gradient on although it drops the value.
    log_p, _ = log_p_and_log_1mp(jnp.where(y > 0, eta, 0.0), link)
    _, log_q = log_p_and_log_1mp(jnp.where(n - y > 0, eta, 0.0), link)
    return (jnp.where(y > 0, y * log_p, 0.0) + jnp.where(n - y > 0, (n - y) * log_q, 0.0))


def binary_working_weight(y: np.ndarray, n: np.ndarray, link: str) -> np.ndarray:
    """n p(1-p) at the pooled success rate p for the logit link, and its probit and cloglog
    analogues n g'(eta)^2 / (p (1 - p)); (n_obs,)."""
    from scipy.stats import norm

    p = float(np.clip(y.sum() / n.sum(), 0.01, 0.99))
    if link == "logit":
        return n * p * (1 - p)
    if link == "probit":
        return n * norm.pdf(norm.ppf(p)) ** 2 / (p * (1 - p))
    return n * np.log1p(-p) ** 2 * (1 - p) / p  # cloglog


def log_mean(eta: Array, link: str) -> Array:
    """log g^{-1}(eta) for a positive mean: eta for the log link; for the inverse link
    -log(eta) where eta > 0 (the caller maps eta <= 0 to -inf)."""
    if link == "log":
        return eta
    # eta <= 0 is replaced by 1 before the log, so that the branch the caller drops has a
    # finite value and gradient (jnp.where passes a NaN gradient on otherwise)
    return -jnp.log(jnp.where(eta > 0, eta, 1.0))


def outside_mean_support(eta: Array, link: str) -> Array:
    """Where eta gives no valid positive mean (the inverse link at eta <= 0)."""
    return (eta <= 0) if link == "inverse" else jnp.zeros(jnp.shape(eta), bool)
