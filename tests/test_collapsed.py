"""The collapsed gaussian LMM: marginal likelihood, exact conditional of b, and posterior
equality with the joint sampler."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import jaxglmm as jg
from jaxglmm import batched, collapsed, diagnostics
from jaxglmm.density import unpack


def _lmm(seed=0, p=2, q=2, N=7, offset=False):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, size=N)
    g = np.repeat(np.arange(N), sizes)
    n = g.size
    Z = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(q - 1)])
    X = rng.normal(size=(n, p)) if p else None
    y = rng.normal(size=n) * 2 + 3
    off = rng.normal(size=n) if offset else None
    return y, Z, g, X, off


def _position(model, seed):
    pos = model.initial_position(jax.random.key(seed))
    pos = {k: v for k, v in pos.items() if k not in ("z", "b")}
    rng = np.random.default_rng(seed)
    return {k: v + 0.3 * rng.normal(size=np.shape(v)) for k, v in pos.items()}


@pytest.mark.parametrize("factor", ["D", "omega"])
@pytest.mark.parametrize("p,q,offset", [(2, 2, False), (0, 1, True), (3, 3, True)])
def test_marginal_likelihood_equals_multivariate_normal_per_cluster(factor, p, q, offset):
    y, Z, g, X, off = _lmm(p=p, q=q, offset=offset)
    model = jg.GLMM.from_arrays(y, Z, g, X=X, offset=off, factor=factor)
    pos = _position(model, 1)
    psi, _ = unpack(pos, model.spec)
    stats = collapsed.sufficient_stats(model.model_data(), model.spec.terms[0].N)
    got = collapsed.log_marginal_likelihood(psi, stats, model.spec)
    nat = model.constrain({**pos, "z": jnp.zeros((model.spec.terms[0].N, q))})
    D, tau, mu = np.asarray(nat["D"]), float(nat["tau"]), np.asarray(nat["mu"])
    beta = np.asarray(nat["beta"]) if p else np.zeros(0)
    want = 0.0
    for i in range(model.spec.terms[0].N):
        rows = g == i
        Zi = Z[rows]
        mean = Zi @ mu + (X[rows] @ beta if p else 0) + (off[rows] if offset else 0)
        V = Zi @ D @ Zi.T + np.eye(rows.sum()) / tau
        want += st.multivariate_normal(mean, V).logpdf(y[rows])
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_draw_b_has_the_exact_conditional_moments():
    y, Z, g, X, _ = _lmm(seed=4, N=3)
    model = jg.GLMM.from_arrays(y, Z, g, X=X)
    pos = _position(model, 2)
    psi, _ = unpack(pos, model.spec)
    stats = collapsed.sufficient_stats(model.model_data(), model.spec.terms[0].N)
    n_draws = 20000
    draws = jax.vmap(lambda k: collapsed.draw_b(k, psi, stats, model.spec))(
        jax.random.split(jax.random.key(0), n_draws))              # (S, N, q)
    nat = model.constrain({**pos, "z": jnp.zeros((model.spec.terms[0].N, 2))})
    omega = np.linalg.inv(np.asarray(nat["D"]))
    tau, mu, beta = float(nat["tau"]), np.asarray(nat["mu"]), np.asarray(nat["beta"])
    for i in range(model.spec.terms[0].N):
        rows = g == i
        prec = omega + tau * Z[rows].T @ Z[rows]
        cov = np.linalg.inv(prec)
        mean = cov @ (omega @ mu + tau * Z[rows].T @ (y[rows] - X[rows] @ beta))
        x = np.asarray(draws[:, i, :])
        se = np.sqrt(np.diag(cov) / n_draws)
        assert np.all(np.abs(x.mean(axis=0) - mean) < 4 * se)
        # sample covariance: sd of each element about sqrt((c_jk^2 + c_jj c_kk) / n)
        tol = 4 * np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n_draws)
        assert np.all(np.abs(np.cov(x.T) - cov) < tol)


def test_method_is_chosen_and_recorded():
    y, Z, g, X, _ = _lmm()
    model = jg.GLMM.from_arrays(y, Z, g, X=X)
    assert model.can_collapse
    fit = model.sample(chains=2, warmup=100, draws=50, progress=False)
    assert fit.info["method"] == "collapsed"
    assert fit.draws["b"].shape == (2, 50, 7, 2)
    fit = model.sample(chains=2, warmup=100, draws=50, progress=False, method="joint")
    assert fit.info["method"] == "joint"
    yb = (y > 3).astype(float)
    bern = jg.GLMM.from_arrays(yb, Z, g, X=X, family="bernoulli")
    assert not bern.can_collapse
    with pytest.raises(ValueError, match="method='collapsed'"):
        bern.sample(method="collapsed")
    with pytest.raises(ValueError, match="method='foo'"):
        model.sample(method="foo")


@pytest.mark.slow
def test_collapsed_and_joint_posteriors_agree():
    """sleepstudy with the models.json priors: every psi element and every b_i, means within
    4 combined MCSE."""
    import catalogue
    model = catalogue.load_model("sleepstudy")
    fits = [model.sample(chains=4, warmup=1000, draws=1000, seed=3, method=m, progress=False)
            for m in ("collapsed", "joint")]
    assert [f.info["method"] for f in fits] == ["collapsed", "joint"]
    names = fits[0].scalar_draws(include_b=True)
    other = fits[1].scalar_draws(include_b=True)
    bad = []
    for name, x in names.items():
        y = other[name]
        z = (x.mean() - y.mean()) / np.hypot(diagnostics.mcse_mean(x), diagnostics.mcse_mean(y))
        if abs(z) > 4:
            bad.append((name, x.mean(), y.mean(), z))
    assert not bad, bad
    assert all(f.num_divergences == 0 for f in fits)


@pytest.mark.parametrize("q", [1, 2, 3, 4])
def test_unrolled_batched_cholesky_matches_linalg(q):
    rng = np.random.default_rng(q)
    M = rng.normal(size=(5, q, q))
    A = M @ np.transpose(M, (0, 2, 1)) + q * np.eye(q)
    chol = batched.batched_cholesky(jnp.asarray(A))
    L = np.linalg.cholesky(A)
    for i in range(q):
        for j in range(i + 1):
            np.testing.assert_allclose(chol.rows[i][j], L[:, i, j], rtol=1e-12)
    b = rng.normal(size=(5, q))
    np.testing.assert_allclose(chol.solve_lower(jnp.asarray(b)),
                               np.linalg.solve(L, b[..., None])[..., 0], rtol=1e-10)
    np.testing.assert_allclose(chol.solve_upper(jnp.asarray(b)),
                               np.linalg.solve(np.transpose(L, (0, 2, 1)), b[..., None])[..., 0],
                               rtol=1e-10)
    np.testing.assert_allclose(chol.log_det(), np.sum(np.linalg.slogdet(A)[1]), rtol=1e-12)
    general = batched.GeneralChol(jnp.asarray(L))
    np.testing.assert_allclose(general.solve_upper(jnp.asarray(b)), chol.solve_upper(b),
                               rtol=1e-10)


@pytest.mark.parametrize("family", ["gaussian", "bernoulli", "binomial", "poisson"])
def test_posterior_likelihood_equals_sum_of_exact_pointwise_terms(family):
    """log_posterior adds log_kernel per step and the data-only log_base once; together they
    must equal the exact pointwise log likelihood (used for LOO/WAIC)."""
    from jaxglmm.density import (log_posterior, log_prior_b, log_prior_psi,
                                 pointwise_log_likelihood, random_effects)
    rng = np.random.default_rng(7)
    y, Z, g, X, _ = _lmm(seed=7)
    trials = None
    if family == "bernoulli":
        y = (y > 3).astype(float)
    elif family in ("binomial", "poisson"):
        y = rng.integers(0, 5, size=y.size).astype(float)
        trials = np.full(y.size, 6.0) if family == "binomial" else None
    model = jg.GLMM.from_arrays(y, Z, g, X=X, family=family, trials=trials)
    pos = model.initial_position(jax.random.key(3))
    psi, jac = unpack(pos, model.spec)
    b = random_effects(pos, psi, model.spec)
    data = model.model_data()
    rest = log_prior_b(pos, psi, b, model.spec) + log_prior_psi(psi, model.spec) + jac
    want = jnp.sum(pointwise_log_likelihood(b, psi, data, model.spec.family))
    np.testing.assert_allclose(log_posterior(pos, data, model.spec) - rest, want, rtol=1e-10)
