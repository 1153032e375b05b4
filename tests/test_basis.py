"""The sampler's centred basis of the population effects (jaxglmm.basis): an exact shear.

Checked: the map to the user's coordinates has unit Jacobian (jacfwd + slogdet) and
`to_sampler` inverts it; in the sampler's coordinates the linear predictor depends on a
slope's coefficient only through the centred column (and not at all for a level covariate
absorbed by a centred term); the sampler's log density equals the user's at the mapped
point; and posteriors with basis="centred" and basis="none" agree within 4 combined MCSE.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from jax.flatten_util import ravel_pytree

import jaxglmm as jg
from jaxglmm import basis as basis_mod
from jaxglmm import diagnostics, fitting
from jaxglmm.density import linear_predictor, random_effects, unpack


def _frame(seed=0, n_id=30, m=8, centred_signal=2.0):
    """Bernoulli data: persons with an uncentred person-level covariate `age` (mean 40) and
    an observation-level covariate `dose` (mean 5), crossed with 6 items."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n_id), m)
    items = np.tile(np.arange(6), n_id * m // 6 + 1)[:n_id * m]
    age = rng.normal(40, 5, n_id)[ids]
    dose = rng.normal(5, 1, n_id * m)
    eta = (-1.0 + 0.05 * (age - 40) + 0.3 * (dose - 5)
           + rng.normal(0, centred_signal, n_id)[ids] + rng.normal(0, 0.5, 6)[items])
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "age": age, "dose": dose, "id": ids, "item": items})


def _model(centred):
    """centred None: the data choose non-centred b|id (8 rows a person) and centred b|item
    (40 rows an item), so b|item absorbs the intercept (rule 3)."""
    model = jg.GLMM("y ~ age + dose + (1 | id) + (1 | item)", _frame(), family="bernoulli",
                    centred=centred)
    if centred is None:
        assert [t.centred for t in model.spec.terms] == [False, True]
    return model


def _flat_problem(model, method="joint"):
    template = model.initial_positions(0, 1, method)[0]
    data, unravel, make_logdensity, _ = model.problem(method, template, basis="centred")
    layout, shift = fitting.sampler_basis(model.model, method, "centred")
    shift = jax.tree.map(jnp.asarray, shift)
    return template, unravel, data, make_logdensity, layout, shift


