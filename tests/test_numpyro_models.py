"""The NumPyro models of the benchmark (benchmarks/numpyro_models.py) are jaxglmm's models.

Their log densities equal jaxglmm's up to a constant at matched points (the unconstrained
spaces differ only by a permutation of the Cholesky coordinates), and short NUTS runs match the
Stan references within 4 combined Monte Carlo standard errors.
"""
import json

import jax
import numpy as np
import pytest

pytest.importorskip("numpyro")

import catalogue  # noqa: E402
from jaxglmm import collapsed, diagnostics  # noqa: E402
import numpyro_models as nm  # noqa: E402

Z_CRIT = 4.0


def _setup(name, kind):
    entry = catalogue.load_catalogue()[name]
    df = catalogue.load_data(entry)
    glmm = catalogue.model_from_entry(entry, data=df, centred=False)  # non-centred, as NumPyro's
    return glmm, nm.make_problem(name, entry, df, kind)


def _jaxglmm_logdensity(glmm, kind):
    """jaxglmm's joint log posterior, or its collapsed one (b integrated out) for 'marginal'."""
    if kind == "joint":
        return glmm.logdensity_fn
    stats = collapsed.sufficient_stats(glmm.model_data(), glmm.spec.terms[0].N)
    return lambda pos: collapsed.log_posterior_collapsed(
        {k: v for k, v in pos.items() if k != "z"}, stats, glmm.spec)


def _log_density_differences(glmm, problem, kind, n_points=4):
    """NumPyro minus jaxglmm log density at random matched points, (n_points,)."""
    ours = _jaxglmm_logdensity(glmm, kind)

    @jax.jit
    def difference(position, data):
        params = problem.unconstrained_from_natural(glmm.constrain(position))
        return -problem.potential_fn()(params, data) - ours(position)

    return np.array([float(difference(glmm.initial_position(jax.random.key(seed)),
                                      problem.data)) for seed in range(n_points)])


@pytest.mark.parametrize("name,kind", [
    ("sleepstudy", "joint"), ("sleepstudy", "marginal"), ("cbpp", "joint"),
    ("sleepstudy_hyper", "joint"), ("sleepstudy_hyper", "marginal"), ("epil", "joint"),
    ("sim_logit", "joint"), ("sim_longit", "marginal"),
])
def test_log_density_equals_jaxglmm_up_to_a_constant(name, kind):
    glmm, problem = _setup(name, kind)
    diffs = _log_density_differences(glmm, problem, kind)
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-8)


def test_padding_adds_only_the_unit_normal_constant():
    """Ragged sim_longit: every padded row adds log N(0 | 0, 1) = -log(2 pi) / 2, nothing else."""
    glmm, problem = _setup("sim_longit", "marginal")
    n_padded = problem.data["mask"].size - problem.data["mask"].sum()
    assert n_padded > 0
    diffs = _log_density_differences(glmm, problem, "marginal", n_points=2)
    np.testing.assert_allclose(diffs, -0.5 * np.log(2 * np.pi) * n_padded, rtol=1e-10)


def test_dimension_counts_the_unconstrained_parameters():
    for name, kind in [("sleepstudy_hyper", "joint"), ("cbpp", "joint"), ("sim_longit",
                                                                         "marginal")]:
        glmm, problem = _setup(name, kind)
        params = problem.unconstrained_from_natural(
            glmm.constrain(glmm.initial_position(jax.random.key(0))))
        assert problem.dimension == sum(np.size(v) for v in params.values())


def test_unknown_kind_and_non_gaussian_marginal_are_refused():
    entry = catalogue.load_catalogue()["cbpp"]
    df = catalogue.load_data(entry)
    with pytest.raises(ValueError, match="kind='centred' is unknown"):
        nm.make_problem("cbpp", entry, df, "centred")
    with pytest.raises(ValueError, match="needs a gaussian model"):
        nm.make_problem("cbpp", entry, df, "marginal")


@pytest.mark.slow
@pytest.mark.parametrize("name,kind", [("cbpp", "joint"), ("sleepstudy", "marginal")])
def test_numpyro_posterior_matches_stan_reference(name, kind):
    with open(catalogue.bench_root() / "refs" / f"{name}.json") as f:
        ref = json.load(f)
    glmm, problem = _setup(name, kind)
    mcmc = nm.make_mcmc(problem, chains=2, warmup=500, draws=500,
                        dense_mass=problem.dimension <= 100)
    mcmc.run(jax.random.key(3), init_params=nm.initial_params(problem, glmm, 3, 2),
             **problem.data)
    draws = problem.reference_draws(mcmc.get_samples(group_by_chain=True))
    report, bad = [], []
    for param, r in ref["params"].items():   # mu[0] and sd[0] among them
        x = draws[param]
        z = (x.mean() - r["mean"]) / np.hypot(diagnostics.mcse_mean(x), r["mcse_mean"])
        report.append(f"{param}: numpyro {x.mean():.4f} ref {r['mean']:.4f} z {z:+.2f}")
        bad += [param] if abs(z) >= Z_CRIT else []
    assert not bad, "\n".join(report)
