"""The joint log posterior log p(b, psi, hyper | y) as one pure JAX function (DESIGN.md section 3).

Pieces (likelihood, prior of b, prior of psi, log-Jacobian) are separate functions so that tests
check each one; `log_posterior` adds them up. Ragged clusters are handled by gathering b by the
cluster index of each observation: no loop over clusters or observations and no padding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .family_base import Family
from .laplace import NEWTON_STEPS, guided_effects
from .parameters import chol_product_log_jacobian, cov_to_corr, vec_to_chol, vec_to_corr_chol
from .log_densities import (gamma_logpdf, half_normal_logpdf, half_student_t_logpdf,
                            lkj_cholesky_logpdf, mvnormal_logpdf_chol, normal_logpdf,
                            wishart_logpdf_parts)
from .priors import ResolvedPriors

Array = jax.Array


class ModelData(NamedTuple):
    """Observation-level arrays (n_obs observations, p fixed columns) and, per random-effect
    term k, its design Z_k (n_obs, q_k) and level index cluster_k (n_obs,) over N_k levels."""

    y: Array        # (n_obs,)
    X: Array        # (n_obs, p)
    trials: Array   # (n_obs,) binomial trials (ones for other families)
    offset: Array   # (n_obs,) added to the linear predictor
    weights: Array | None  # (n_obs,) each log likelihood term's multiplier; None: all 1
    log_base: Array  # () weighted sum of the data-only terms of the likelihood (family.log_base)
    terms: tuple    # ((Z_k (n_obs, q_k), cluster_k (n_obs,) int), ...) one pair per term


@dataclass(frozen=True)
class TermSpec:
    """One random-effect term: b_i ~ N_q(mu, D) for its N levels, Omega = D^{-1}.

    Attributes:
        key: suffix of the term's position and draw names: "" for a single-term model,
            "|g" (g the grouping factor) when there are several terms ("mu|g", "b|g", ...).
        mu_free: columns (of q) whose mean mu is a parameter; the others have mean 0
            (a formula column only in the random part, or one claimed by an earlier term).
        centred: sample b directly (True) or z with b = mu + L z (False).
        factor: which Cholesky factor the sampler moves: "D" (of D) or "omega" (of Omega).
        priors: the term's resolved priors (its mu, omega and gamma parts are used).
        laplace: Laplace-guided z (centred is then False): b = m(psi) + L(psi)^{-T} z with the
            conditional mode m and curvature L L' after `newton_steps` Newton steps
            (jaxglmm/laplace.py).
    """

    key: str
    q: int
    N: int
    mu_free: tuple
    centred: bool
    factor: str
    priors: ResolvedPriors
    laplace: bool = False
    newton_steps: int = NEWTON_STEPS

    @property
    def parametrisation(self) -> str:
        """"laplace", "centred" or "non-centred"."""
        return "laplace" if self.laplace else "centred" if self.centred else "non-centred"

    def name(self, base: str) -> str:
        """Position / draw name of this term's `base` quantity, e.g. "mu" -> "mu|g"."""
        return base + self.key


@dataclass(frozen=True)
class ModelSpec:
    """Static description of the model: sizes, family, priors and parametrisation.

    `priors` holds the beta and tau parts (and, for a single term, equals terms[0].priors);
    `terms` one TermSpec per random-effect term.
    """

    family: Family
    priors: ResolvedPriors
    p: int
    terms: tuple


class TermPsi(NamedTuple):
    """Natural-scale parameters of one random-effect term."""

    mu: Array             # (q,) mean of b (zeros where not free)
    gamma: Array          # (q,) S^{-1} diagonal of the Wishart prior
    chol: Array           # (q, q) lower Cholesky factor of D or of Omega (term.factor)
    logdet_omega: Array   # () log|Omega|
    diag_omega: Array     # (q,) diagonal of Omega


class Psi(NamedTuple):
    """Natural-scale parameters entering the density (absent ones are placeholders)."""

    beta: Array           # (p,)
    tau: Array            # ()  (1 for families without dispersion)
    d: Array              # ()  rate of tau's Gamma prior
    terms: tuple          # (TermPsi, ...) one per random-effect term
    extra: dict           # the family's parameters besides tau by name (nu, zi), each ()


