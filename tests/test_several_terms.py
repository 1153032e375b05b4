"""Several random-effect terms: the joint sampler's posterior against an independent one.

For a gaussian model with crossed terms, b integrates out in closed form over the whole data
set: y ~ N(X beta + sum_k Z_k mu_k, sum_k Z_k (I (x) D_k) Z_k' + I / tau). Sampling psi under
that dense marginal (written here, with the library's own priors and Jacobians) and sampling
(b, psi) jointly with `GLMM.sample` must give the same posterior of psi, within Monte Carlo
error.
"""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from jax.flatten_util import ravel_pytree

import jaxglmm as jg
from jaxglmm import diagnostics
from jaxglmm.density import log_prior_psi, natural_draw, term_covariance, unpack
from jaxglmm.sampling import SamplerConfig, sample_chains


def _crossed(seed=1):
    rng = np.random.default_rng(seed)
    n_s, n_d, reps = 6, 4, 2
    s = np.repeat(np.arange(n_s), n_d * reps)
    d = np.tile(np.repeat(np.arange(n_d), reps), n_s)
    x = rng.normal(size=s.size)
    y = (2.0 + 0.7 * x + rng.normal(0, 1.0, n_s)[s] + rng.normal(0, 0.7, n_d)[d]
         + rng.normal(0, 0.8, s.size))
    return pd.DataFrame({"y": y, "x": x, "s": [f"s{i}" for i in s], "d": [f"d{j}" for j in d]})


def _dense_marginal(model):
    """log p(psi | y) up to a constant from the dense marginal likelihood, on the positions
    of `model` without the random effects."""
    spec = model.spec
    data = model.model_data()
    Zs = [np.zeros((len(t.cluster), t.Z.shape[1] * len(t.groups))) for t in model.arrays.terms]
    for Zk, t in zip(Zs, model.arrays.terms):  # observation x (level, column) design
        q = t.Z.shape[1]
        for j in range(q):
            Zk[np.arange(len(t.cluster)), t.cluster * q + j] = t.Z[:, j]
    Zs = [jnp.asarray(Z) for Z in Zs]

    def logdensity(position):
        psi, jac = unpack(position, spec)
        mean = data.offset + (data.X @ psi.beta if spec.p else 0.0)
        cov = jnp.eye(data.y.shape[0]) / psi.tau
        for Zk, t, ts in zip(Zs, psi.terms, spec.terms):
            N = ts.N
            mean = mean + Zk @ jnp.tile(t.mu, N)
            Dk = jnp.kron(jnp.eye(N), term_covariance(t, ts))
            cov = cov + Zk @ Dk @ Zk.T
        loglik = jax.scipy.stats.multivariate_normal.logpdf(data.y, mean, cov)
        return loglik + log_prior_psi(psi, spec) + jac
    return logdensity


@pytest.mark.slow
@pytest.mark.parametrize("method", ["joint", "collapsed"])
def test_crossed_posterior_equals_dense_marginal(method):
    """The joint sampler and the partially collapsed one (b|s integrated out, b|d sampled;
    `jaxglmm.partial`) against NUTS on the dense marginal likelihood."""
    model = jg.GLMM("y ~ x + (1 | s) + (1 | d)", _crossed())
    chains, warmup, draws = 4, 500, 600
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint = model.sample(chains=chains, warmup=warmup, draws=draws, seed=7,
                             progress=False, target_accept=0.95, method=method)
    if method == "collapsed":
        assert joint.info["parametrisation"].startswith("b|s integrated out")
    # four levels of d make a funnel in sd(d): a few divergences, under 1% of the draws
    assert joint.num_divergences < 0.01 * chains * draws
    with jax.enable_x64(True):
        starts = [{k: v for k, v in model.initial_position(jax.random.key(10 + c)).items()
                   if k.split("|")[0] not in ("z", "b")} for c in range(chains)]
        x0 = jnp.stack([ravel_pytree(p)[0] for p in starts])
        _, unravel = ravel_pytree(starts[0])
        logdensity = _dense_marginal(model)
        keys = jax.random.split(jax.random.key(3), 2 * chains)

        def transform(x, data, key):
            position = unravel(x)
            zeros = {t.name("b"): jnp.zeros((t.N, t.q)) for t in model.spec.terms}
            out = natural_draw(position, model.spec, b=tuple(zeros.values()))
            return {k: v for k, v in out.items() if k.split("|")[0] != "b"}
        marginal, _, _, _ = sample_chains(
            lambda data: lambda x: logdensity(unravel(x)), transform, None, x0,
            keys[:chains], keys[chains:], warmup, draws, SamplerConfig(dense_mass=True))
    for name in ("beta", "mu|s", "sigma", "sd|s", "sd|d"):
        a = np.asarray(joint.draws[name], float).reshape(chains, draws, -1)
        b = np.asarray(marginal[name], float).reshape(chains, draws, -1)
        for j in range(a.shape[-1]):
            assert diagnostics.rhat(a[..., j]) < 1.01 and diagnostics.rhat(b[..., j]) < 1.01
            se = np.hypot(diagnostics.mcse_mean(a[..., j]), diagnostics.mcse_mean(b[..., j]))
            z = (a[..., j].mean() - b[..., j].mean()) / se
            assert abs(z) < 4, (name, j, a[..., j].mean(), b[..., j].mean(), z)