@pytest.mark.parametrize("centred", [True, False, None])
def test_shear_has_unit_jacobian_and_inverts(centred):
    model = _model(centred)
    template, unravel, _, _, layout, shift = _flat_problem(model)
    assert layout.block == "mu|id"
    assert bool(layout.levels) == (centred is True)  # age is absorbed by the centred b|id
    assert bool(layout.absorb) == (centred is None)  # the intercept by the centred b|item
    x = ravel_pytree(model.initial_position(3))[0]

    def user_flat(x):
        return ravel_pytree(basis_mod.to_user(unravel(x), layout, shift))[0]
    J = jax.jacfwd(user_flat)(x)
    sign, logdet = jnp.linalg.slogdet(J)
    assert sign == 1.0 and abs(float(logdet)) < 1e-10
    assert not np.allclose(user_flat(x), x)  # it does move something
    back = basis_mod.to_sampler(basis_mod.to_user(unravel(x), layout, shift), layout, shift)
    np.testing.assert_allclose(ravel_pytree(back)[0], x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("centred", [True, False, None])
def test_linear_predictor_sees_the_centred_design(centred):
    """d eta / d beta at fixed sampler coordinates: dose - mean(dose) always; for age,
    age - mean(age) with non-centred b, and 0 where the centred b|id absorbs it; d eta /
    d alpha is 1, or 0 where the centred b|item absorbs the intercept."""
    model = _model(centred)
    template, unravel, data, _, layout, shift = _flat_problem(model)
    model_data = data[0]
    x = ravel_pytree(model.initial_position(1))[0]

    def eta(x):
        pos = basis_mod.to_user(unravel(x), layout, shift)
        psi, _ = unpack(pos, model.spec)
        return linear_predictor(random_effects(pos, psi, model.spec), psi.beta, model_data)
    J = jax.jacfwd(eta)(x)
    names = sorted(template)
    start = sum(np.size(template[k]) for k in names[:names.index("beta")])
    age, dose = model.arrays.X[:, 0], model.arrays.X[:, 1]
    d_age, d_dose = np.asarray(J[:, start]), np.asarray(J[:, start + 1])
    np.testing.assert_allclose(d_dose, dose - dose.mean(), atol=1e-10)
    expect_age = np.zeros_like(age) if centred else age - age.mean()
    np.testing.assert_allclose(d_age, expect_age, atol=1e-10)
    mu_at = sum(np.size(template[k]) for k in names[:names.index("mu|id")])
    d_alpha = np.asarray(J[:, mu_at])
    # centred b|id: the intercept is only in the prior of b; None: b|item absorbs it
    np.testing.assert_allclose(d_alpha, 1.0 if centred is False else 0.0, atol=1e-10)


@pytest.mark.parametrize("method", ["joint", "collapsed"])
def test_sampler_log_density_is_the_users_at_the_mapped_point(method):
    if method == "joint":
        model = _model(True)
    else:
        df = jg.datasets.load_sleepstudy()
        model = jg.GLMM("Reaction ~ Days + (1 + Days | Subject)", df)
    template, unravel, data, make_logdensity, layout, shift = _flat_problem(model, method)
    assert layout.block is not None
    logdensity = make_logdensity(jax.tree.map(jnp.asarray, data))
    none_data, _, none_make, _ = model.problem(method, template, basis="none")
    user_logdensity = none_make(none_data)
    for seed in range(3):
        start = model.initial_positions(seed, 1, method)[0]
        x = ravel_pytree(basis_mod.to_sampler(start, layout, shift))[0]
        np.testing.assert_allclose(logdensity(x), user_logdensity(ravel_pytree(start)[0]),
                                   rtol=1e-12)
    if method == "joint":
        np.testing.assert_allclose(
            logdensity(x), model.logdensity_fn(basis_mod.to_user(unravel(x), layout, shift)),
            rtol=1e-12)


def test_info_records_the_basis_and_none_is_the_identity():
    model = _model(True)
    fit = model.sample(chains=1, warmup=20, draws=5, seed=0, progress=False)
    assert fit.info["basis"] == "centred"
    assert "mu|id[Intercept] + 39.39 beta[age] + 5.001 beta[dose]" in fit.info["basis_detail"]
    assert "age times beta[age]" in fit.info["basis_detail"]
    mixed = _model(None).sample(chains=1, warmup=20, draws=5, seed=0, progress=False)
    assert "; b|item + 1 times that" in mixed.info["basis_detail"]
    fit_none = model.sample(chains=1, warmup=20, draws=5, seed=0, progress=False, basis="none")
    assert fit_none.info["basis"] == "none" and fit_none.info["basis_detail"].startswith("none")
    with pytest.raises(ValueError, match="basis="):
        model.sample(chains=1, warmup=5, draws=5, basis="qr")
    # no intercept: nothing to centre
    rng = np.random.default_rng(0)
    m0 = jg.GLMM.from_arrays(rng.normal(size=40), rng.normal(size=40) + 3, np.repeat(range(8), 5))
    assert fitting.sampler_basis(m0.model, "collapsed", "centred")[0] == basis_mod.NONE


@pytest.mark.slow
def test_centred_and_user_basis_give_the_same_posterior():
    """A model whose user basis still mixes (covariate means 40 and 5 with small spread
    would not at short runs: use mild ones), sampled both ways: psi agrees within 4
    combined MCSE."""
    df = _frame(seed=2)
    df["age"] = (df["age"] - 40) / 5 + 1.5
    df["dose"] = df["dose"] - 4
    model = jg.GLMM("y ~ age + dose + (1 | id) + (1 | item)", df, family="bernoulli")
    fits = [model.sample(chains=4, warmup=1000, draws=1000, seed=3, progress=False,
                         basis=b) for b in ("centred", "none")]
    for name in ("beta", "mu|id", "sd|id", "sd|item"):
        a, b = (np.asarray(f.draws[name]).reshape(4, 1000, -1) for f in fits)
        for j in range(a.shape[-1]):
            se = np.hypot(diagnostics.mcse_mean(a[..., j]), diagnostics.mcse_mean(b[..., j]))
            z = (a[..., j].mean() - b[..., j].mean()) / se
            assert abs(z) < 4, (name, j, z)


def test_problem_is_public_and_its_log_density_is_the_models():
    """`GLMM.problem` is what a user's own sampler loop takes: in the user's basis its
    log density at a flat position equals `logdensity_fn` at the same position."""
    model = _model(False)
    with jax.enable_x64(True):
        start = model.initial_position(jax.random.key(2))
        problem = model.problem("joint", start, basis="none")
        assert isinstance(problem, jg.Problem)
        x, _ = ravel_pytree(start)
        np.testing.assert_allclose(problem.logdensity()(x), model.logdensity_fn(start),
                                   rtol=1e-12)
        draw = problem.transform(x, problem.data, jax.random.key(0))
        assert {"beta", "D|id", "D|item"} <= set(draw)


def test_initial_points_are_samples_starting_points():
    """GLMM.initial_points gives the flat x0 that sample starts from: a user's own loop on
    GLMM.problem starts at the same log density as jaxglmm's first step."""
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(6), 5)
    x = 50 + rng.normal(size=30)
    model = jg.GLMM.from_arrays(rng.integers(0, 2, 30), np.ones(30), g, X=x[:, None],
                                family="bernoulli")
    x0 = model.initial_points(seed=3, chains=2)
    starts = model.initial_positions(seed=3, chains=2, method="joint")
    problem = model.problem("joint", starts[0], basis="centred")
    layout, shift = fitting.sampler_basis(model.model, "joint", "centred")
    with jax.enable_x64(True):
        for k in range(2):
            user = basis_mod.to_user(problem.unravel(jnp.asarray(x0[k])), layout,
                                     jax.tree.map(jnp.asarray, shift))
            for name, v in starts[k].items():
                np.testing.assert_allclose(user[name], v, rtol=1e-12, atol=1e-12)
            assert float(problem.logdensity()(jnp.asarray(x0[k]))) == pytest.approx(
                float(model.logdensity_fn(starts[k])), rel=1e-10)
