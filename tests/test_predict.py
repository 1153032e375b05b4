"""Fit.predict: existing and new levels, kinds, and its errors."""
import warnings

import numpy as np
import pandas as pd
import pytest

import jaxglmm
import catalogue


@pytest.fixture(scope="module")
def sleep_fit():
    df = jaxglmm.datasets.load_sleepstudy()
    model = jaxglmm.GLMM("Reaction ~ Days + (1 + Days | Subject)", df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.sample(chains=2, warmup=200, draws=200, progress=False)


@pytest.fixture(scope="module")
def cbpp_fit():
    df = pd.read_csv(catalogue.bench_root() / "data" / "cbpp.csv")
    model = jaxglmm.GLMM("incidence/size ~ C(period) + (1 | herd)", df, family="binomial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return df, model.sample(chains=2, warmup=200, draws=100, progress=False)


def test_existing_levels_use_their_b(sleep_fit):
    new = pd.DataFrame({"Days": [0.0, 3.0, 9.0], "Subject": [308, 309, 308]})
    got = sleep_fit.predict(new)
    b = sleep_fit.draws["b"]
    groups = list(sleep_fit.model.arrays.terms[0].groups)
    for row, (days, subject) in enumerate(zip(new.Days, new.Subject)):
        i = groups.index(subject)
        np.testing.assert_allclose(got[..., row], b[..., i, 0] + days * b[..., i, 1])
    np.testing.assert_array_equal(sleep_fit.predict(new, kind="link"), got)
    table = sleep_fit.predict(new, summary=True)
    assert list(table.columns) == ["mean", "sd", "5%", "50%", "95%"]
    np.testing.assert_allclose(table["mean"], got.reshape(-1, 3).mean(0))


def test_new_levels_draw_from_the_population(sleep_fit):
    new = pd.DataFrame({"Days": [5.0] * 2, "Subject": [308, 1000]})
    got = sleep_fit.predict(new, groups="new", seed=1)
    mu = sleep_fit.draws["mu"]
    pop = mu[..., 0] + 5.0 * mu[..., 1]
    # a new subject's prediction is centred on the population line and wider than it
    se = got[..., 1].std() / np.sqrt(got[..., 1].size / 4)
    assert abs(got[..., 1].mean() - pop.mean()) < 5 * se
    assert got[..., 1].std() > 2 * pop.std()
    # the seen level is unchanged by groups="new"
    np.testing.assert_allclose(got[..., 0], sleep_fit.predict(new.iloc[:1])[..., 0])
    # reproducible with the seed, different with another
    np.testing.assert_array_equal(got, sleep_fit.predict(new, groups="new", seed=1))
    assert not np.array_equal(got, sleep_fit.predict(new, groups="new", seed=2))


def test_response_draws_spread_by_sigma(sleep_fit):
    new = pd.DataFrame({"Days": [4.0] * 400, "Subject": [310] * 400})
    y = sleep_fit.predict(new, kind="response")
    mean = sleep_fit.predict(new.iloc[:1])[..., 0]
    resid = y - mean[..., None]
    sigma = np.sqrt(np.mean(sleep_fit.draws["sigma"] ** 2))
    assert resid.std() == pytest.approx(sigma, rel=0.05)


def test_binomial_mean_counts_and_response(cbpp_fit):
    df, fit = cbpp_fit
    new = df.iloc[:5]
    mean = fit.predict(new)
    p = fit.predict(new, kind="link")
    np.testing.assert_allclose(mean, new["size"].to_numpy() / (1 + np.exp(-p)))
    y = fit.predict(new, kind="response")
    assert np.all((y >= 0) & (y <= new["size"].to_numpy())) and np.all(y == np.round(y))
    with pytest.raises(ValueError, match="number of trials: column 'size'"):
        fit.predict(new.drop(columns="size"), kind="mean")


def test_predict_errors(sleep_fit):
    with pytest.raises(ValueError, match="no column 'Days'"):
        sleep_fit.predict(pd.DataFrame({"Subject": [308]}))
    with pytest.raises(ValueError, match="level 999 of grouping factor 'Subject' \\(row 1\\)"):
        sleep_fit.predict(pd.DataFrame({"Days": [1.0, 2.0], "Subject": [308, 999]}))
    with pytest.raises(ValueError, match="1 rows have missing values"):
        sleep_fit.predict(pd.DataFrame({"Days": [1.0, np.nan], "Subject": [308, 308]}))
    with pytest.raises(ValueError, match="kind="):
        sleep_fit.predict(pd.DataFrame({"Days": [1.0], "Subject": [308]}), kind="prob")
    with pytest.raises(ValueError, match="groups="):
        sleep_fit.predict(pd.DataFrame({"Days": [1.0], "Subject": [308]}), groups="all")


def test_arrays_model_cannot_predict_from_a_frame():
    rng = np.random.default_rng(0)
    m = jaxglmm.GLMM.from_arrays(rng.normal(size=20), np.ones(20), np.repeat([0, 1], 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = m.sample(chains=1, warmup=20, draws=10, progress=False)
    with pytest.raises(ValueError, match="needs a model built from a formula"):
        fit.predict(pd.DataFrame({"x": [1.0]}))
