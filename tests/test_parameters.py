"""Cholesky transforms: round trip, layout, and log-Jacobians against jax.jacfwd + slogdet."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxglmm.parameters import (chol_product_log_jacobian, chol_to_vec, cov_to_corr, n_chol,
                                vec_to_chol)

QS = [1, 2, 3]


def _lower_pairs(q):
    """(row, col) of the strict lower triangle, row by row, written out without numpy."""
    return [(i, j) for i in range(q) for j in range(i)]


def _vech(M, q):
    """Lower triangle with the diagonal, row by row: (q(q+1)/2,)."""
    return jnp.stack([M[i, j] for i in range(q) for j in range(i + 1)])


@pytest.mark.parametrize("q", QS)
def test_n_chol(q):
    assert n_chol(q) == q * (q + 1) // 2 == len(_lower_pairs(q)) + q


@pytest.mark.parametrize("q", QS)
def test_vec_to_chol_layout(q):
    """log of the diagonal first, then the strict lower triangle row-major."""
    x = np.random.default_rng(q).normal(size=n_chol(q))
    L, _ = vec_to_chol(jnp.asarray(x), q)
    L = np.asarray(L)
    want = np.diag(np.exp(x[:q]))
    for k, (i, j) in enumerate(_lower_pairs(q)):
        want[i, j] = x[q + k]
    np.testing.assert_allclose(L, want, rtol=1e-14)
    assert np.all(np.triu(L, 1) == 0.0)


@pytest.mark.parametrize("q", QS)
def test_vec_to_chol_round_trip(q):
    rng = np.random.default_rng(10 + q)
    x = rng.normal(size=n_chol(q)) * 2
    L, _ = vec_to_chol(jnp.asarray(x), q)
    np.testing.assert_allclose(chol_to_vec(L), x, rtol=1e-13, atol=1e-14)
    # and the other way, from the Cholesky factor of a random SPD matrix
    A = rng.normal(size=(q, q))
    L0 = np.linalg.cholesky(A @ A.T + np.eye(q))
    L1, _ = vec_to_chol(jnp.asarray(chol_to_vec(L0)), q)
    np.testing.assert_allclose(np.asarray(L1), L0, rtol=1e-13, atol=1e-15)


def _free(L, q):
    """The free elements of a lower factor in the vector's order: diagonal, strict lower."""
    return jnp.concatenate([jnp.diagonal(L), jnp.stack([L[i, j] for i, j in _lower_pairs(q)])
                            if q > 1 else jnp.zeros((0,), L.dtype)])


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("seed", [0, 1])
def test_vec_to_chol_log_jacobian_is_numerical(q, seed):
    x = jnp.asarray(np.random.default_rng(seed).normal(size=n_chol(q)) * 1.5)
    _, log_jac = vec_to_chol(x, q)
    J = jax.jacfwd(lambda v: _free(vec_to_chol(v, q)[0], q))(x)
    sign, logdet = np.linalg.slogdet(np.asarray(J))
    assert sign != 0
    np.testing.assert_allclose(log_jac, logdet, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("seed", [0, 1])
def test_chol_product_log_jacobian_is_numerical(q, seed):
    """log|d vech(L L') / d(free elements of L)|."""
    x = np.random.default_rng(20 + seed).normal(size=n_chol(q))
    L, _ = vec_to_chol(jnp.asarray(x), q)
    free = _free(L, q)

    def product(f):
        M = jnp.diag(f[:q])
        for k, (i, j) in enumerate(_lower_pairs(q)):
            M = M.at[i, j].set(f[q + k])
        return _vech(M @ M.T, q)

    sign, logdet = np.linalg.slogdet(np.asarray(jax.jacfwd(product)(free)))
    assert sign != 0
    np.testing.assert_allclose(chol_product_log_jacobian(L), logdet, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_total_log_jacobian_vector_to_product(q, seed):
    """vec_to_chol's log-Jacobian + chol_product_log_jacobian = log|d vech(L L')/dx|."""
    x = jnp.asarray(np.random.default_rng(30 + seed).normal(size=n_chol(q)) * 1.5)

    def to_vech(v):
        L, _ = vec_to_chol(v, q)
        return _vech(L @ L.T, q)

    sign, logdet = np.linalg.slogdet(np.asarray(jax.jacfwd(to_vech)(x)))
    assert sign > 0 or sign < 0
    L, log_jac = vec_to_chol(x, q)
    np.testing.assert_allclose(log_jac + chol_product_log_jacobian(L), logdet,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("q", QS)
def test_log_jacobian_gradients_are_finite_far_out(q):
    for value in (-8.0, 8.0):
        x = jnp.full(n_chol(q), value)

        def total(v):
            L, log_jac = vec_to_chol(v, q)
            return log_jac + chol_product_log_jacobian(L)

        assert np.isfinite(total(x))
        assert np.all(np.isfinite(np.asarray(jax.grad(total)(x))))


@pytest.mark.parametrize("q", QS)
def test_cov_to_corr(q):
    rng = np.random.default_rng(40 + q)
    A = rng.normal(size=(q, q))
    D = A @ A.T + 0.3 * np.eye(q)
    sd, corr = cov_to_corr(jnp.asarray(D))
    np.testing.assert_allclose(sd, np.sqrt(np.diag(D)), rtol=1e-13)
    want = np.array([[D[i, j] / np.sqrt(D[i, i] * D[j, j]) for j in range(q)] for i in range(q)])
    np.testing.assert_allclose(corr, want, rtol=1e-13)