def _unpack_term(position: dict, term: TermSpec, dtype) -> tuple[TermPsi, Array]:
    """One term's natural parameters and the log-Jacobian of its map to where the prior is
    stated: (Omega, gamma) under a Wishart, (sd, L_R) under an LKJ (always the D factor)."""
    q = term.q
    raw = position[term.name("chol")]
    pri = term.priors
    lkj = pri.lkj is not None
    if lkj:  # chol(D) = diag(sd) L_R
        L_R, log_jac = vec_to_corr_chol(raw[q:], q)
        L = jnp.exp(raw[:q])[:, None] * L_R
        log_jac = log_jac + jnp.sum(raw[:q])
        log_diag_sum = jnp.sum(jnp.log(jnp.diagonal(L)))
    else:
        L, log_jac = vec_to_chol(raw, q)
        log_jac = log_jac + chol_product_log_jacobian(L)
        log_diag_sum = jnp.sum(raw[:q])
    if term.factor == "D":
        L_inv = solve_triangular(L, jnp.eye(q, dtype=dtype), lower=True)
        diag_omega = jnp.sum(L_inv**2, axis=0)
        logdet_omega = -2.0 * log_diag_sum
        if not lkj:  # density stated for Omega = D^{-1}: |dOmega/dD| = |D|^{-(q+1)}
            log_jac = log_jac + (q + 1) * logdet_omega
    else:
        diag_omega = jnp.sum(L**2, axis=1)
        logdet_omega = 2.0 * log_diag_sum
    if pri.random_gamma:
        log_gamma = position[term.name("log_gamma")]
        gamma = jnp.exp(log_gamma)
        log_jac = log_jac + jnp.sum(log_gamma)
    else:  # LKJ: no gamma (a placeholder of zeros)
        gamma = jnp.zeros((q,), dtype) if lkj else jnp.asarray(pri.gamma, dtype)
    return TermPsi(_term_mu(position, term, dtype), gamma, L, logdet_omega, diag_omega), log_jac


def _term_mu(position: dict, term: TermSpec, dtype) -> Array:
    """mu (q,) of one term: its free columns from the position, 0 elsewhere."""
    if len(term.mu_free) == term.q:
        return position[term.name("mu")]
    mu = jnp.zeros((term.q,), dtype)
    if term.mu_free:
        mu = mu.at[jnp.asarray(term.mu_free)].set(position[term.name("mu")])
    return mu


def unpack(position: dict, spec: ModelSpec) -> tuple[Psi, Array]:
    """Natural parameters from the unconstrained position, and the log-Jacobian (()) of the
    map from the unconstrained space to (tau, d, gamma, Omega, the family's parameters) where
    the priors are stated."""
    dtype = position[spec.terms[0].name("chol")].dtype
    terms, log_jac = [], jnp.zeros((), dtype)
    for term in spec.terms:
        t, jac = _unpack_term(position, term, dtype)
        terms.append(t)
        log_jac = log_jac + jac
    one = jnp.ones((), dtype)
    tau, d = one, one
    if "log_tau" in position:
        tau = jnp.exp(position["log_tau"])
        log_jac = log_jac + position["log_tau"]
    pri = spec.priors
    if pri.random_d:
        d = jnp.exp(position["log_d"])
        log_jac = log_jac + position["log_d"]
    elif pri.tau is not None:
        d = jnp.asarray(pri.tau[1], dtype)
    extra = {}
    for param in spec.family.parameters():
        if param.fixed:
            extra[param.name] = jnp.asarray(param.prior, dtype)
        else:
            extra[param.name], jac = param.natural(position[param.position_name])
            log_jac = log_jac + jac
    beta = position.get("beta", jnp.zeros((0,), dtype))
    return Psi(beta, tau, d, tuple(terms), extra), log_jac


def _term_effects(position: dict, t: TermPsi, term: TermSpec) -> Array:
    """b (N, q) of one term."""
    if term.centred:
        return position[term.name("b")]
    z = position[term.name("z")]
    if term.factor == "D":
        return t.mu + z @ t.chol.T
    # D = L^{-T} L^{-1} for L = chol(Omega): b - mu = L^{-T} z
    return t.mu + solve_triangular(t.chol.T, z.T, lower=False).T


