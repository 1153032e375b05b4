"""Posteriors against references: Stan runs of the benchmark suite (benchmarks/suite) and an exact conjugate case.

Tolerances come from Monte Carlo standard errors: |ours - reference| < 4 sqrt(mcse_ours^2 +
mcse_ref^2) per quantity, never a hand-picked number.
"""
import json

import numpy as np
import pytest

import jaxglmm as jg
import catalogue
from jaxglmm import diagnostics

Z_CRIT = 4.0


def _reference(name):
    with open(catalogue.bench_root() / "refs" / f"{name}.json") as f:
        return json.load(f)


def _compare_to_reference(fit, ref):
    """Rows (name, ours, reference, z) for every quantity the reference has; R-hat too."""
    draws = catalogue.reference_draws(fit)
    missing = sorted(set(ref["params"]) - set(draws))
    assert not missing, f"the fit lacks reference quantities {missing}"
    rows = []
    for name, r in ref["params"].items():
        x = draws[name]
        mcse = diagnostics.mcse_mean(x)
        z = (x.mean() - r["mean"]) / np.hypot(mcse, r["mcse_mean"])
        rows.append((name, x.mean(), r["mean"], z, diagnostics.rhat(x)))
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sleepstudy", "cbpp", "epil"])
def test_posterior_matches_stan_reference(name):
    ref = _reference(name)
    model = catalogue.load_model(name)
    fit = model.sample(chains=4, warmup=1000, draws=1000, seed=11, progress=False)
    rows = _compare_to_reference(fit, ref)
    report = "\n".join(f"{n:10s} ours {m:10.4f} ref {r:10.4f} z {z:+.2f} rhat {h:.4f}"
                       for n, m, r, z, h in rows)
    assert all(abs(z) < Z_CRIT for _, _, _, z, _ in rows), report
    assert all(h < 1.01 for *_, h in rows), report
    assert fit.num_divergences == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sleepstudy_hyper", "sim_longit", "sim_logit"])
def test_bench_model_converges(name):
    """Every entry of models.json but sim_lmm_big (a performance case) fits with R-hat < 1.01
    from the loader, with exactly the priors written there."""
    model = catalogue.load_model(name)
    fit = model.sample(chains=4, warmup=1000, draws=1000, seed=5, progress=False)
    draws = catalogue.reference_draws(fit)
    rhats = {k: diagnostics.rhat(v) for k, v in draws.items()}
    assert max(rhats.values()) < 1.01, rhats
    if name == "sleepstudy_hyper":
        assert {"d", "gamma[0]", "gamma[1]"} <= set(draws)


def test_loader_uses_the_priors_written_in_models_json():
    entries = catalogue.load_catalogue()
    m = catalogue.model_from_entry(entries["sleepstudy_hyper"])
    pri = m.spec.priors
    assert pri.mu == ((0.0, 0.0), (1000.0, 1000.0))
    assert pri.tau == (1.0, (1.0, 200.0)) and pri.random_d
    assert pri.random_gamma and pri.gamma == ((0.5, 0.5), (0.05, 0.05))
    assert pri.omega_df == 2.0 and pri.beta is None
    m = catalogue.model_from_entry(entries["cbpp"])
    assert m.spec.family.name == "binomial" and m.spec.p == 3 and m.spec.terms[0].q == 1
    assert m.spec.priors.beta == ((0.0,) * 3, (10.0,) * 3)
    assert m.spec.priors.gamma == (1.0,) and m.spec.priors.omega_df == 1.0
    assert m.spec.priors.tau is None
    assert m.spec.terms[0].N == 15 and m.arrays.y.shape == (56,)


def _anova_data(seed=3):
    rng = np.random.default_rng(seed)
    sizes = np.array([1, 2, 3, 5, 8, 13])
    groups = np.repeat(np.arange(sizes.size) * 10 + 7, sizes)  # labels 7, 17, ...
    b = 4.0 + 1.5 * rng.normal(size=sizes.size)
    y = b[np.repeat(np.arange(sizes.size), sizes)] + rng.normal(size=sizes.sum())
    return y, groups, sizes


def test_one_way_anova_with_known_variances_matches_closed_form():
    """y_ij = b_i + e_ij, b_i ~ N(mu, d2), e_ij ~ N(0, s2) with s2 and d2 known (priors so
    concentrated that tau and Omega are fixed to 1e-3 relative), mu ~ N(m0, v0): mu | y and
    b_i | y are Gaussian in closed form."""
    y, groups, sizes = _anova_data()
    s2, d2, m0, v0 = 1.0, 2.25, 0.0, 100.0
    conc = 1e6
    priors = jg.Priors(mu=jg.Normal(m0, np.sqrt(v0)), tau=jg.Gamma(conc, conc * s2),
                       omega=jg.Wishart(conc, conc * d2))
    model = jg.GLMM.from_arrays(y, np.ones_like(y), groups, priors=priors)
    fit = model.sample(chains=4, warmup=1000, draws=1500, seed=2, progress=False)

    ybar = np.array([y[groups == g].mean() for g in np.unique(groups)])
    w = 1.0 / (d2 + s2 / sizes)
    var_mu = 1.0 / (1.0 / v0 + w.sum())
    mean_mu = var_mu * (m0 / v0 + np.sum(w * ybar))
    shrink = (1.0 / d2) / (sizes / s2 + 1.0 / d2)           # weight of mu in E(b_i | mu, y)
    mean_b = (1 - shrink) * ybar + shrink * mean_mu
    var_b = 1.0 / (sizes / s2 + 1.0 / d2) + shrink**2 * var_mu

    mu = fit.draws["mu"][..., 0]
    b = fit.draws["b"][..., 0]
    checks = [(mu, mean_mu)] + [(b[..., i], mean_b[i]) for i in range(sizes.size)]
    for x, exact in checks:
        assert abs(x.mean() - exact) < Z_CRIT * diagnostics.mcse_mean(x), (x.mean(), exact)
    # variances: the sd of a sample variance, var * sqrt(2 / ess), sets the tolerance
    for x, exact in [(mu, var_mu)] + [(b[..., i], var_b[i]) for i in range(sizes.size)]:
        tol = Z_CRIT * exact * np.sqrt(2.0 / diagnostics.ess_bulk(x))
        assert abs(x.var() - exact) < tol, (x.var(), exact)
    assert fit.coords["groups"] == sorted(set(groups.tolist()))
