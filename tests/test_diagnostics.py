"""Convergence diagnostics against ArviZ (the reference implementation of Vehtari et al. 2021),
and the Fit summary built on them: its columns, row names, values and warnings."""
from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest

import jaxglmm
from jaxglmm import diagnostics
from jaxglmm.results import SUMMARY_COLUMNS, Fit

C, S = 4, 500


def iid(rng):
    return rng.normal(size=(C, S))


def ar1(rng, rho=0.9):
    """Stationary AR(1) chains with unit marginal variance, (C, S)."""
    eps = rng.normal(size=(C, S))
    x = np.empty((C, S))
    x[:, 0] = eps[:, 0]
    for t in range(1, S):
        x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * eps[:, t]
    return x


def shifted(rng):
    return rng.normal(size=(C, S)) + np.array([0.0, 0.0, 0.5, 1.0])[:, None]


def odd_length(rng):
    return rng.normal(size=(C, S + 1))       # split chains drop the middle draw


def ties(rng):
    return rng.poisson(2.0, size=(C, S)).astype(float)   # average ranks of ties


def heavy_tails(rng):
    return rng.standard_cauchy(size=(C, S))


CASES = {"iid": iid, "ar1": ar1, "shifted": shifted, "odd_length": odd_length, "ties": ties,
         "heavy_tails": heavy_tails}

OURS_VS_ARVIZ = {
    "rhat": (diagnostics.rhat, lambda x: az.rhat(x, method="rank")),
    "ess_bulk": (diagnostics.ess_bulk, lambda x: az.ess(x, method="bulk")),
    # the tail ESS of Vehtari et al. (2021), Stan and the posterior package: the 5% and 95%
    # quantiles (ArviZ 1.x's own default takes the 11% and 89% of its ci_prob 0.89)
    "ess_tail": (diagnostics.ess_tail, lambda x: az.ess(x, method="tail", prob=(0.05, 0.95))),
    "ess_mean": (diagnostics.ess_mean, lambda x: az.ess(x, method="mean")),
    "mcse_mean": (diagnostics.mcse_mean, lambda x: az.mcse(x, method="mean")),
}


@pytest.mark.parametrize("stat", list(OURS_VS_ARVIZ))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_arviz(case, stat):
    x = CASES[case](np.random.default_rng(sorted(CASES).index(case)))
    ours, theirs = OURS_VS_ARVIZ[stat]
    got = ours(x)
    want = np.asarray(theirs(x)).item()
    assert np.isfinite(got)
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_matches_arviz_on_dataset():
    x = ar1(np.random.default_rng(7))
    ds = az.convert_to_dataset({"theta": x})
    np.testing.assert_allclose(diagnostics.rhat(x), float(az.rhat(ds, method="rank")["theta"]),
                               rtol=1e-8)
    np.testing.assert_allclose(diagnostics.ess_bulk(x),
                               float(az.ess(ds, method="bulk")["theta"]), rtol=1e-8)


def test_rhat_separates_agreeing_from_disagreeing_chains():
    rng = np.random.default_rng(0)
    assert diagnostics.rhat(iid(rng)) < 1.01
    assert diagnostics.rhat(shifted(rng)) > 1.05


def test_rhat_catches_chains_with_different_spread():
    # same location, different scale: only the folded (tail) R-hat sees it
    x = np.random.default_rng(1).normal(size=(C, S)) * np.array([1.0, 1.0, 1.0, 3.0])[:, None]
    assert diagnostics.rhat(x) > 1.01


def test_ess_of_ar1_near_theory():
    # ESS of an AR(1) mean: C S (1 - rho) / (1 + rho) = 2000 * 0.1 / 1.9 = 105
    ess = diagnostics.ess_bulk(ar1(np.random.default_rng(2)))
    assert 50 < ess < 220
    assert diagnostics.ess_bulk(iid(np.random.default_rng(2))) > 1500


def test_mcse_mean_near_sd_over_sqrt_n_for_iid():
    x = iid(np.random.default_rng(3))
    np.testing.assert_allclose(diagnostics.mcse_mean(x), x.std() / np.sqrt(x.size), rtol=0.15)


def test_constant_draws_give_nan():
    x = np.ones((C, S))
    assert np.isnan(diagnostics.rhat(x))
    assert np.isnan(diagnostics.ess_bulk(x))


# ------------------------------------------------------------------------ Fit.summary

Z_NAMES = ["Intercept", "Days"]
GROUPS = ["a", "b", "c"]
EXPECTED_ROWS = ["beta[x1]", "mu[Intercept]", "mu[Days]", "sigma", "tau",
                 "D[Intercept,Intercept]", "D[Intercept,Days]", "D[Days,Days]",
                 "sd[Intercept]", "sd[Days]", "corr[Intercept,Days]"]


@pytest.fixture(scope="module")
def model():
    """A gaussian model with x_names ["x1"], z_names ["Intercept", "Days"], groups a, b, c
    (never sampled: it only names the fabricated draws)."""
    rng = np.random.default_rng(0)
    days = np.tile(np.arange(4.0), 3)
    return jaxglmm.GLMM.from_arrays(rng.normal(size=12), np.column_stack([np.ones(12), days]),
                                    np.repeat(GROUPS, 4), X=rng.normal(size=(12, 1)),
                                    z_names=Z_NAMES)