def random_effects(position: dict, psi: Psi, spec: ModelSpec, data: ModelData | None = None,
                   skip: int | None = None) -> tuple:
    """Cluster coefficients (b_1 (N_1, q_1), ..., b_K) from the position, one per term
    (`data` is needed by Laplace-guided terms); None for term `skip` (integrated out, so
    not in the position)."""
    return random_effects_and_log_jacobian(position, psi, spec, data, skip)[0]


def random_effects_and_log_jacobian(position: dict, psi: Psi, spec: ModelSpec,
                                    data: ModelData | None = None,
                                    skip: int | None = None) -> tuple[tuple, Array]:
    """(b_1, ..., b_K) and log|db/dz| (()) summed over the Laplace-guided terms (0 without);
    None for term `skip` (integrated out).

    Term k's Laplace map depends on psi, on the b of terms before it and on later terms only
    through their mean mu, never on its own z or later z: the Jacobian of z -> b is block
    triangular, its log-determinant the sum of the terms' own."""
    bs, log_jac = [], jnp.zeros((), psi.beta.dtype)
    for k, (t, term) in enumerate(zip(psi.terms, spec.terms)):
        if k == skip:
            bs.append(None)
            continue
        if not term.laplace:
            bs.append(_term_effects(position, t, term))
            continue
        if data is None:
            raise ValueError(f"term {term.key or 1}: Laplace-guided random effects need the "
                             "model data.")
        Z, cluster = data.terms[k]
        b, jac = guided_effects(
            position[term.name("z")], _eta_without_term(k, bs, psi, spec, data), Z, cluster,
            t.mu, term_precision(t, term),
            lambda eta: weighted(spec.family.log_kernel(data.y, eta, psi.tau, data.trials,
                                                        psi.extra), data.weights),
            term.newton_steps)
        bs.append(b)
        log_jac = log_jac + jac
    return tuple(bs), log_jac


def _eta_without_term(k: int, b_before: list, psi: Psi, spec: ModelSpec, data: ModelData
                      ) -> Array:
    """offset + X beta + the terms before k at their b + the terms after k (and an
    integrated-out one) at their mean mu, (n_obs,)."""
    eta = data.offset + (data.X @ psi.beta if data.X.shape[1] else 0.0)
    for l, ((Z, cluster), t) in enumerate(zip(data.terms, psi.terms)):
        if l < k and b_before[l] is not None:
            eta = eta + jnp.sum(Z * b_before[l][cluster], axis=1)
        elif l != k:
            eta = eta + Z @ t.mu
    return eta


def _as_terms(b) -> tuple:
    return tuple(b) if isinstance(b, (tuple, list)) else (b,)


def weighted(values: Array, weights: Array | None) -> Array:
    """values (n_obs,) times the observation weights; `values` itself without weights (None:
    a model without weights computes exactly as one before weights existed)."""
    return values if weights is None else weights * values


def linear_predictor(b, beta: Array, data: ModelData) -> Array:
    """eta = offset + X beta + sum_k z_kij' b_k[cluster_k], (n_obs,); b an (N, q) array
    (one term) or a tuple of them (a None term is left out)."""
    eta = data.offset
    for b_k, (Z, cluster) in zip(_as_terms(b), data.terms):
        if b_k is not None:
            eta = eta + jnp.sum(Z * b_k[cluster], axis=1)
    if data.X.shape[1]:
        eta = eta + data.X @ beta
    return eta


def pointwise_log_likelihood(b, psi: Psi, data: ModelData, family: Family) -> Array:
    """w_ij log p(y_ij | b, beta, tau) per observation (n_obs,): weighted as in the
    likelihood."""
    eta = linear_predictor(b, psi.beta, data)
    return weighted(family.log_density(data.y, eta, psi.tau, data.trials, psi.extra),
                    data.weights)


def _log_prior_term_b(position: dict, t: TermPsi, b: Array, term: TermSpec) -> Array:
    if term.parametrisation == "non-centred":
        return jnp.sum(normal_logpdf(position[term.name("z")], 0.0, 1.0))
    if term.factor == "D":
        return jnp.sum(mvnormal_logpdf_chol(b, t.mu, t.chol))
    white = (b - t.mu) @ t.chol  # rows (b_i - mu)' L, squared norm = (b-mu)' Omega (b-mu)
    return jnp.sum(-0.5 * jnp.sum(white**2, axis=1) + 0.5 * t.logdet_omega
                   - 0.5 * term.q * jnp.log(2 * jnp.pi))


