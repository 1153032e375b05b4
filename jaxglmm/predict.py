"""Predictions for new data from a fitted formula model (DESIGN.md section 5).

For every posterior draw: eta = offset + X_new beta + sum_k z_k' b_k[level] (the formula's
offset() terms evaluated on the new rows), where a level seen in the
fit uses its b draws and an unseen one (groups="new") a fresh b ~ N(mu_k, D_k) drawn per
posterior draw; then the mean h(eta) (kind="mean"), eta itself (kind="link") or one y from
the family (kind="response").
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .density import ModelData, linear_predictor
from .formula import NAMESPACE, evaluate, group_labels, offset_values
from .formula_syntax import response_columns
from .keys import as_key

KINDS = ("mean", "link", "response")
GROUPS = ("existing", "new")


def _design_for(expression: str, train: pd.DataFrame, new: pd.DataFrame, what: str):
    """formulae's design of `expression` built on the training rows, evaluated on `new`:
    (matrix (n_new, k), column names). Categorical levels are the training ones."""
    from formulae import design_matrices

    dm = design_matrices(expression, train, na_action="error", extra_namespace=NAMESPACE)
    if dm.common is None:
        return np.zeros((len(new), 0)), ()
    try:
        frame = dm.common.evaluate_new_data(new).as_dataframe()
    except Exception as err:
        raise ValueError(f"newdata: cannot evaluate the {what} {expression!r}: {err}") from None
    return np.asarray(frame, dtype=float), tuple(str(c) for c in frame.columns)


def _check_newdata(model, newdata) -> pd.DataFrame:
    if model.design is None:
        if model.formula is not None:
            raise ValueError("predict: this jaxglmm parses the saved formula "
                             f"{model.formula!r} into other model arrays than the fit's; "
                             "refit the model to predict.")
        raise ValueError("predict: needs a model built from a formula (GLMM(formula, data)); "
                         "this one was built from arrays.")
    if not isinstance(newdata, pd.DataFrame):
        raise ValueError(f"newdata: must be a pandas DataFrame, got {type(newdata).__name__}.")
    if newdata.empty:
        raise ValueError("newdata: is empty.")
    design = model.design
    response_cols = set(response_columns(design.response))
    needed = [c for c in model.data.columns if c not in response_cols]
    missing = [c for c in needed if c not in newdata.columns]
    if missing:
        raise ValueError(f"newdata: has no column {missing[0]!r}, which the formula uses; it "
                         f"needs {', '.join(map(repr, needed))}.")
    frame = newdata[needed].copy()
    na = frame.isna().any(axis=1).to_numpy()
    if na.any():
        cols = [c for c in needed if frame[c].isna().any()]
        raise ValueError(f"newdata: {int(na.sum())} rows have missing values (columns "
                         f"{', '.join(map(repr, cols))}; first at row {int(np.flatnonzero(na)[0])}).")
    return frame.reset_index(drop=True)


def _trials(model, newdata: pd.DataFrame) -> np.ndarray:
    """Binomial trials of the new rows, from the formula's response columns."""
    kind, *cols = model.design.response
    if kind == "cbind_expr":
        needed = response_columns(model.design.response)
        if all(c in newdata for c in needed):
            return sum(evaluate(e, newdata, "response") for e in cols)
        raise ValueError(f"newdata: binomial predictions need the number of trials: columns "
                         f"{', '.join(map(repr, needed))} (cbind({cols[0]}, {cols[1]})).")
    if kind == "trials" and cols[1] in newdata:
        return newdata[cols[1]].to_numpy(float)
    if kind == "cbind" and all(c in newdata for c in cols):
        return newdata[cols[0]].to_numpy(float) + newdata[cols[1]].to_numpy(float)
    need = repr(cols[1]) if kind == "trials" else f"{cols[0]!r} and {cols[1]!r}"
    raise ValueError(f"newdata: binomial predictions need the number of trials: column {need}.")