def fabricate(model, shift_mu_days=0.0, n_divergent=0, seed=0) -> Fit:
    """A Fit with iid draws of every quantity (consistent D, sd, corr); chain 1 of mu[Days]
    shifted by `shift_mu_days`; `n_divergent` divergences in chain 0."""
    rng = np.random.default_rng(seed)
    N, q = len(GROUPS), len(Z_NAMES)
    mu = rng.normal(size=(C, S, q))
    mu[1, :, 1] += shift_mu_days
    sd = np.exp(0.1 * rng.normal(size=(C, S, q)))
    r = np.tanh(0.1 * rng.normal(size=(C, S)))
    corr = np.broadcast_to(np.eye(q), (C, S, q, q)).copy()
    corr[..., 0, 1] = corr[..., 1, 0] = r
    D = corr * sd[..., :, None] * sd[..., None, :]
    sigma = np.exp(0.1 * rng.normal(size=(C, S)))
    draws = {"beta": rng.normal(size=(C, S, 1)), "mu": mu, "sigma": sigma,
             "tau": sigma**-2, "D": D, "sd": sd, "corr": corr,
             "b": rng.normal(size=(C, S, N, q))}
    diverging = np.zeros((C, S), bool)
    diverging[0, :n_divergent] = True
    return Fit(draws=draws, sample_stats={"diverging": diverging}, model=model.model,
               settings=None, info={"method": "joint", "parametrisation": "non-centred",
                                    "chains": C, "draws": S})


def test_summary_columns_and_rows(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxglmm.SamplingWarning)
        table = fabricate(model).summary()
    assert list(table.columns) == ["mean", "sd", "5%", "50%", "95%", "mcse_mean", "ess_bulk",
                                   "ess_tail", "r_hat"]
    assert list(table.columns) == SUMMARY_COLUMNS
    assert list(table.index) == EXPECTED_ROWS


def test_summary_with_b_names_groups(model):
    table = fabricate(model).summary(include_b=True, warn=False)
    b_rows = [f"b[{g},{z}]" for g in GROUPS for z in Z_NAMES]
    assert list(table.index) == EXPECTED_ROWS + b_rows


def test_summary_values(model):
    fit = fabricate(model, shift_mu_days=1.0)
    table = fit.summary(warn=False)
    for row, x in [("mu[Days]", fit.draws["mu"][..., 1]),
                   ("corr[Intercept,Days]", fit.draws["corr"][..., 0, 1]),
                   ("D[Intercept,Days]", fit.draws["D"][..., 0, 1]),
                   ("sd[Days]", fit.draws["sd"][..., 1])]:
        got = table.loc[row]
        np.testing.assert_allclose(got["mean"], x.mean(), rtol=1e-12)
        np.testing.assert_allclose(got["sd"], x.std(ddof=1), rtol=1e-12)
        np.testing.assert_allclose(got[["5%", "50%", "95%"]].to_numpy(float),
                                   np.quantile(x, [0.05, 0.5, 0.95]), rtol=1e-12)
        np.testing.assert_allclose(got["r_hat"], float(az.rhat(x, method="rank")), rtol=1e-8)
        np.testing.assert_allclose(got["ess_bulk"], float(az.ess(x, method="bulk")), rtol=1e-8)
        np.testing.assert_allclose(got["ess_tail"],
                                   float(az.ess(x, method="tail", prob=(0.05, 0.95))), rtol=1e-8)
        np.testing.assert_allclose(got["mcse_mean"], np.asarray(az.mcse(x, method="mean")).item(),
                                   rtol=1e-8)


def test_summary_quiet_when_chains_agree(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", jaxglmm.SamplingWarning)
        table = fabricate(model).summary()
    assert (table["r_hat"] < 1.01).all()


def test_summary_warns_naming_the_parameter_whose_chains_disagree(model):
    fit = fabricate(model, shift_mu_days=1.0)
    with pytest.warns(jaxglmm.SamplingWarning) as record:
        table = fit.summary()
    assert table.loc["mu[Days]", "r_hat"] > 1.01
    rhat_messages = [str(w.message) for w in record
                     if issubclass(w.category, jaxglmm.SamplingWarning)
                     and "R-hat" in str(w.message)]
    assert len(rhat_messages) == 1
    flagged = rhat_messages[0].split(":")[0]
    assert "mu[Days]" in flagged
    assert "mu[Intercept]" not in flagged and "sigma" not in flagged


def test_summary_warns_on_low_ess(model):
    fit = fabricate(model, shift_mu_days=1.0)
    with pytest.warns(jaxglmm.SamplingWarning) as record:
        fit.summary()
    messages = [str(w.message) for w in record if "ESS" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("bulk ESS below 100 per chain for mu[Days]:")


def test_summary_warns_on_divergences(model):
    with pytest.warns(jaxglmm.SamplingWarning, match=r"^3 divergent transitions"):
        fabricate(model, n_divergent=3).summary()


def test_summary_warn_false_is_quiet(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", jaxglmm.SamplingWarning)
        fabricate(model, shift_mu_days=1.0, n_divergent=3).summary(warn=False)