def log_prior_b(position: dict, psi: Psi, b, spec: ModelSpec) -> Array:
    """Sum over terms of log p(z) (non-centred: standard normal) or log p(b | mu, D)
    (centred and Laplace-guided), (); a None term (integrated out) is left out."""
    return sum(_log_prior_term_b(position, t, b_k, term)
               for t, b_k, term in zip(psi.terms, _as_terms(b), spec.terms)
               if b_k is not None)


def hyperparameters(spec: ModelSpec) -> dict:
    """The numbers of psi's priors by name, floats or tuples (one per element):
    beta.loc, beta.scale (p,); tau.shape and tau.rate, or tau.shape, d.shape and d.rate with
    a random d; the family's sampled parameters (nu.shape, nu.rate; zi.a, zi.b); per term
    (names carry the term's key, "mu|g.loc" with several terms) mu.loc, mu.scale (free
    columns), and omega.df with omega.gamma (q,) or gamma.shape, gamma.rate (q,) for a
    random gamma, or for an LKJ prior lkj.eta, sd.scale (q,) and sd.df (half-t)."""
    pri = spec.priors
    h = {}
    if pri.beta is not None:
        h["beta.loc"], h["beta.scale"] = pri.beta
    if pri.tau is not None:
        h["tau.shape"] = pri.tau[0]
        if pri.random_d:
            h["d.shape"], h["d.rate"] = pri.tau[1]
        else:
            h["tau.rate"] = pri.tau[1]
    for param in spec.family.sampled_parameters:
        for name, value in param.hyperparameters().items():
            h[f"{param.name}.{name}"] = value
    for term in spec.terms:
        tp, key = term.priors, term.key
        if tp.mu is not None and term.mu_free:
            h[f"mu{key}.loc"], h[f"mu{key}.scale"] = tp.mu
        if tp.lkj is not None:
            eta, df, scales = tp.lkj
            h[f"lkj{key}.eta"], h[f"sd{key}.scale"] = eta, scales
            if df is not None:
                h[f"sd{key}.df"] = df
            continue
        h[f"omega{key}.df"] = tp.omega_df
        if tp.random_gamma:
            h[f"gamma{key}.shape"], h[f"gamma{key}.rate"] = tp.gamma
        else:
            h[f"omega{key}.gamma"] = tp.gamma
    return h


def _log_prior_term(t: TermPsi, term: TermSpec, h: dict) -> Array:
    """log p(mu_free) + log p(Omega | gamma) p(gamma) of one term, () (`h`: the
    hyperparameters, as `hyperparameters` names them)."""
    pri, key = term.priors, term.key
    total = jnp.zeros((), t.mu.dtype)
    if pri.mu is not None and term.mu_free:
        mu = t.mu[jnp.asarray(term.mu_free)]
        total += jnp.sum(normal_logpdf(mu, jnp.asarray(h[f"mu{key}.loc"]),
                                       jnp.asarray(h[f"mu{key}.scale"])))
    if pri.lkj is not None:  # sd_j ~ half-t or half-normal, R ~ LKJ(eta) through L_R
        sd = jnp.sqrt(jnp.sum(t.chol**2, axis=1))
        scales = jnp.asarray(h[f"sd{key}.scale"], sd.dtype)
        total += jnp.sum(half_normal_logpdf(sd, scales) if pri.lkj[1] is None
                         else half_student_t_logpdf(sd, h[f"sd{key}.df"], scales))
        return total + lkj_cholesky_logpdf(t.chol / sd[:, None], h[f"lkj{key}.eta"])
    gamma = t.gamma if pri.random_gamma else jnp.asarray(h[f"omega{key}.gamma"], t.gamma.dtype)
    total += wishart_logpdf_parts(t.logdet_omega, t.diag_omega, h[f"omega{key}.df"], gamma)
    if pri.random_gamma:
        total += jnp.sum(gamma_logpdf(t.gamma, jnp.asarray(h[f"gamma{key}.shape"]),
                                      jnp.asarray(h[f"gamma{key}.rate"])))
    return total


