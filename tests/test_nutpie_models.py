"""The PyMC models of the benchmark (benchmarks/pymc_models.py, sampled by nutpie) are
jaxglmm's models.

Their log densities (PyMC's `compile_logp` on the unconstrained values, Jacobians included)
equal jaxglmm's up to a constant at matched points: the unconstrained spaces are the same
(the Cholesky vector has jaxglmm's layout, tau, d and gamma are on the log scale), so the
difference between two points must vanish. nutpie's own compiled (numba) log density is
checked the same way, and a slow test matches a short nutpie run to the Stan reference.
"""
import json

import jax
import numpy as np
import pytest

pytest.importorskip("numpyro")   # pymc_models reads the data arrays with numpyro_models'
pytest.importorskip("pymc")
pytest.importorskip("nutpie")

import catalogue  # noqa: E402
from jaxglmm import collapsed, diagnostics  # noqa: E402
import pymc_models as pmm  # noqa: E402

Z_CRIT = 4.0


def _setup(name, kind):
    entry = catalogue.load_catalogue()[name]
    df = catalogue.load_data(entry)
    glmm = catalogue.model_from_entry(entry, data=df, centred=kind == "centred")
    return glmm, pmm.make_problem(name, entry, df, kind)


def _jaxglmm_logdensity(glmm, kind):
    """jaxglmm's joint log posterior, or its collapsed one (b integrated out) for 'marginal'."""
    if kind != "marginal":
        return glmm.logdensity_fn
    stats = collapsed.sufficient_stats(glmm.model_data(), glmm.spec.terms[0].N)
    return lambda pos: collapsed.log_posterior_collapsed(
        {k: v for k, v in pos.items() if k != "z"}, stats, glmm.spec)


def _points(glmm, n_points):
    return [glmm.initial_position(jax.random.key(seed)) for seed in range(n_points)]


def _log_density_differences(glmm, problem, kind, n_points=4):
    """PyMC minus jaxglmm log density at random matched points, (n_points,), and jaxglmm's
    log density there."""
    ours = jax.jit(_jaxglmm_logdensity(glmm, kind))
    logp = problem.model.compile_logp(jacobian=True)
    diffs, values = [], []
    for pos in _points(glmm, n_points):
        values.append(float(ours(pos)))
        diffs.append(float(logp(problem.unconstrained_from_natural(glmm.constrain(pos))))
                     - values[-1])
    return np.array(diffs), np.array(values)


@pytest.mark.parametrize("name,kind", [
    ("sleepstudy", "joint"), ("sleepstudy", "centred"), ("sleepstudy", "marginal"),
    ("sleepstudy_hyper", "joint"), ("sleepstudy_hyper", "marginal"),
    ("cbpp", "joint"), ("cbpp", "centred"), ("epil", "joint"), ("epil", "centred"),
    ("sim_longit", "joint"), ("sim_longit", "marginal"),
    ("sim_logit", "joint"), ("sim_logit", "centred"), ("sim_lmm_big", "joint"),
])
def test_log_density_equals_jaxglmm_up_to_a_constant(name, kind):
    glmm, problem = _setup(name, kind)
    diffs, values = _log_density_differences(glmm, problem, kind,
                                             n_points=2 if name == "sim_lmm_big" else 4)
    assert np.ptp(values) > 1.0          # the points differ: the check has teeth
    # a constant up to rounding: sums of n_obs terms in another order (sim_lmm_big: about
    # 3e-12 of |logp| apart on PyMC 6); a wrong term differs by O(1) (test below)
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-11 * np.abs(values).max() + 1e-9)


def test_a_wrong_prior_is_caught():
    """The check sees a prior that differs from jaxglmm's (Wishart df 1 -> 2 on cbpp)."""
    entry = json.loads(json.dumps(catalogue.load_catalogue()["cbpp"]))
    df = catalogue.load_data(entry)
    glmm = catalogue.model_from_entry(entry, data=df, centred=False)
    entry["priors"]["omega"]["wishart"]["df"] = 2
    diffs, _ = _log_density_differences(glmm, pmm.make_problem("cbpp", entry, df), "joint")
    assert np.ptp(diffs) > 1e-3


