"""sample_many: one compiled program for many data sets equals separate sample calls (bit for
bit one after the other; to rounding vectorized), ragged data sets padded exactly, the
FitBatch interface, and clear errors for data sets that do not fit the model."""
import warnings

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxglmm
from jaxglmm.many import padded_data

FORMULA = "y ~ w + x + (1 + x | g)"
RUN = dict(chains=2, warmup=60, draws=30)


def _design(seed=0, N=8, m=5):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"w": rng.normal(size=N * m), "x": rng.normal(size=N * m),
                         "g": np.repeat([f"c{k}" for k in range(N)], m)})


@pytest.fixture(scope="module")
def poisson_case():
    df = _design()
    df["y"] = np.arange(len(df)) % 3
    priors = jaxglmm.Priors(beta=jaxglmm.Normal(0.0, 0.5), mu=jaxglmm.Normal((1.0, 0.0), 0.5),
                            omega=jaxglmm.Wishart(4.0, 0.5))
    model = jaxglmm.GLMM(FORMULA, df, family="poisson", priors=priors)
    ys = model.sample_prior(draws=4, seed=1)["prior_predictive"]["y"].values[0]
    return model, ys


def _separate(model, datasets, k, seed, **options):
    one = jaxglmm.GLMM.of(jaxglmm.batch_models(model.model, datasets)[k])
    return one.sample(seed=seed, progress=False, **options)


def test_sequential_equals_separate_calls_bit_for_bit(poisson_case):
    model, ys = poisson_case
    batch = model.sample_many(ys, seed=10, batch_method="sequential", progress=False, **RUN)
    assert len(batch) == 4 and batch.info["programs"] == 1
    for k in range(4):
        fit = _separate(model, ys, k, 10 + k, **RUN)
        assert fit.draws.keys() == batch[k].draws.keys()
        for name in fit.draws:
            np.testing.assert_array_equal(batch[k].draws[name], fit.draws[name], err_msg=name)
        for name in fit.sample_stats:
            np.testing.assert_array_equal(batch[k].sample_stats[name], fit.sample_stats[name])
        np.testing.assert_array_equal(batch[k].step_size, fit.step_size)
        np.testing.assert_array_equal(batch[k].inverse_mass_matrix, fit.inverse_mass_matrix)
        np.testing.assert_array_equal(batch[k].model.arrays.y, ys[k])
        assert batch[k].settings.seed == 10 + k


def test_sub_batches_and_explicit_seeds(poisson_case):
    """batch_size=3 splits 4 data sets into two equal programs' worth (2 + 2); seeds given
    per data set are used as given."""
    model, ys = poisson_case
    seeds = [5, 1, 7, 3]
    batch = model.sample_many(ys, seed=seeds, batch_size=3, batch_method="sequential",
                              progress=False, thin=2, keep_b=False, **RUN)
    assert batch.info["programs"] == 2 and batch[0].info["batch_size"] == 2
    fit = _separate(model, ys, 3, 3, thin=2, keep_b=False, **RUN)
    assert "b" not in batch[3].draws and batch[3].draws["beta"].shape == (2, 15, 1)
    for name in fit.draws:
        np.testing.assert_array_equal(batch[3].draws[name], fit.draws[name])


def test_odd_sub_batch_is_padded_with_dropped_repeats(poisson_case):
    model, ys = poisson_case
    batch = model.sample_many(ys[:3], seed=0, batch_size=2, batch_method="sequential",
                              progress=False, chains=1, warmup=20, draws=10)
    assert len(batch) == 3 and batch.info["programs"] == 2
    fit = _separate(model, ys[:3], 2, 2, chains=1, warmup=20, draws=10)
    np.testing.assert_array_equal(batch[2].draws["beta"], fit.draws["beta"])


def test_vectorized_equals_separate_calls_to_rounding(poisson_case):
    """vmapped data sets round batched sums differently; over a short run the draws agree
    to rounding (NUTS then amplifies the differences: long runs agree in distribution)."""
    model, ys = poisson_case
    short = dict(chains=2, warmup=10, draws=5)
    batch = model.sample_many(ys, seed=0, batch_method="vectorized", progress=False, **short)
    assert batch[0].info["batch_method"] == "vectorized"
    for k in (0, 3):
        fit = _separate(model, ys, k, k, **short)
        for name in ("beta", "mu", "sd", "b"):
            np.testing.assert_allclose(batch[k].draws[name], fit.draws[name], rtol=1e-8,
                                       atol=1e-10, err_msg=name)


def test_padded_rows_add_exactly_nothing():
    """A data set padded with weight-0 copies of its first row has the same log density and
    gradient at any point (joint sampler, every family kind: counts and continuous)."""
    df = _design(3)
    df["y"] = np.random.default_rng(4).gamma(2.0, size=len(df))
    for family in ("gamma", "gaussian"):
        model = jaxglmm.GLMM(FORMULA, df, family=family)
        with jax.enable_x64(True):
            problem = model.problem("joint", model.initial_position(0))
            data, basis_shift = problem.data
            padded = (padded_data(data, data.y.shape[0] + 7), basis_shift)
            assert padded[0].weights.shape == (data.y.shape[0] + 7,)
            for seed in range(3):
                x = jnp.asarray(jax.flatten_util.ravel_pytree(model.initial_position(seed))[0])
                v0, g0 = jax.value_and_grad(problem.make_logdensity(problem.data))(x)
                v1, g1 = jax.value_and_grad(problem.make_logdensity(padded))(x)
                np.testing.assert_allclose(v1, v0, rtol=1e-12)
                np.testing.assert_allclose(g1, g0, rtol=1e-10, atol=1e-12)


