"""Draws from the prior and the prior predictive distribution (brms' sample_prior = "only",
Bambi's prior_predictive): psi from its prior, the hyperparameters d and gamma from theirs
when random, each term's b_l ~ N(mu, D) for its levels, and y from the family at the model's
design. The seed's lesson (DESIGN.md section 2) is that "vague" priors are not harmless:
these draws show what a prior says about the data before seeing them.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .density import natural_draw
from .fitting import check_count
from .inference_data import (OBS_DIM, as_response, data_tree, named_dataset,
                             posterior_dataset, posterior_predictive_draws, response_name)
from .keys import as_key
from .model import Model
from .parameters import corr_chol_to_vec, vec_to_corr_chol
from .results import Fit


def _check_proper(model: Model) -> None:
    spec = model.spec
    if spec.p and spec.priors.beta is None:
        raise ValueError("priors.beta: flat (improper); prior draws need a proper prior, "
                         "e.g. jaxglmm.Normal(0, 2.5).")
    for ts in spec.terms:
        if ts.mu_free and ts.priors.mu is None:
            raise ValueError(f"priors.mu{ts.key}: flat (improper); prior draws need a proper "
                             "prior, e.g. jaxglmm.Normal(0, 10).")


def _gamma(key, shape, rate, size=()):
    """Gamma(shape, rate) draws."""
    return jax.random.gamma(key, jnp.asarray(shape), size or jnp.shape(shape)) / rate


def _wishart(key, df: float, scale_inv_diag):
    """Omega ~ Wishart_q(df, S), S^{-1} = diag(scale_inv_diag) (q,), by Bartlett's
    decomposition: Omega = L A A' L', L = chol(S), A lower with A_jj^2 ~ chi2(df - j),
    A_jk ~ N(0, 1) below the diagonal."""
    q = scale_inv_diag.shape[0]
    k_diag, k_low = jax.random.split(key)
    chi2 = 2.0 * jax.random.gamma(k_diag, 0.5 * (df - jnp.arange(q, dtype=scale_inv_diag.dtype)))
    A = jnp.tril(jax.random.normal(k_low, (q, q), scale_inv_diag.dtype), -1)
    A = A + jnp.diag(jnp.sqrt(chi2))
    LA = A / jnp.sqrt(scale_inv_diag)[:, None]
    return LA @ LA.T


def _lkj(key, q: int, eta: float, df, scales, dtype):
    """sd (q,) from independent half-t_df (df None: half-normal) of the given scales, and the
    factor L_R (q, q) of R ~ LKJ(eta) by the C-vine (Lewandowski, Kurowicka and Joe 2009):
    the partial correlation in column j is 2 Beta(b_j, b_j) - 1, b_j = eta + (q - 2 - j) / 2,
    independently, mapped to L_R as `parameters.vec_to_corr_chol` maps tanh of its input."""
    k_sd, k_t, k_r = jax.random.split(key, 3)
    scales = jnp.asarray(scales, dtype)
    z = jax.random.normal(k_sd, (q,), dtype)
    if df is not None:  # t = z / sqrt(chi2_df / df)
        z = z * jnp.sqrt(0.5 * df / jax.random.gamma(k_t, 0.5 * df, (q,), dtype))
    rows, cols = np.tril_indices(q, -1)
    b = eta + 0.5 * (q - 2 - cols)
    partial = 2.0 * jax.random.beta(k_r, jnp.asarray(b, dtype), jnp.asarray(b, dtype),
                                    cols.shape, dtype) - 1.0
    L_R, _ = vec_to_corr_chol(jnp.arctanh(partial), q)
    return scales * jnp.abs(z), L_R


def _chol_vector(L):
    q = L.shape[0]
    rows, cols = np.tril_indices(q, -1)
    return jnp.concatenate([jnp.log(jnp.diagonal(L)), L[rows, cols]])


def _one_draw(key, spec):
    """(unconstrained psi position without b, b per term) of one prior draw of the model of
    `spec` (`jaxglmm.density.ModelSpec`)."""
    keys = iter(jax.random.split(key, 6 + 4 * len(spec.terms)))
    f = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    position = {}
    if spec.p:
        loc, scale = (jnp.asarray(v, f) for v in spec.priors.beta)
        position["beta"] = loc + scale * jax.random.normal(next(keys), loc.shape, f)
    pri = spec.priors
    if spec.family.has_dispersion:
        c, d = pri.tau
        if pri.random_d:
            g, h = d
            d = _gamma(next(keys), jnp.asarray(g, f), h)
            position["log_d"] = jnp.log(d)
        tau = _gamma(next(keys), jnp.asarray(c, f), d)
        position["log_tau"] = jnp.log(tau)
    for param in spec.family.sampled_parameters:
        position[param.position_name] = param.unconstrained(param.draw(next(keys), f))
    bs = []
    for ts in spec.terms:
        q, pri = ts.q, ts.priors
        mu_full = jnp.zeros(q, f)
        if ts.mu_free:
            loc, scale = (jnp.asarray(v, f) for v in pri.mu)
            mu = loc + scale * jax.random.normal(next(keys), loc.shape, f)
            position[ts.name("mu")] = mu
            mu_full = mu_full.at[jnp.asarray(ts.mu_free)].set(mu)
        if pri.lkj is not None:
            sd, L_R = _lkj(next(keys), q, *pri.lkj, f)
            L_D = sd[:, None] * L_R
            position[ts.name("chol")] = jnp.concatenate([jnp.log(sd), corr_chol_to_vec(L_R)])
        else:
            if pri.random_gamma:
                g, h = (jnp.asarray(v, f) for v in pri.gamma)
                gamma = _gamma(next(keys), g, h)
                position[ts.name("log_gamma")] = jnp.log(gamma)
            else:
                gamma = jnp.asarray(pri.gamma, f)
            omega = _wishart(next(keys), pri.omega_df, gamma)
            L_omega = jnp.linalg.cholesky(omega)
            D = jnp.linalg.inv(omega)
            L_D = jnp.linalg.cholesky(0.5 * (D + D.T))
            position[ts.name("chol")] = _chol_vector(L_D if ts.factor == "D" else L_omega)
        eps = jax.random.normal(next(keys), (ts.N, q), f)
        bs.append(mu_full + eps @ L_D.T)
    return position, tuple(bs)


@partial(jax.jit, static_argnames="spec")
def _draw_all(keys, spec):
    """Natural-scale draws for each key (one compiled program per spec)."""
    def one(key):
        position, bs = _one_draw(key, spec)
        return natural_draw(position, spec, b=bs)
    return jax.vmap(one)(keys)


def prior_draws(model: Model, draws: int = 500, seed=0) -> dict:
    """`draws` natural-scale draws from the prior, shaped (1, draws, ...) like a Fit's
    (beta, mu, tau, sigma, the family's nu or zi, D, sd, corr, b, and d, gamma when random).

    Raises:
        ValueError: a flat prior on beta or mu (it cannot be drawn from).
    """
    _check_proper(model)
    draws = check_count(draws, "draws", 1)
    # the parametrisation does not matter for prior draws: b is drawn directly
    spec = replace(model.spec, terms=tuple(replace(t, centred=True, laplace=False)
                                           for t in model.spec.terms))
    with jax.enable_x64(model.dtype == "float64"):
        out = _draw_all(jax.random.split(as_key(seed), draws), spec)
    return {k: np.asarray(v)[None] for k, v in out.items()}


def sample_prior(model: Model, draws: int = 500, seed=0, include_b: bool = True):
    """ArviZ 1.x data (an `xarray.DataTree`) with groups prior (the prior draws, named dims
    as the posterior's), prior_predictive (y drawn at each prior draw, (1, draws, n_obs)) and
    observed_data, as Bambi's `prior_predictive` returns. Keys from `seed`."""
    key = as_key(seed)
    k_prior, k_y = jax.random.split(key)
    d = prior_draws(model, draws, k_prior)
    S = next(iter(d.values())).shape[1]
    fit = Fit(draws=d, sample_stats={"diverging": np.zeros((1, S), bool)}, model=model,
              settings=None, info={"method": "prior", "chains": 1, "draws": S})
    y_name = response_name(model)
    obs = {y_name: (OBS_DIM,)}
    groups = {"prior": posterior_dataset(fit, include_b),
              "prior_predictive": named_dataset(
                  {y_name: posterior_predictive_draws(fit, k_y)}, obs, {}),
              "observed_data": named_dataset({y_name: as_response(model.arrays.y, model)},
                                             obs, {}, chain_draw=False)}
    return data_tree(groups)
