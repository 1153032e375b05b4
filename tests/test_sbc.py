"""Built-in simulation-based calibration: the simultaneous ECDF test holds its level and has
power, `sbc` ranks the right quantities, passes for every family (slow) and fails on a
deliberately mis-specified prior scale."""
import numpy as np
import pytest

import jaxglmm
import sbc_study
from jaxglmm.sbc import chi_square_p, ecdf_test

FORMULA = sbc_study.FORMULA
FAMILIES = sbc_study.FAMILIES
model_of, design = sbc_study.model_of, sbc_study.design


def test_ecdf_test_holds_its_level():
    """Uniform ranks: the 5% test rejects about 5% of 300 studies (binomial sd 1.3%)."""
    rng = np.random.default_rng(1)
    L, n = 49, 100
    p = np.array([ecdf_test(rng.integers(0, L + 1, n), L, alpha=0.05, simulations=500,
                            seed=k)["p_value"] for k in range(300)])
    assert 0.015 <= np.mean(p <= 0.05) <= 0.09
    assert 0.4 <= np.mean(p) <= 0.6


@pytest.mark.parametrize("kind", ["overdispersed", "underdispersed", "biased"])
def test_ecdf_test_has_power(kind):
    """Ranks of a posterior too wide (piled in the middle), too narrow (U-shaped) or shifted
    (skewed) are rejected; the band then leaves the ECDF outside."""
    rng = np.random.default_rng(2)
    L, n = 99, 200
    a, b = {"overdispersed": (3.0, 3.0), "underdispersed": (0.5, 0.5),
            "biased": (1.6, 1.0)}[kind]
    ranks = rng.binomial(L, rng.beta(a, b, n))
    test = ecdf_test(ranks, L, alpha=0.01)
    assert test["p_value"] < 0.001 and not test["inside"]
    assert chi_square_p(ranks, L) < 0.01
    assert test["z"].shape == test["lower"].shape == test["ecdf_diff"].shape == (99,)


def test_sbc_structure_small():
    """A small study: ranks of every psi scalar except the monotone duplicates (sigma of
    tau, D's elements of sd and corr), in 0..L, with the plot and the tests' table."""
    model = model_of("gaussian")
    result = jaxglmm.sbc(model, replications=8, chains=2, warmup=40, draws=20, thin=2,
                         seed=3, progress=False)
    assert list(result.ranks.columns) == ["beta[w]", "mu[Intercept]", "mu[x]", "tau",
                                          "sd[Intercept]", "sd[x]", "corr[Intercept,x]"]
    assert result.L == 20 and result.ranks.shape == (8, 7)
    assert result.ranks.to_numpy().min() >= 0 and result.ranks.to_numpy().max() <= 20
    assert list(result.tests.columns) == ["ecdf_p", "chi2_p", "inside", "mean_rank"]
    assert result.divergences.shape == (8,)
    fig = result.plot()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 7
    assert "SBCResult(8 replicates" in repr(result)
    # the truths are the prior draws: tau > 0, correlations in (-1, 1)
    assert (result.truth["tau"] > 0).all() and (result.truth["corr[Intercept,x]"].abs() < 1).all()
    with pytest.raises(ValueError, match="replications: must be an integer >= 2"):
        jaxglmm.sbc(model, replications=1)
    with pytest.raises(ValueError, match="fit_priors: must be a jaxglmm.Priors"):
        jaxglmm.sbc(model, replications=4, fit_priors="wide", progress=False)
    with pytest.warns(UserWarning, match="flat"):
        flat = jaxglmm.GLMM(FORMULA, design("gaussian"),
                            priors=jaxglmm.Priors(beta=jaxglmm.Flat()))
    with pytest.raises(ValueError, match="flat"):
        jaxglmm.sbc(flat, replications=4, progress=False)


SLOW_RUN = dict(replications=200, chains=1, warmup=150, draws=200, thin=2)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_sbc_passes_for_every_family(family):
    """200 prior draws per family, each fitted (1 chain x 150/200, ranks among 100 thinned
    draws): every quantity's ECDF test passes at the family-wise 1% level (Bonferroni)."""
    result = jaxglmm.sbc(model_of(family), seed=11, progress=False, **SLOW_RUN)
    assert result.info["fitted"] >= 195, result.failed
    assert result.passed, result.tests


@pytest.mark.slow
def test_sbc_fails_on_a_misspecified_prior_scale():
    """Truths drawn with beta ~ N(0, 1) but fitted with beta ~ N(0, 0.15^2): the posterior of
    beta is pulled to 0, the ranks of large true effects pile at the ends, and the test
    detects it (the correctly specified poisson study passes: test_sbc_passes_for_every_family)."""
    truth_model = model_of("poisson", beta_scale=1.0)
    wrong = sbc_study.wrong_priors("poisson")
    run = dict(SLOW_RUN, replications=100)
    bad = jaxglmm.sbc(truth_model, fit_priors=wrong, seed=5, progress=False, **run)
    assert not bad.passed
    assert bad.tests.loc["beta[w]", "ecdf_p"] < 0.001