def test_ragged_frames_share_one_program():
    """Data frames with rows left out (every cluster kept) run in one padded program; the
    collapsed sampler needs no padding (its statistics have the clusters' shape) and stays
    bit for bit equal to separate calls; data with other numbers of levels get their own."""
    df = _design(5)
    rng = np.random.default_rng(6)
    df["y"] = rng.normal(size=len(df)) + df["x"]
    model = jaxglmm.GLMM(FORMULA, df)
    frames = [df, df.drop(index=[1, 7]), df.drop(index=[3])]
    before = [f.copy() for f in frames]
    run = dict(chains=2, warmup=40, draws=20)
    joint = model.sample_many(frames, method="joint", seed=0, progress=False, **run)
    assert joint.info["programs"] == 1
    assert [f.info["padded_rows"] for f in joint] == [0, 2, 1]
    assert [f.model.arrays.y.shape[0] for f in joint] == [40, 38, 39]
    collapsed = model.sample_many(frames, method="collapsed", seed=0, progress=False, **run)
    assert [f.info["padded_rows"] for f in collapsed] == [0, 0, 0]
    for k in range(3):
        fit = _separate(model, frames, k, k, method="collapsed", **run)
        np.testing.assert_array_equal(collapsed[k].draws["sd"], fit.draws["sd"])
    for f, b in zip(frames, before):
        pd.testing.assert_frame_equal(f, b)
    fewer = df[df["g"] != "c0"]
    two = model.sample_many([df, fewer], seed=0, progress=False, **run)
    assert two.info["programs"] == 2 and len(two[1].model.arrays.terms[0].groups) == 7


def test_fit_batch_interface(poisson_case):
    model, ys = poisson_case
    ys_before = ys.copy()
    batch = model.sample_many(ys[:2], seed=0, progress=False, **RUN)
    np.testing.assert_array_equal(ys, ys_before)
    assert batch.draws("beta").shape == (2, 2, 30, 1)
    np.testing.assert_array_equal(batch.num_divergences,
                                  [f.num_divergences for f in batch])
    diag = batch.diagnostics()
    assert list(diag.index) == [0, 1]
    assert {"divergences", "max_r_hat", "min_ess_bulk", "min_ess_tail"} <= set(diag.columns)
    table = batch.summary()
    assert table.index.names == ["data_set", "quantity"]
    assert table.loc[(1, "beta[w]"), "mean"] == pytest.approx(
        batch[1].draws["beta"][..., 0].mean())
    assert "2 data sets x 2 chains x 30 draws" in batch.summary_line()
    longer = batch[1].extend(10, progress=False)
    assert longer.draws["beta"].shape == (2, 40, 1)
    idata = batch[0].to_arviz()
    assert "posterior" in idata.children
    # the priors are the model's, as resolved from its own data, in every fit
    assert batch[1].model.priors == model.priors
    assert "FitBatch(2 fits" in repr(batch)


def test_bad_data_sets_are_named(poisson_case):
    model, ys = poisson_case
    with pytest.raises(ValueError, match=r"datasets\[1\]: a response needs the model's 40"):
        model.sample_many([ys[0], ys[1][:-1]], progress=False, **RUN)
    bad = ys.copy()
    bad[2, 5] = -1.0
    with pytest.raises(ValueError, match=r"datasets\[2\]: .*row 5"):
        model.sample_many(bad, progress=False, **RUN)
    with pytest.raises(ValueError, match=r"datasets: is empty"):
        model.sample_many([], progress=False)
    with pytest.raises(ValueError, match=r"datasets: must be a list of data frames"):
        model.sample_many(model.data, progress=False)
    with pytest.raises(ValueError, match=r"datasets\[1\]: mixes"):
        model.sample_many([model.data, ys[0]], progress=False)
    with pytest.raises(ValueError, match=r"datasets: an array of responses must be"):
        model.sample_many(ys[0], progress=False)
    with pytest.raises(ValueError, match=r"batch_method='fast' is unknown"):
        model.sample_many(ys, batch_method="fast", progress=False)
    with pytest.raises(ValueError, match=r"batch_size: must be an integer >= 1"):
        model.sample_many(ys, batch_size=0, progress=False)
    with pytest.raises(ValueError, match=r"seed: .*one seed per data set \(4\)"):
        model.sample_many(ys, seed=[1, 2], progress=False)
    frame = model.data.drop(columns=["w"])
    with pytest.raises(ValueError, match=r"datasets\[0\]: .*w"):
        model.sample_many([frame], progress=False)
    arrays_model = jaxglmm.GLMM.from_arrays(ys[0], np.ones(40), model.data["g"],
                                            family="poisson")
    with pytest.raises(ValueError, match="data frames need a model built from a formula"):
        arrays_model.sample_many([model.data], progress=False)
    weighted = jaxglmm.GLMM(FORMULA, model.data.assign(wt=2.0), family="poisson",
                            weights="wt")
    with pytest.raises(ValueError, match="weights: the model has observation weights"):
        weighted.sample_many([model.data.assign(wt=2.0)], progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = weighted.sample_many([model.data.assign(wt=2.0)], weights="wt", progress=False,
                                  chains=1, warmup=5, draws=2)
    np.testing.assert_array_equal(ok[0].model.arrays.weights, 2.0)