def log_prior_psi(psi: Psi, spec: ModelSpec, hyper: dict | None = None) -> Array:
    """log p(beta) + log p(tau | d) p(d) + log p(the family's sampled parameters) + sum over
    terms of log p(mu) + log p(Omega | gamma) p(gamma), (); `hyper` replaces the priors'
    numbers (`hyperparameters`' names; default: the spec's)."""
    priors = spec.priors
    h = hyperparameters(spec) if hyper is None else hyper
    total = jnp.zeros((), psi.tau.dtype)
    if priors.beta is not None:
        total += jnp.sum(normal_logpdf(psi.beta, jnp.asarray(h["beta.loc"]),
                                       jnp.asarray(h["beta.scale"])))
    if priors.tau is not None:
        total += gamma_logpdf(psi.tau, h["tau.shape"],
                              psi.d if priors.random_d else h["tau.rate"])
        if priors.random_d:
            total += gamma_logpdf(psi.d, h["d.shape"], h["d.rate"])
    for param in spec.family.sampled_parameters:
        total += param.log_prior(psi.extra[param.name], {
            name: h[f"{param.name}.{name}"] for name in param.hyperparameters()})
    for t, term in zip(psi.terms, spec.terms):
        total += _log_prior_term(t, term, h)
    return total


def log_posterior(position: dict, data: ModelData, spec: ModelSpec) -> Array:
    """Joint log posterior (up to a constant) at an unconstrained position, ()."""
    psi, log_jac = unpack(position, spec)
    b, log_jac_b = random_effects_and_log_jacobian(position, psi, spec, data)
    eta = linear_predictor(b, psi.beta, data)
    loglik = jnp.sum(weighted(spec.family.log_kernel(data.y, eta, psi.tau, data.trials,
                                                     psi.extra), data.weights)) + data.log_base
    return (loglik + log_prior_b(position, psi, b, spec) + log_jac_b
            + log_prior_psi(psi, spec) + log_jac)


def _from_factor(L: Array, inverse: bool) -> Array:
    """L L' (q, q) of a lower factor, or its inverse L^{-T} L^{-1}."""
    if not inverse:
        return L @ L.T
    L_inv = solve_triangular(L, jnp.eye(L.shape[-1], dtype=L.dtype), lower=True)
    return L_inv.T @ L_inv


def term_covariance(t: TermPsi, term: TermSpec) -> Array:
    """D (q, q) of one term from its Cholesky factor."""
    return _from_factor(t.chol, inverse=term.factor != "D")


def term_precision(t: TermPsi, term: TermSpec) -> Array:
    """Omega (q, q) of one term from its Cholesky factor."""
    return _from_factor(t.chol, inverse=term.factor == "D")


def covariance(psi: Psi, spec: ModelSpec) -> Array:
    """D (q, q) of the first term."""
    return term_covariance(psi.terms[0], spec.terms[0])


def natural_draw(position: dict, spec: ModelSpec, b=None, data: ModelData | None = None
                 ) -> dict:
    """One draw on the natural scale: beta, tau (and the family's `dispersion_draws`, the
    gaussian's sigma), the family's sampled parameters (nu, zi), d, and per term
    (names suffixed by the term's key) mu (free columns), D, sd, corr, b and gamma. `b` is
    given when the position has none (collapsed sampler); `data` is needed by
    Laplace-guided terms."""
    psi, _ = unpack(position, spec)
    bs = random_effects(position, psi, spec, data) if b is None else _as_terms(b)
    out = {}
    if spec.p:
        out["beta"] = psi.beta
    for t, term, b_k in zip(psi.terms, spec.terms, bs):
        D = term_covariance(t, term)
        sd, corr = cov_to_corr(D)
        if term.mu_free:
            out[term.name("mu")] = t.mu[jnp.asarray(term.mu_free)]
        out.update({term.name("D"): D, term.name("sd"): sd, term.name("corr"): corr,
                    term.name("b"): b_k})
        if term.priors.random_gamma:
            out[term.name("gamma")] = t.gamma
    if spec.family.has_dispersion:
        out["tau"] = psi.tau
        out.update(spec.family.dispersion_draws(psi.tau))  # e.g. the gaussian's sigma
    for param in spec.family.sampled_parameters:
        out[param.name] = psi.extra[param.name]
    if spec.priors.random_d:
        out["d"] = psi.d
    return out
