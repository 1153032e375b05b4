"""Log densities of the priors (and of b given its mean and covariance): pure JAX functions,
each checked against scipy.stats or a closed form in the tests."""
from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import gammaln, multigammaln


def normal_logpdf(x, loc, scale):
    """Elementwise log N(x | loc, scale^2); broadcasting shapes."""
    z = (x - loc) / scale
    return -0.5 * z**2 - jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi)


def gamma_logpdf(x, shape, rate):
    """Elementwise log Gamma(x | shape, rate), density shape-1 power times exp(-rate x)."""
    return shape * jnp.log(rate) - gammaln(shape) + (shape - 1) * jnp.log(x) - rate * x


def beta_logpdf(x, a, b):
    """Elementwise log Beta(x | a, b) on (0, 1)."""
    return ((a - 1) * jnp.log(x) + (b - 1) * jnp.log1p(-x)
            - gammaln(a) - gammaln(b) + gammaln(a + b))


def half_normal_logpdf(x, scale):
    """Elementwise log of |N(0, scale^2)| at x > 0."""
    return normal_logpdf(x, 0.0, scale) + jnp.log(2.0)


def half_student_t_logpdf(x, df, scale):
    """Elementwise log of |t_df(0, scale)| at x > 0."""
    z = x / scale
    return (jnp.log(2.0) + gammaln(0.5 * (df + 1)) - gammaln(0.5 * df)
            - 0.5 * jnp.log(df * jnp.pi) - jnp.log(scale)
            - 0.5 * (df + 1) * jnp.log1p(z**2 / df))


def lkj_log_normaliser(eta, q: int):
    """log c_q(eta) of the LKJ density c_q(eta) det(R)^(eta - 1) over q x q correlation
    matrices (Lewandowski, Kurowicka and Joe 2009, eq. 16), ()."""
    total = 0.0
    for k in range(1, q):  # q - k partial correlations of Beta(b, b) on (-1, 1) each
        b = eta + 0.5 * (q - 1 - k)
        total = total + (q - k) * ((2 * b - 1) * jnp.log(2.0) + 2 * gammaln(b)
                                   - gammaln(2 * b))
    return -total


def lkj_cholesky_logpdf(L, eta):
    """log p(L) of the lower Cholesky factor L (q, q) of R ~ LKJ(eta): the LKJ density of R
    times |dR/dL| over L's free (strictly lower) elements, sum_i (q - i - 1 + 2 eta - 2)
    log L_ii over rows i = 1..q-1 (0-based; Stan's lkj_corr_cholesky), normalised, ()."""
    q = L.shape[-1]
    powers = q - jnp.arange(1, q, dtype=L.dtype) - 1.0 + 2.0 * eta - 2.0
    return jnp.sum(powers * jnp.log(jnp.diagonal(L)[1:])) + lkj_log_normaliser(eta, q)


def wishart_logpdf_parts(logdet_omega, diag_omega, df, scale_inv_diag):
    """log Wishart_q(Omega | df, S), S^{-1} = diag(scale_inv_diag), from log|Omega| (()) and
    diag(Omega) ((q,)); scale_inv_diag (q,)."""
    q = diag_omega.shape[-1]
    log_det_s_inv = jnp.sum(jnp.log(scale_inv_diag))
    return (0.5 * (df - q - 1) * logdet_omega
            - 0.5 * jnp.sum(scale_inv_diag * diag_omega)
            - 0.5 * df * q * jnp.log(2.0)
            + 0.5 * df * log_det_s_inv
            - multigammaln(0.5 * df, q))


def wishart_logpdf(omega, df, scale_inv_diag):
    """log Wishart_q(Omega | df, diag(1/scale_inv_diag)) of a (q, q) positive definite Omega."""
    chol = jnp.linalg.cholesky(omega)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return wishart_logpdf_parts(logdet, jnp.diagonal(omega), df,
                                jnp.broadcast_to(scale_inv_diag, (omega.shape[-1],)))


def mvnormal_logpdf_chol(x, mean, chol):
    """log N_q(x | mean, L L') for rows of x ((..., q)), L lower Cholesky factor (q, q)."""
    q = chol.shape[-1]
    resid = jnp.atleast_2d(x - mean)
    white = solve_triangular(chol, resid.T, lower=True).T
    return (-0.5 * jnp.sum(white**2, axis=-1) - jnp.sum(jnp.log(jnp.diagonal(chol)))
            - 0.5 * q * jnp.log(2 * jnp.pi))
