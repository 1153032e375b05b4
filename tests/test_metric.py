"""The block inverse mass matrix (dense over psi, diagonal over the latent effects) and the
dense metric built from precomputed Cholesky factors, against BlackJAX's dense metric with
the same (d, d) matrix, and their adaptation in a fit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from blackjax.mcmc.metrics import gaussian_euclidean

import jaxglmm as jg
from jaxglmm import fitting, metric

D = 7
PSI = (1, 4, 5)


def _block(seed=0):
    rng = np.random.default_rng(seed)
    G = rng.normal(size=(3, 3))
    A = G @ G.T + 3 * np.eye(3)
    diag = rng.uniform(0.5, 2.0, D - 3)
    imm = np.concatenate([A.ravel(), diag])
    return jnp.asarray(imm), metric.to_dense(imm, PSI, D)


def test_block_metric_equals_the_dense_metric_of_the_same_matrix():
    imm, full = _block()
    ours, ref = metric.block_metric(imm, PSI, D), gaussian_euclidean(jnp.asarray(full))
    rng = np.random.default_rng(1)
    p, q, s = (jnp.asarray(rng.normal(size=D)) for _ in range(3))
    np.testing.assert_allclose(ours.kinetic_energy(p), ref.kinetic_energy(p), rtol=1e-12)
    assert bool(ours.check_turning(p, q, s)) == bool(ref.check_turning(p, q, s))
    assert bool(ours.check_turning(p, -p, 0.1 * p)) == bool(ref.check_turning(p, -p, 0.1 * p))
    for inv in (True, False):
        for trans in (True, False):
            a = ours.scale(None, p, inv=inv, trans=trans)
            # M^{-1/2} M^{-1/2}' = M^{-1}: check the product, not one square root
            b = ours.scale(None, a, inv=not inv, trans=not trans)
            np.testing.assert_allclose(b, p, rtol=1e-10, atol=1e-12)
    L = np.stack([ours.scale(None, e, inv=True, trans=False) for e in jnp.eye(D)], axis=1)
    np.testing.assert_allclose(L @ L.T, full, rtol=1e-10, atol=1e-12)


def test_dense_metric_from_factors_equals_blackjax_dense_metric():
    _, full = _block(3)
    A = jnp.asarray(full)
    ours, ref = metric.dense_metric(A, metric.cholesky_factors(A)), gaussian_euclidean(A)
    rng = np.random.default_rng(4)
    p, q, s = (jnp.asarray(rng.normal(size=D)) for _ in range(3))
    np.testing.assert_allclose(ours.kinetic_energy(p), ref.kinetic_energy(p), rtol=1e-12)
    assert bool(ours.check_turning(p, q, s)) == bool(ref.check_turning(p, q, s))
    assert bool(ours.check_turning(p, -p, 0.1 * p)) == bool(ref.check_turning(p, -p, 0.1 * p))
    key = jax.random.key(5)
    # the same momentum draw: both are M^{1/2} n with M^{1/2} = L^{-T}
    np.testing.assert_allclose(ours.sample_momentum(key, jnp.zeros(D)),
                               ref.sample_momentum(key, jnp.zeros(D)), rtol=1e-10)
    for inv in (True, False):
        for trans in (True, False):
            np.testing.assert_allclose(ours.scale(None, p, inv=inv, trans=trans),
                                       ref.scale(None, p, inv=inv, trans=trans),
                                       rtol=1e-10, atol=1e-12)


def test_a_dense_window_with_fewer_draws_than_twice_the_dimension_gives_its_diagonal():
    from jaxglmm.adaptation import DENSE_DRAWS_PER_DIM, dense_or_diagonal
    _, full = _block(6)
    A = jnp.asarray(full)
    n_full = DENSE_DRAWS_PER_DIM * D
    np.testing.assert_array_equal(dense_or_diagonal(A, n_full), A)
    np.testing.assert_array_equal(dense_or_diagonal(A, n_full - 1), jnp.diag(jnp.diag(A)))


def test_block_momentum_has_the_mass_matrix_as_covariance():
    imm, full = _block(2)
    ours = metric.block_metric(imm, PSI, D)
    keys = jax.random.split(jax.random.key(0), 40000)
    p = jax.vmap(lambda k: ours.sample_momentum(k, jnp.zeros(D)))(keys)
    M = np.linalg.inv(full)
    np.testing.assert_allclose(np.cov(np.asarray(p).T), M, atol=0.03 * np.abs(M).max())


def test_auto_rule_and_a_block_fit(tmp_path):
    rng = np.random.default_rng(0)
    N, m = 120, 3
    g = np.repeat(np.arange(N), m)
    x = rng.normal(size=N * m)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.3 + 0.5 * x + rng.normal(0, 1, N)[g]))))
    model = jg.GLMM.from_arrays(y, np.ones(N * m), g, X=x[:, None], family="bernoulli",
                                centred=False)
    assert fitting.mass_matrix_form(model.model, "joint", "auto", None) == "diagonal"  # 123 > 40
    assert fitting.mass_matrix_form(model.model, "joint", "auto", True) == "dense"
    small = jg.GLMM.from_arrays(y[:60], np.ones(60), g[:60], X=x[:60, None],
                                family="bernoulli", centred=False)  # 20 clusters
    assert fitting.n_sampled(small.model, "joint") <= 40
    assert fitting.mass_matrix_form(small.model, "joint", "auto", None) == "dense"
    fit = model.sample(chains=2, warmup=200, draws=100, seed=0, progress=False,
                       mass_matrix="block")
    assert fit.info["mass_matrix"] == "block"
    d = fit.end.position.shape[1]
    k = len(fit.config.mass_block)
    assert k == 3 and fit.inverse_mass_matrix.shape == (2, k * k + d - k)
    A, diag = metric.split(fit.inverse_mass_matrix[0], k)
    assert np.all(np.linalg.eigvalsh(A) > 0) and np.all(diag > 0)
    more = fit.extend(10, progress=False)  # the block matrix and config carry over
    assert more.draws["beta"].shape[1] == 110
    path = tmp_path / "fit.nc"
    fit.save(path)
    again = jg.load(path).extend(10, progress=False)
    np.testing.assert_array_equal(again.draws["beta"], more.draws["beta"])
    with pytest.raises(ValueError, match="mass_matrix="):
        model.sample(chains=1, warmup=5, draws=5, mass_matrix="low-rank")
    with pytest.raises(ValueError, match="method='joint'"):
        jg.GLMM.from_arrays(rng.normal(size=40), np.ones(40), np.repeat(range(8), 5)).sample(
            chains=1, warmup=5, draws=5, mass_matrix="block")