def test_padding_adds_only_the_unit_normal_constant():
    """Ragged sim_longit: every padded row adds log N(0 | 0, 1) = -log(2 pi) / 2, nothing else."""
    glmm, problem = _setup("sim_longit", "marginal")
    arrays = pmm.pad_clusters(pmm.design(catalogue.load_catalogue()["sim_longit"],
                                         catalogue.load_data(catalogue.load_catalogue()["sim_longit"])))
    n_padded = arrays["mask"].size - arrays["mask"].sum()
    assert n_padded > 0
    diffs, _ = _log_density_differences(glmm, problem, "marginal", n_points=2)
    np.testing.assert_allclose(diffs, -0.5 * np.log(2 * np.pi) * n_padded, rtol=1e-10)


def test_nutpie_compiled_log_density_equals_jaxglmm_up_to_a_constant():
    """nutpie's numba log density (what it samples) and its gradient's length, on
    sleepstudy_hyper centred: log-transformed d, tau, gamma beside the Flat chol and the
    MvNormal b, so the flat layout (value variables in model order) is exercised."""
    glmm, problem = _setup("sleepstudy_hyper", "centred")
    compiled = pmm.compile_nutpie(problem)
    assert compiled.n_dim == problem.dimension
    ours = jax.jit(glmm.logdensity_fn)
    diffs = []
    for pos in _points(glmm, 3):
        x = pmm.flat_point(problem, problem.unconstrained_from_natural(glmm.constrain(pos)))
        logp, grad = compiled.logp_func(x)
        assert np.shape(grad) == (problem.dimension,)
        diffs.append(float(logp) - float(ours(pos)))
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-9)


def test_dimension_counts_the_unconstrained_parameters():
    for name, kind in [("sleepstudy_hyper", "joint"), ("cbpp", "centred"),
                       ("sim_longit", "marginal")]:
        glmm, problem = _setup(name, kind)
        values = problem.unconstrained_from_natural(
            glmm.constrain(glmm.initial_position(jax.random.key(0))))
        assert sorted(values) == sorted(problem.value_names)
        assert problem.dimension == sum(np.size(v) for v in values.values())


def test_unknown_kind_and_non_gaussian_marginal_are_refused():
    entry = catalogue.load_catalogue()["cbpp"]
    df = catalogue.load_data(entry)
    with pytest.raises(ValueError, match="kind='collapsed' is unknown"):
        pmm.make_problem("cbpp", entry, df, "collapsed")
    with pytest.raises(ValueError, match="needs a gaussian model"):
        pmm.make_problem("cbpp", entry, df, "marginal")


@pytest.mark.slow
def test_nutpie_posterior_matches_stan_reference():
    import nutpie
    with open(catalogue.bench_root() / "refs" / "cbpp.json") as f:
        ref = json.load(f)
    _, problem = _setup("cbpp", "centred")
    trace = nutpie.sample(pmm.compile_nutpie(problem), chains=2, tune=500, draws=500, seed=3,
                          progress_bar=False)
    draws = problem.reference_draws(trace.posterior)
    report, bad = [], []
    for param, r in ref["params"].items():
        x = draws[param]
        z = (x.mean() - r["mean"]) / np.hypot(diagnostics.mcse_mean(x), r["mcse_mean"])
        report.append(f"{param}: nutpie {x.mean():.4f} ref {r['mean']:.4f} z {z:+.2f}")
        bad += [param] if abs(z) >= Z_CRIT else []
    assert not bad, "\n".join(report)


@pytest.mark.parametrize("name", ["cbpp", "epil", "sim_logit", "sleepstudy_hyper"])
def test_numpyro_centred_joint_equals_jaxglmm_up_to_a_constant(name):
    """NumPyro's joint_centred model (benchmarks/numpyro_models.py), added with the nutpie peer
    so that both peers get the centred parametrisation where jaxglmm's data rule picks it."""
    import numpyro_models as nm
    entry = catalogue.load_catalogue()[name]
    df = catalogue.load_data(entry)
    glmm = catalogue.model_from_entry(entry, data=df, centred=True)
    problem = nm.make_problem(name, entry, df, "joint_centred")

    @jax.jit
    def difference(position, data):
        params = problem.unconstrained_from_natural(glmm.constrain(position))
        return -problem.potential_fn()(params, data) - glmm.logdensity_fn(position)

    diffs = np.array([float(difference(pos, problem.data)) for pos in _points(glmm, 4)])
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-9)
    params = problem.unconstrained_from_natural(glmm.constrain(_points(glmm, 1)[0]))
    assert sorted(params) == sorted(problem.sites)
    assert problem.dimension == sum(np.size(v) for v in params.values())
