"""Fit.to_arviz: ArviZ 1.x data (an xarray.DataTree) with named dims, sample stats, exact
pointwise log likelihood, posterior predictive, prior groups; ArviZ 1.x's summary, ess,
rhat, loo, compare and plots (trace, rank, forest, ppc, pair) on it; the Jupyter view."""
import warnings

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.stats  # noqa: E402
from scipy.special import expit  # noqa: E402

import jaxglmm  # noqa: E402
from jaxglmm.inference_data import posterior_dims, response_name, triangle_view  # noqa: E402

STATS = {"diverging", "tree_depth", "step_size", "acceptance_rate", "energy", "lp", "n_steps"}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def quiet(fn, *args, **kwargs):
    """Call fn with ArviZ's own warnings (Pareto k, constant corr diagonal) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def eta_draws(fit) -> np.ndarray:
    """Linear predictor of every draw (C, S, n_obs), in NumPy."""
    a, d = fit.model.arrays, fit.draws
    t, = a.terms
    eta = a.offset + np.einsum("nq,csnq->csn", t.Z, d["b"][:, :, t.cluster])
    if "beta" in d:
        eta = eta + d["beta"] @ a.X.T
    return eta


# ---------------------------------------------------------------------------- posterior


def test_posterior_has_named_dims_and_the_draws(sleep_fit):
    fit = sleep_fit
    post = fit.to_arviz(log_likelihood=False).posterior
    groups = list(fit.model.arrays.terms[0].groups)
    assert set(post.data_vars) == set(fit.draws)
    assert post["beta"].dims == ("chain", "draw", "beta_dim")
    assert post["mu"].dims == post["sd"].dims == ("chain", "draw", "re_dim")
    assert post["D"].dims == post["corr"].dims == ("chain", "draw", "re_dim", "re_dim2")
    assert post["b"].dims == ("chain", "draw", "group", "re_dim")
    assert post["sigma"].dims == post["tau"].dims == post["d"].dims == ("chain", "draw")
    assert list(post["beta_dim"].values) == ["Days2"]
    assert list(post["re_dim"].values) == list(post["re_dim2"].values) == ["Intercept", "Days"]
    assert list(post["group"].values) == groups == sorted(groups)
    for name, x in fit.draws.items():
        np.testing.assert_array_equal(post[name].values, x)
    np.testing.assert_array_equal(post["b"].sel(group=groups[3], re_dim="Days").values,
                                  fit.draws["b"][:, :, 3, 1])
    np.testing.assert_array_equal(post["D"].sel(re_dim="Days", re_dim2="Intercept").values,
                                  fit.draws["D"][..., 1, 0])


def test_include_b_false_drops_only_b(sleep_fit):
    post = sleep_fit.to_arviz(include_b=False, log_likelihood=False).posterior
    assert set(post.data_vars) == set(sleep_fit.draws) - {"b"}
    assert "group" not in post.dims


def test_posterior_dims_is_the_one_naming_place(sleep_fit, binomial_fit):
    for fit in (sleep_fit, binomial_fit):
        dims = fit.posterior_dims()
        post = fit.to_arviz(log_likelihood=False).posterior
        assert set(dims) == set(fit.draws)
        for name, (names, coords) in dims.items():
            assert post[name].dims[2:] == names
            for dim, values in coords.items():
                assert list(post[dim].values) == list(values)
    assert binomial_fit.posterior_dims()["gamma"] == (("re_dim",), {"re_dim": ["Intercept"]})


def test_posterior_dims_of_other_keys(sleep_fit):
    fit = sleep_fit
    extra = dict(fit.draws, extra=np.zeros((2, 50, 3)), **{"b|Subject": fit.draws["b"]})
    fake = jaxglmm.Fit(extra, fit.sample_stats, fit.model, fit.settings, fit.info, fit.end)
    assert posterior_dims(fake, ["extra"]) == {
        "extra": (("extra_dim_0",), {"extra_dim_0": [0, 1, 2]})}
    with pytest.raises(ValueError, match="term 'Subject'"):
        posterior_dims(fake, ["b|Subject"])
    wrong = dict(fit.draws, mu=np.zeros((2, 50, 3)))
    fake = jaxglmm.Fit(wrong, fit.sample_stats, fit.model, fit.settings, fit.info, fit.end)
    with pytest.raises(ValueError, match=r"draws\['mu'\].*3 entries.*names 2"):
        posterior_dims(fake)


def test_sample_stats_use_arviz_names(sleep_fit, binomial_fit):
    for fit in (sleep_fit, binomial_fit):
        stats = fit.to_arviz(log_likelihood=False).sample_stats
        assert set(stats.data_vars) == STATS
        assert stats["diverging"].dtype == bool
        np.testing.assert_array_equal(stats["step_size"].values,
                                      np.repeat(fit.step_size[:, None], 50 if fit is sleep_fit
                                                else 40, axis=1))
        for name in STATS - {"step_size"}:
            np.testing.assert_array_equal(stats[name].values, fit.sample_stats[name])


# ----------------------------------------------------------------------- log likelihood


def test_log_likelihood_equals_scipy_gaussian(sleep_fit):
    fit = sleep_fit
    idata = fit.to_arviz()
    ll = idata.log_likelihood["y"]
    assert ll.dims == ("chain", "draw", "obs")
    want = scipy.stats.norm.logpdf(fit.model.arrays.y, eta_draws(fit),
                                   fit.draws["sigma"][..., None])
    np.testing.assert_allclose(ll.values, want, rtol=1e-10)
    np.testing.assert_array_equal(idata.observed_data["y"].values, fit.model.arrays.y)


def test_log_likelihood_equals_scipy_binomial(binomial_fit):
    fit = binomial_fit
    a = fit.model.arrays
    idata = fit.to_arviz()
    want = scipy.stats.binom.logpmf(a.y, a.trials, expit(eta_draws(fit)))
    np.testing.assert_allclose(idata.log_likelihood["y"].values, want, rtol=1e-9)
    observed = idata.observed_data["y"].values
    assert observed.dtype.kind == "i"
    np.testing.assert_array_equal(observed, a.y)


def test_response_named_after_the_formula():
    class Model:
        formula = "Reaction ~ Days + (Days | Subject)"
    assert response_name(Model()) == "Reaction"
    Model.formula = "cbind(y, n - y) ~ x + (1 | g)"
    assert response_name(Model()) == "y"
    assert response_name(object()) == "y"


# ----------------------------------------------------------------- posterior predictive


def test_posterior_predictive_gaussian_has_the_model_spread(sleep_fit):
    fit = sleep_fit
    pp = fit.to_arviz(posterior_predictive=True, log_likelihood=False).posterior_predictive
    y_rep = pp["y"].values
    assert pp["y"].dims == ("chain", "draw", "obs") and y_rep.shape == (2, 50, 180)
    z = (y_rep - eta_draws(fit)) / fit.draws["sigma"][..., None]  # iid N(0, 1)
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * n)


def test_posterior_predictive_binomial_counts(binomial_fit):
    fit = binomial_fit
    a = fit.model.arrays
    y_rep = fit.to_arviz(posterior_predictive=True,
                         log_likelihood=False).posterior_predictive["y"].values
    assert y_rep.dtype.kind == "i"
    assert np.all((y_rep >= 0) & (y_rep <= a.trials))
    p = expit(eta_draws(fit))
    z = (y_rep - a.trials * p) / np.sqrt(a.trials * p * (1 - p))
    assert abs(z.mean()) < 5 / np.sqrt(z.size)


def test_posterior_predictive_seed(sleep_fit):
    def draw(seed):
        idata = sleep_fit.to_arviz(posterior_predictive=True, include_b=False,
                                   log_likelihood=False, seed=seed)
        return idata.posterior_predictive["y"].values
    np.testing.assert_array_equal(draw(3), draw(3))
    assert not np.array_equal(draw(3), draw(4))
    import jax
    np.testing.assert_array_equal(draw(jax.random.key(3)), draw(3))
    with pytest.raises(ValueError, match="seed: must be an integer"):
        draw(None)


# --------------------------------------------------------------------- ArviZ functions


def test_to_arviz_is_a_data_tree(sleep_fit):
    import xarray as xr
    tree = sleep_fit.to_arviz(posterior_predictive=True)
    assert isinstance(tree, xr.DataTree)
    assert set(tree.children) == {"posterior", "sample_stats", "observed_data",
                                  "log_likelihood", "posterior_predictive"}
    assert tree["posterior"]["mu"].dims == ("chain", "draw", "re_dim")


def test_arviz_summary_ess_rhat_loo_compare(sleep_fit, binomial_fit):
    for fit in (sleep_fit, binomial_fit):
        tree = fit.to_arviz()
        table = quiet(az.summary, tree, var_names=["~b"])
        assert "mu[Intercept]" in table.index and "D[Intercept, Intercept]" in table.index
        ours = fit.summary(warn=False)
        for name in ("mu[Intercept]", "sd[Intercept]"):
            np.testing.assert_allclose(float(table.loc[name, "mean"]), ours.loc[name, "mean"],
                                       rtol=1e-8)
        label = {"mu": "mu[Intercept]", "sd": "sd[Intercept]"}
        ess = az.ess(tree, var_names=["mu", "sd"], method="bulk")
        rhat = az.rhat(tree, var_names=["mu", "sd"])
        for var, row in label.items():
            np.testing.assert_allclose(float(ess[var].sel(re_dim="Intercept")),
                                       ours.loc[row, "ess_bulk"], rtol=1e-8)
            np.testing.assert_allclose(float(rhat[var].sel(re_dim="Intercept")),
                                       ours.loc[row, "r_hat"], rtol=1e-8)
        n_obs = len(fit.model.arrays.y)
        loo = quiet(az.loo, tree, pointwise=True)
        assert loo.n_data_points == n_obs and np.isfinite(loo.elpd)
        ll = tree["log_likelihood"]["y"].values.reshape(-1, n_obs)
        lppd = np.sum(np.log(np.mean(np.exp(ll), axis=0)))
        np.testing.assert_allclose(loo.p, lppd - loo.elpd, rtol=1e-8)  # p_loo's definition
        np.testing.assert_allclose(loo.elpd, float(loo.elpd_i.sum()), rtol=1e-10)
    np.testing.assert_allclose(float(table.loc["beta[x]", "mean"]),
                               binomial_fit.draws["beta"][..., 0].mean(), atol=1e-3)
    # two models of the same data: compare ranks them by elpd_loo
    df = jaxglmm.datasets.load_sleepstudy()
    other = jaxglmm.GLMM.from_arrays(df.Reaction, np.ones(len(df)), df.Subject)
    worse = other.sample(chains=2, warmup=100, draws=50, seed=1, progress=False)
    table = quiet(az.compare, {"slopes": sleep_fit.to_arviz(), "intercepts": worse.to_arviz()})
    assert list(table.index) == ["slopes", "intercepts"]
    assert table.loc["intercepts", "elpd_diff"] < -20  # the Days slope matters
    np.testing.assert_allclose(table.loc["intercepts", "elpd_diff"],
                               table.loc["intercepts", "elpd"] - table.loc["slopes", "elpd"])


def test_arviz_plots_on_the_tree(sleep_fit):
    tree = sleep_fit.to_arviz(posterior_predictive=True)
    pc = quiet(az.plot_trace_dist, tree, var_names=["mu", "sigma"])
    assert isinstance(pc, az.PlotCollection)
    quiet(az.plot_rank, tree, var_names=["sd"])
    quiet(az.plot_forest, tree, var_names=["b"])
    quiet(az.plot_ppc_dist, tree, num_samples=10)
    quiet(az.plot_pair, tree, var_names=["mu"])


# --------------------------------------------------------------------- Fit plot methods


def plotted(pc) -> set:
    """The variables a PlotCollection (or PlotMatrix) drew panels for."""
    return set(pc.viz["plot"].data_vars)


def element_labels(pc, visual: str, var_name: str) -> list:
    """The labels along the "<name>_pair" dim of one variable in one visual of `pc`."""
    da = pc.viz[visual][var_name]
    return [str(v) for v in da[f"{var_name}_pair"].values]


def test_fit_plot_methods(sleep_fit, binomial_fit):
    pc = quiet(sleep_fit.plot_trace)
    # every quantity but b, D and corr by their distinct elements
    assert plotted(pc) == {"beta", "mu", "sigma", "tau", "d", "D", "sd", "corr"}
    assert element_labels(pc, "trace", "D") == ["Intercept,Intercept", "Intercept,Days",
                                                "Days,Days"]
    assert element_labels(pc, "trace", "corr") == ["Intercept,Days"]
    assert plotted(quiet(sleep_fit.plot_rank, var_names=["mu"])) == {"mu"}
    forest = quiet(sleep_fit.plot_forest, var_names=["b"])
    assert set(forest.viz["twig"].data_vars) == {"b"}
    assert forest.viz["twig"]["b"].shape == (2, 18, 2)  # chain, group, re_dim
    assert "y" in quiet(sleep_fit.plot_ppc, num_samples=5).viz["predictive_dist"].data_vars
    pair = quiet(sleep_fit.plot_pair)  # the three distinct elements of D, against each other
    axes = pair.viz["plot"]
    assert axes.shape == (3, 3) and set(axes["var_name_x"].values) == {"D"}
    assert list(axes["D_pair_x"].values) == ["Intercept,Intercept", "Intercept,Days",
                                             "Days,Days"]
    # q = 1: corr (identically 1) is left out
    pc = quiet(binomial_fit.plot_trace)
    assert "corr" not in plotted(pc)
    assert {"beta", "mu", "D", "sd", "gamma"} <= plotted(pc)
    assert quiet(binomial_fit.plot_ppc, num_samples=5, seed=2) is not None
    with pytest.raises(ValueError, match="kind='hist'"):
        from jaxglmm.inference_data import plot
        plot(sleep_fit, "hist")


def test_prior_groups_join_the_posterior(sleep_fit):
    prior = jaxglmm.GLMM.of(sleep_fit.model).sample_prior(draws=40, seed=1)
    tree = sleep_fit.to_arviz(prior=prior)
    assert {"prior", "prior_predictive", "posterior"} <= set(tree.children)
    np.testing.assert_array_equal(tree["prior"]["sd"].values, prior["prior"]["sd"].values)
    # ArviZ stacks prior and posterior along a dim it names "group", b's dim here: without b
    small = sleep_fit.to_arviz(include_b=False, prior=jaxglmm.GLMM.of(sleep_fit.model)
                               .sample_prior(draws=40, seed=1, include_b=False))
    pc = quiet(az.plot_prior_posterior, small, var_names=["sigma"])
    assert set(pc.viz["plot"].data_vars) == {"sigma"}
    with pytest.raises(ValueError, match="prior: expected what GLMM.sample_prior returns"):
        sleep_fit.to_arviz(prior=sleep_fit.to_arviz())


def test_triangle_view_keeps_distinct_elements(sleep_fit):
    post = triangle_view(sleep_fit.to_arviz(log_likelihood=False)["posterior"].to_dataset())
    assert list(post["D_pair"].values) == ["Intercept,Intercept", "Intercept,Days",
                                           "Days,Days"]
    assert list(post["corr_pair"].values) == ["Intercept,Days"]
    np.testing.assert_array_equal(post["D"].sel(D_pair="Intercept,Days").values,
                                  sleep_fit.draws["D"][..., 0, 1])
    np.testing.assert_array_equal(post["corr"].values[..., 0],
                                  sleep_fit.draws["corr"][..., 0, 1])


# ----------------------------------------------------------------------- display


def test_repr_html_and_short_repr(sleep_fit):
    page = sleep_fit._repr_html_()
    assert page.count("<table") == 1 and "mu[Intercept]" in page
    assert "collapsed" in page and "2 chains x 50 draws" in page and "divergences" in page
    assert "Omega ~ Wishart" in page and "tau ~ Gamma(1, d)" in page
    text = repr(sleep_fit)
    assert "\n" not in text and len(text) < 120 and str(sleep_fit) == text


# ------------------------------------------------------- several random-effect terms


@pytest.fixture(scope="module")
def crossed_fit():
    """A tiny joint fit of a formula with two crossed terms (Subject, and the day of the
    week cycle "g2"): 2 chains x 20 draws after 60 warmup."""
    df = jaxglmm.datasets.load_sleepstudy()
    df["g2"] = (df.Days % 3).map({0: "a", 1: "b", 2: "c"})
    model = jaxglmm.GLMM("Reaction ~ 1 + Days + (1 | Subject) + (1 | g2)", df)
    return model.sample(chains=2, warmup=60, draws=20, seed=2, progress=False)


def test_several_terms_log_likelihood_and_predictive(crossed_fit):
    fit = crossed_fit
    idata = fit.to_arviz(posterior_predictive=True)
    a, d = fit.model.arrays, fit.draws
    eta = d["beta"] @ a.X.T
    for term, key in zip(a.terms, ("b|Subject", "b|g2")):
        eta = eta + np.einsum("nq,csnq->csn", term.Z, d[key][:, :, term.cluster])
    want = scipy.stats.norm.logpdf(a.y, eta, d["sigma"][..., None])
    np.testing.assert_allclose(idata.log_likelihood["Reaction"].values, want, rtol=1e-9)
    assert idata.posterior_predictive["Reaction"].shape == (2, 20, len(a.y))
    quiet(fit.plot_forest, var_names=["b|g2"])

