"""Unconstrained parameters and their transforms to the natural scale.

The sampler moves a dict of unconstrained arrays (a pytree); which keys are present depends on
the model (p = 0 has no "beta", families without dispersion have no "log_tau", ...):

    "beta"      (p,)            fixed effects
    "mu"        (q,)            mean of the random effects
    "log_tau"   ()              log precision (or shape) of a family with a dispersion
    "log_nu"    ()              log(nu - 1), Student's degrees of freedom (when not fixed)
    "logit_zi"  ()              logit of the zero-inflation probability (when not fixed)
    "log_d"     ()              log of tau's Gamma rate d, when d is random
    "log_gamma" (q,)            log of the Wishart's gamma_j, when random
    "chol"      (q(q+1)/2,)     Cholesky factor of D (or of Omega): log of its diagonal, then
                                the strict lower triangle row by row (under an LKJ prior:
                                log sd, then the atanh of the partial correlations of R's
                                factor, `vec_to_corr_chol`)
    "z"         (N, q)          non-centred random effects, b_i = mu + L_D z_i   (default)
    "b"         (N, q)          centred random effects (on request)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .priors import DEFAULT_GAMMA_FACTOR

Array = jax.Array


def n_chol(q: int) -> int:
    """Number of free elements of a q x q Cholesky factor."""
    return q * (q + 1) // 2


def vec_to_chol(x: Array, q: int) -> tuple[Array, Array]:
    """Lower-triangular L with positive diagonal from x ((q(q+1)/2,)).

    Returns:
        L (q, q) and log|dL/dx| (()), which is the sum of the log-diagonal.
    """
    diag = jnp.exp(x[:q])
    rows, cols = np.tril_indices(q, -1)
    L = jnp.zeros((q, q), dtype=x.dtype).at[rows, cols].set(x[q:])
    L = L + jnp.diag(diag)
    return L, jnp.sum(x[:q])


def vec_to_corr_chol(y: Array, q: int) -> tuple[Array, Array]:
    """Lower Cholesky factor L (q, q) of a correlation matrix from q(q-1)/2 unconstrained
    values (row by row, as `vec_to_chol`'s strict lower triangle): the canonical partial
    correlations z = tanh(y), then row i is L_ij = z_ij sqrt(1 - sum_{k<j} L_ik^2), L_ii =
    sqrt(1 - sum_{k<i} L_ik^2) (Stan's cholesky_factor_corr; LKJ 2009's C-vine).

    Returns:
        L and log|dL_free/dy| (()), over L's strictly lower elements: sum log(1 - z^2) +
        sum over them of 0.5 log(1 - sum_{k<j} L_ik^2).
    """
    z = jnp.tanh(y)
    log_jac = jnp.sum(jnp.log1p(-z**2))
    rows = []
    k = 0
    for i in range(q):
        row, left = [], jnp.ones((), y.dtype)  # left: 1 - sum of the row's squares so far
        for j in range(i):
            row.append(z[k] * jnp.sqrt(left))
            log_jac = log_jac + 0.5 * jnp.log(left)
            left = left - row[-1] ** 2
            k += 1
        row.append(jnp.sqrt(left))
        rows.append(jnp.concatenate([jnp.stack(row), jnp.zeros(q - i - 1, y.dtype)]))
    return jnp.stack(rows), log_jac


def corr_chol_to_vec(L) -> Array:
    """Inverse of vec_to_corr_chol: (q, q) factor of a correlation matrix -> (q(q-1)/2,)."""
    q = L.shape[0]
    out = []
    for i in range(q):
        left = 1.0
        for j in range(i):
            out.append(jnp.arctanh(L[i, j] / jnp.sqrt(left)))
            left = left - L[i, j] ** 2
    return jnp.stack(out) if out else jnp.zeros((0,), L.dtype)


def chol_to_vec(L) -> np.ndarray:
    """Inverse of vec_to_chol: (q, q) lower factor -> (q(q+1)/2,) vector."""
    L = np.asarray(L)
    q = L.shape[0]
    rows, cols = np.tril_indices(q, -1)
    return np.concatenate([np.log(np.diag(L)), L[rows, cols]])


def chol_product_log_jacobian(L: Array) -> Array:
    """log|d(L L')/dL| over the free elements of a lower factor L (q, q) with positive diagonal:
    q log 2 + sum_i (q - i) log L_ii for i = 0..q-1. Returns ()."""
    q = L.shape[-1]
    powers = jnp.arange(q, 0, -1, dtype=L.dtype)
    return q * jnp.log(2.0) + jnp.sum(powers * jnp.log(jnp.diagonal(L)))


def cov_to_corr(D: Array) -> tuple[Array, Array]:
    """Standard deviations (q,) and correlation matrix (q, q) of a covariance D (q, q); the
    diagonal of the correlation is exactly 1 (D_jj / sd_j^2 is 1 only up to rounding, and
    that rounding depended on how XLA fused the division)."""
    sd = jnp.sqrt(jnp.diagonal(D))
    q = D.shape[-1]
    return sd, jnp.where(jnp.eye(q, dtype=bool), jnp.ones((), D.dtype),
                         D / (sd[:, None] * sd[None, :]))


# ------------------------------------------------------------------ initial positions

LATENT = ("z", "b")  # position keys of the random effects (absent when b is integrated out)


def is_latent(name: str) -> bool:
    """Whether a position name holds random effects ("z", "b", "z|g", "b|g")."""
    return name.split("|")[0] in LATENT


def init_shrink(M: np.ndarray, scales: np.ndarray, s: float) -> np.ndarray:
    """Per column of M, a factor <= 1 for the initial half-width of its coefficient (whose
    scale is `scales`; s the data scale of the default priors), so that column times
    coefficient starts within about 3 s: a column far from 0 relative to its spread (a year,
    a dose around 1000) otherwise starts eta so far off that exp(eta) overflows (log links).
    1 for centred columns and for intercepts whose prior is not widened by such columns."""
    out = np.ones(M.shape[1])
    for j, col in enumerate(M.T):
        top = float(np.max(np.abs(col))) if col.size else 0.0
        if top == 0.0:
            continue
        sd = float(np.std(col))
        if sd > 1e-12 * max(1.0, top):
            out[j] = min(1.0, 3.0 * sd / top)
        else:  # constant: intercept prior N(m, w / |c|), w widened by uncentred slopes
            out[j] = min(1.0, 5.0 * s / (top * scales[j]))
    return out


def init_box(arrays, spec, defaults_k: list) -> tuple[dict, dict]:
    """Centre and half-width of the box that initial positions are drawn from, one numpy
    array per position name, for the model's `arrays` (`jaxglmm.design.ArrayData`) and
    `spec` (`jaxglmm.density.ModelSpec`); `defaults_k` the default priors of each term
    (`jaxglmm.priors.default_priors`). See README "Initial values"."""
    fam = spec.family
    s_prior, _ = fam.data_scale(arrays.y)
    loc, scale = {}, {}
    if spec.p:
        beta_scale = np.asarray(defaults_k[0].beta.scale, float) * np.ones(spec.p)
        loc["beta"] = np.zeros(spec.p)
        scale["beta"] = 0.1 * beta_scale * init_shrink(arrays.X, beta_scale, s_prior)
    for t, term, defaults in zip(arrays.terms, spec.terms, defaults_k):
        q, name, n_mu = term.q, term.name, len(term.mu_free)
        mu_full = np.zeros(q)
        if n_mu:
            free = list(term.mu_free)
            mu_scale = np.asarray(defaults.mu.scale, float) * np.ones(n_mu)
            loc[name("mu")] = np.asarray(defaults.mu.loc, float) * np.ones(n_mu)
            scale[name("mu")] = 0.1 * mu_scale * init_shrink(t.Z[:, free], mu_scale, s_prior)
            mu_full[free] = loc[name("mu")]
        s_j = np.sqrt(np.asarray(defaults.omega.scale_inv_diag, float) / DEFAULT_GAMMA_FACTOR
                      ) * np.ones(q)
        # a column far from 0 relative to its spread starts with a smaller sd of b
        s_j = s_j * init_shrink(t.Z, s_j, s_prior)
        log_sd = np.log(0.5 * s_j)
        diag = log_sd if term.factor == "D" else -log_sd
        # an entry below the diagonal has the units of its row (row i of chol(D) those of
        # b_i, of chol(Omega) their inverse): +-0.1 of the row's diagonal, so that a column
        # on a scale far from 1 does not start with a huge off-diagonal term
        rows, _ = np.tril_indices(q, -1)
        loc[name("chol")] = np.concatenate([diag, np.zeros(n_chol(q) - q)])
        scale[name("chol")] = np.concatenate([np.full(q, 0.5), 0.1 * np.exp(diag)[rows]])
        if term.priors.lkj is not None:  # log sd, then the partial correlations' atanh
            loc[name("chol")] = np.concatenate([log_sd, np.zeros(n_chol(q) - q)])
            scale[name("chol")] = np.full(n_chol(q), 0.5)
        pri = term.priors
        if pri.random_gamma:
            g, h = (np.asarray(v) for v in pri.gamma)
            loc[name("log_gamma")], scale[name("log_gamma")] = np.log(g / h), np.full(q, 0.5)
        if term.centred:
            loc[name("b")] = np.tile(mu_full, (term.N, 1))
            scale[name("b")] = np.tile(0.5 * s_j, (term.N, 1))
        else:
            loc[name("z")], scale[name("z")] = np.zeros((term.N, q)), np.ones((term.N, q))
    if fam.has_dispersion:
        loc["log_tau"] = np.asarray(fam.log_tau_start(arrays.y))
        scale["log_tau"] = np.asarray(0.5)
    for param in fam.sampled_parameters:
        start = fam.parameter_start(arrays.y)[param.name]
        loc[param.position_name] = np.asarray(param.unconstrained(start))
        scale[param.position_name] = np.asarray(0.5)
    if spec.priors.random_d:
        g, h = spec.priors.tau[1]
        loc["log_d"], scale["log_d"] = np.asarray(np.log(g / h)), np.asarray(0.5)
    return loc, scale


@jax.jit
def box_draw(key, loc: dict, scale: dict) -> dict:
    """loc + scale * U(-1, 1) for every leaf, one key per leaf in sorted order of the names
    (one compiled program instead of a dozen small eager ones)."""
    names = sorted(loc)
    keys = jax.random.split(key, len(names))
    return {name: loc[name] + jax.random.uniform(k, loc[name].shape, loc[name].dtype, -1.0, 1.0)
            * scale[name] for name, k in zip(names, keys)}


def psi_indices(template: dict) -> tuple:
    """Indices of the non-latent coordinates (psi and hyperparameters) in the flat position,
    which ravel_pytree orders by sorted name."""
    out, start = [], 0
    for name in sorted(template):
        size = int(np.size(template[name]))
        if not is_latent(name):
            out += range(start, start + size)
        start += size
    return tuple(out)