def _levels(fit, new: pd.DataFrame, tf, term, ts, groups: str, key):
    """(b draws (C, S, N + M, q), index (n_new,) into them) of one term: the fitted levels'
    b, then a fresh b ~ N(mu, D) per draw for each of the M levels unseen in the fit."""
    labels = group_labels(new, tf.factors, tf.name)
    index = {level: i for i, level in enumerate(term.groups)}
    codes = np.array([index.get(v, -1) for v in labels])
    unseen = codes < 0
    if unseen.any() and groups == "existing":
        row = int(np.flatnonzero(unseen)[0])
        raise ValueError(f"newdata: level {labels[row]!r} of grouping factor {tf.name!r} "
                         f"(row {row}) was not in the fitted data; pass groups='new' to "
                         "draw its random effects from N(mu, D).")
    b = np.asarray(fit.draws["b" + ts.key])                     # (C, S, N, q)
    if not unseen.any():
        return b, codes
    new_levels, new_codes = np.unique(labels[unseen].astype(str), return_inverse=True)
    chains, draws = b.shape[:2]
    eps = np.asarray(jax.random.normal(key, (chains, draws, len(new_levels), ts.q)))
    L = np.linalg.cholesky(fit.draws["D" + ts.key])             # (C, S, q, q)
    mu = np.zeros((chains, draws, ts.q))
    if ts.mu_free:
        mu[..., list(ts.mu_free)] = fit.draws["mu" + ts.key]
    fresh = mu[:, :, None, :] + np.einsum("csij,cslj->csli", L, eps)
    codes = codes.copy()
    codes[unseen] = len(term.groups) + new_codes
    return np.concatenate([b, fresh], axis=2), codes


def linear_predictor_draws(fit, newdata: pd.DataFrame, groups: str = "existing",
                           seed=0) -> np.ndarray:
    """eta draws for the rows of `newdata`, (chains, draws, n_new): the model's
    `jaxglmm.density.linear_predictor` at every draw, on the new rows' designs."""
    if groups not in GROUPS:
        raise ValueError(f"groups={groups!r} is unknown; choose 'existing' or 'new'.")
    model, d = fit.model, fit.draws
    design = model.design
    new = _check_newdata(model, newdata)
    train = model.data
    X_full, x_names = _design_for(design.fixed, train, new, "fixed part")
    X = X_full[:, [x_names.index(n) for n in model.arrays.x_names]]
    chains, draws = fit.sample_stats["diverging"].shape
    key = as_key(seed)
    b_draws, terms = [], []
    for tf, term, ts in zip(design.terms, model.arrays.terms, model.spec.terms):
        Z, _ = _design_for(tf.expr, train, new, f"term ({tf.expr} | {tf.name})")
        key, sub = jax.random.split(key)
        b, codes = _levels(fit, new, tf, term, ts, groups, sub)
        b_draws.append(b.reshape((chains * draws,) + b.shape[2:]))
        terms.append((Z, codes))
    beta = d["beta"].reshape(chains * draws, -1) if "beta" in d else np.zeros((chains * draws, 0))
    with jax.enable_x64(True):
        offset = offset_values(design.offsets, new)
        data = ModelData(y=jnp.zeros(len(new)), X=jnp.asarray(X), trials=jnp.ones(len(new)),
                         offset=jnp.zeros(len(new)) if offset is None else jnp.asarray(offset),
                         weights=None,
                         log_base=jnp.zeros(()),
                         terms=tuple((jnp.asarray(Z), jnp.asarray(c)) for Z, c in terms))
        eta = jax.vmap(lambda b, beta: linear_predictor(b, beta, data))(
            tuple(jnp.asarray(b) for b in b_draws), jnp.asarray(beta))
    return np.asarray(eta).reshape(chains, draws, len(new))


def predict(fit, newdata: pd.DataFrame, kind: str = "mean", groups: str = "existing",
            summary: bool = False, seed=0):
    """Posterior predictions for the rows of `newdata` (see `Fit.predict`)."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is unknown; choose one of {', '.join(map(repr, KINDS))}.")
    key = as_key(seed)
    k_groups, k_y = jax.random.split(key)
    eta = linear_predictor_draws(fit, newdata, groups, k_groups)
    family = fit.model.spec.family
    with jax.enable_x64(True):
        eta_j = jnp.asarray(eta)
        extra = {k: jnp.asarray(v)[..., None]  # the family's nu or zi, (C, S, 1)
                 for k, v in family.extra_values(fit.draws, eta.shape[:2]).items()}
        if kind == "link":
            out = eta
        elif kind == "mean":
            out = np.asarray(family.mean(eta_j, extra))
            if family.has_trials:
                out = out * _trials(fit.model, newdata)
        else:
            trials = _trials(fit.model, newdata) if family.has_trials else np.ones(eta.shape[-1])
            tau = jnp.asarray(fit.draws["tau"])[..., None] if "tau" in fit.draws \
                else jnp.ones(eta.shape[:2] + (1,))
            out = np.asarray(family.sample(k_y, eta_j, tau, jnp.asarray(trials), extra))
    if not summary:
        return out
    flat = out.reshape(-1, out.shape[-1])
    q05, q50, q95 = np.quantile(flat, [0.05, 0.5, 0.95], axis=0)
    return pd.DataFrame({"mean": flat.mean(0), "sd": flat.std(0, ddof=1), "5%": q05,
                         "50%": q50, "95%": q95}, index=newdata.index)
