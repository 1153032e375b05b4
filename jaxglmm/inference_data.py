"""A Fit as ArviZ 1.x data (an `xarray.DataTree`), and ArviZ's plots of it (pure functions
of a Fit).

ArviZ 1.x (arviz-base, arviz-stats, arviz-plots) works on an `xarray.DataTree` whose child
groups follow its InferenceData schema; the groups built here (DESIGN.md section 5):

    posterior            every natural-scale draw with named dims (coefficient names, levels)
    sample_stats         diverging, tree_depth, step_size, acceptance_rate, energy, lp, n_steps
    observed_data        the response, dims ("obs",)
    log_likelihood       log p(y_ij | b_i, beta, tau) per observation, (chain, draw, obs)
    posterior_predictive (on request) one y draw per posterior draw from the family's `sample`

ALL naming of dims and coordinates lives in `posterior_dims` (and `_axis` below), derived from
the draws' keys and the model's names, so that several random-effect terms (draws keyed like
"b|Subject") need changes in that one place only.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .density import linear_predictor, weighted
from .keys import as_key
from .sensitivity import log_prior_draws

# axes of each natural-scale quantity after (chain, draw), by kind:
#   "x": fixed-effect columns, "z"/"z2": random-effect columns (rows/columns of a q x q
#   matrix), "group": levels of the grouping factor
AXES = {
    "beta": ("x",),
    "mu": ("zmu",), "sd": ("z",), "gamma": ("z",),
    "D": ("z", "z2"), "corr": ("z", "z2"),
    "b": ("group", "z"),
    "sigma": (), "tau": (), "d": (), "nu": (), "zi": (),
}
OBS_DIM = "obs"
# kind -> the arviz-plots function drawing it ("trace": draws and marginal densities, what
# arviz 0.x's plot_trace drew; "pair": the distinct elements of D, of each term)
PLOT_FUNCTIONS = {"trace": "plot_trace_dist", "rank": "plot_rank", "forest": "plot_forest",
                  "ppc": "plot_ppc_dist", "pair": "plot_pair"}
PLOT_KINDS = tuple(PLOT_FUNCTIONS)


def _split_term(key: str) -> tuple[str, str | None]:
    """"b|Subject" -> ("b", "Subject"); "b" -> ("b", None)."""
    base, _, term = key.partition("|")
    return base, (term or None)


def _axis(kind: str, term: str | None, model) -> tuple[str, list]:
    """Dim name and coordinate values of one axis kind ("zmu": the random-effect columns
    with a mean parameter), for one random-effect term (None: the only one)."""
    arrays = model.arrays
    if kind == "x":
        return "beta_dim", list(arrays.x_names)
    keys = [ts.key for ts in model.spec.terms]
    key = "" if term is None else f"|{term}"
    if key not in keys:
        raise ValueError(f"draws key with term {term!r}: the model's random-effect terms "
                         f"are {', '.join(repr(k[1:]) for k in keys if k) or 'one unnamed'}.")
    k = keys.index(key)
    t, ts = arrays.terms[k], model.spec.terms[k]
    if kind == "z":
        return f"re_dim{key}", list(t.z_names)
    if kind == "zmu":
        if len(ts.mu_free) == t.Z.shape[1]:
            return f"re_dim{key}", list(t.z_names)
        return f"mu_dim{key}", [t.z_names[j] for j in ts.mu_free]
    if kind == "z2":
        return f"re_dim2{key}", list(t.z_names)
    if kind == "group":
        return f"group{key}", list(t.groups)
    raise ValueError(f"unknown axis kind {kind!r}")  # pragma: no cover - AXES is fixed


def posterior_dims(fit, names=None) -> dict[str, tuple[tuple[str, ...], dict[str, list]]]:
    """Dims and coordinates of every posterior variable, after (chain, draw).

    Args:
        fit: a `Fit`.
        names: draws keys to describe (default: all of `fit.draws`).
    Returns:
        {name: (dims, coords)}, e.g. "b": (("group", "re_dim"), {"group": [308, ...],
        "re_dim": ["Intercept", "Days"]}). A key not in `AXES` gets ArviZ-style dims
        "<name>_dim_<k>" with integer coordinates.
    Raises:
        ValueError: a draw whose shape does not match the model's names.
    """
    out = {}
    for name in (fit.draws if names is None else names):
        shape = np.shape(fit.draws[name])[2:]
        base, term = _split_term(name)
        if base in AXES and len(AXES[base]) == len(shape):
            axes = [_axis(kind, term, fit.model) for kind in AXES[base]]
        else:
            axes = [(f"{name}_dim_{k}", list(range(n))) for k, n in enumerate(shape)]
        for (dim, values), n in zip(axes, shape):
            if len(values) != n:
                raise ValueError(f"draws[{name!r}]: axis {dim!r} has {n} entries but the "
                                 f"model names {len(values)}.")
        out[name] = (tuple(dim for dim, _ in axes), {dim: values for dim, values in axes})
    return out


def response_name(model) -> str:
    """Name of the response variable: the formula's left-hand side when it is a plain name,
    else "y"."""
    formula = getattr(model, "formula", None)
    if isinstance(formula, str) and "~" in formula:
        lhs = formula.split("~", 1)[0].strip()
        if lhs.isidentifier():
            return lhs
    return "y"


# ------------------------------------------------------------------- pure JAX pieces


@partial(jax.jit, static_argnames="family")
def pointwise_log_likelihood(beta, b, tau, extra, data, family):
    """log p(y_ij | b, beta, tau, extra) for every draw and observation.

    Args:
        beta: (C, S, p); b: tuple of (C, S, N_k, q_k), one per random-effect term; tau:
        (C, S) (ones for families without dispersion); extra: the family's parameters by
        name, each (C, S) (`Family.extra_values`); data: `density.ModelData`; family: the
        model's Family (static).
    Returns:
        (C, S, n_obs).
    """
    def one(beta, b, tau, extra):  # weighted, as the likelihood is
        eta = linear_predictor(b, beta, data)
        return weighted(family.log_density(data.y, eta, tau, data.trials, extra),
                        data.weights)
    return jax.vmap(jax.vmap(one))(beta, b, tau, extra)


@partial(jax.jit, static_argnames="family")
def predictive_draws(keys, beta, b, tau, extra, data, family):
    """One response draw per posterior draw: y_rep ~ family given that draw's eta.

    Args:
        keys: (C, S) random keys; beta, b, tau, extra, data, family as in
        `pointwise_log_likelihood`.
    Returns:
        (C, S, n_obs).
    """
    def one(key, beta, b, tau, extra):
        eta = linear_predictor(b, beta, data)
        return family.sample(key, eta, tau, data.trials, extra)
    return jax.vmap(jax.vmap(one))(keys, beta, b, tau, extra)


def _chain_draw(fit) -> tuple[int, int]:
    return np.shape(fit.sample_stats["diverging"])[:2]


def _draw_args(fit):
    """(beta (C, S, p), b (tuple per term of (C, S, N_k, q_k)), tau (C, S), extra (dict of
    (C, S)), data).

    Raises:
        ValueError: the fit was sampled with keep_b=False.
    """
    d, model = fit.draws, fit.model
    keys = ["b" + ts.key for ts in model.spec.terms]
    if any(k not in d for k in keys):
        raise ValueError("the fit keeps no draws of b (sampled with keep_b=False): the "
                         "pointwise likelihood and posterior predictive need them.")
    C, S = _chain_draw(fit)
    dtype = np.asarray(d[keys[0]]).dtype
    beta = d["beta"] if "beta" in d else np.zeros((C, S, 0), dtype)
    tau = d["tau"] if "tau" in d else np.ones((C, S), dtype)
    b = tuple(jnp.asarray(d[k]) for k in keys)
    extra = {k: jnp.asarray(v, dtype) for k, v in
             model.spec.family.extra_values(d, (C, S)).items()}
    return jnp.asarray(beta), b, jnp.asarray(tau), extra, model.model_data()


def log_likelihood_draws(fit) -> np.ndarray:
    """Pointwise log likelihood of a fit's draws, (C, S, n_obs), in the model's dtype."""
    with jax.enable_x64(fit.model.dtype == "float64"):
        return np.asarray(pointwise_log_likelihood(*_draw_args(fit), fit.model.spec.family))


def posterior_predictive_draws(fit, seed=0) -> np.ndarray:
    """Posterior predictive y draws (C, S, n_obs): one per posterior draw, keys from `seed`
    (an integer or a jax.random key)."""
    C, S = _chain_draw(fit)
    key = as_key(seed)
    with jax.enable_x64(fit.model.dtype == "float64"):
        keys = jax.random.split(key, C * S).reshape(C, S)
        y_rep = np.asarray(predictive_draws(keys, *_draw_args(fit), fit.model.spec.family))
    return as_response(y_rep, fit.model)


def as_response(y: np.ndarray, model) -> np.ndarray:
    """y as stored: integers for a discrete family, so that ArviZ treats observed and
    predicted y as counts (histograms rather than densities in plot_ppc), unless a draw is
    beyond int64 or not finite (kept as floats rather than wrapped into negative numbers)."""
    if model.spec.family.discrete and np.all(np.abs(y) < 2.0**62):  # also: all finite
        return np.rint(y).astype(np.int64)
    return y  # counts past int64 (prior predictive under wide priors) stay float, inf too


# --------------------------------------------------------------------------- DataTree


def named_dataset(values: dict, dims: dict, coords: dict, chain_draw: bool = True):
    """An xarray Dataset of `values` with leading (chain, draw) dims (unless not
    `chain_draw`), then each variable's `dims` and the `coords` of those dims."""
    import xarray as xr

    data_vars = {}
    for name, x in values.items():
        lead = ("chain", "draw") if chain_draw else ()
        data_vars[name] = (lead + tuple(dims.get(name, ())), np.asarray(x))
    ds = xr.Dataset(data_vars)
    if chain_draw and data_vars:
        C, S = np.shape(next(iter(values.values())))[:2]
        ds = ds.assign_coords(chain=np.arange(C), draw=np.arange(S))
    return ds.assign_coords({k: v for k, v in coords.items() if k in ds.dims})


def posterior_dataset(fit, include_b: bool = True):
    """The posterior group: fit.draws with named dims (see `posterior_dims`)."""
    names = [k for k in fit.draws if include_b or _split_term(k)[0] != "b"]
    described = posterior_dims(fit, names)
    dims = {k: v[0] for k, v in described.items()}
    coords = {dim: values for _, c in described.values() for dim, values in c.items()}
    return named_dataset({k: fit.draws[k] for k in names}, dims, coords)


def sample_stats_dataset(fit):
    """The sample_stats group: fit.sample_stats (C, S) and step_size broadcast over draws."""
    stats = dict(fit.sample_stats)
    C, S = _chain_draw(fit)
    if "step_size" not in stats and fit.step_size is not None:
        stats["step_size"] = np.broadcast_to(np.asarray(fit.step_size)[:, None], (C, S))
    return named_dataset(stats, {}, {})


PRIOR_GROUPS = ("prior", "prior_predictive")


def to_inference_data(fit, posterior_predictive: bool = False, include_b: bool = True, *,
                      log_likelihood: bool = True, seed=0, prior=None, log_prior: bool = False):
    """The fit as ArviZ 1.x data: an `xarray.DataTree` with one child per group.

    Args:
        fit: a `Fit`.
        posterior_predictive: add posterior predictive y draws (C, S, n_obs), drawn with
            keys from `seed`.
        include_b: keep the cluster coefficients b (C, S, N, q) in the posterior.
        log_likelihood: add the pointwise log likelihood (C, S, n_obs) (for az.loo).
        prior: the DataTree `GLMM.sample_prior` returns: its prior and prior_predictive
            groups are added (for az.plot_prior_posterior, prior sensitivity).
        log_prior: add log p(psi | h) per draw, (C, S) as variable "psi" of a log_prior
            group (`jaxglmm.sensitivity.log_prior_draws`): what arviz-stats' power-scaling
            diagnostics (`psense`, `psense_summary`) read.
    Returns:
        DataTree with groups posterior, sample_stats, observed_data and, as asked,
        log_likelihood, posterior_predictive, prior, prior_predictive and log_prior; the
        response is named by `response_name`.
    Raises:
        ValueError: `prior` holds neither a prior nor a prior_predictive group.
    """
    y_name = response_name(fit.model)
    obs_dims = {y_name: (OBS_DIM,)}
    groups = {
        "posterior": posterior_dataset(fit, include_b),
        "sample_stats": sample_stats_dataset(fit),
        "observed_data": named_dataset({y_name: as_response(fit.model.arrays.y, fit.model)},
                                  obs_dims, {}, chain_draw=False),
    }
    if log_likelihood and not fit.info.get("keep_b", True):
        log_likelihood = False  # no b draws: nothing to condition on (keep_b=False)
    if log_likelihood:
        groups["log_likelihood"] = named_dataset({y_name: log_likelihood_draws(fit)}, obs_dims, {})
    if posterior_predictive:
        groups["posterior_predictive"] = named_dataset(
            {y_name: posterior_predictive_draws(fit, seed)}, obs_dims, {})
    if prior is not None:
        groups.update(_prior_groups(prior))
    if log_prior:
        groups["log_prior"] = named_dataset({"psi": log_prior_draws(fit)}, {}, {})
    return data_tree(groups)


def _prior_groups(prior) -> dict:
    """The prior and prior_predictive groups of a `sample_prior` result, as Datasets."""
    names = [g for g in PRIOR_GROUPS if g in getattr(prior, "children", {})]
    if not names:
        raise ValueError("prior: expected what GLMM.sample_prior returns, a DataTree with a "
                         f"prior or prior_predictive group; got {type(prior).__name__}.")
    return {g: prior[g].to_dataset() for g in names}


def data_tree(groups: dict):
    """An `xarray.DataTree` with one child node per group ({name: Dataset})."""
    import xarray as xr

    return xr.DataTree.from_dict(groups)


# --------------------------------------------------------------------------------- plots


def _mentions_b(var_names) -> bool:
    if var_names is None:
        return False
    names = [var_names] if isinstance(var_names, str) else list(var_names)
    return any(_split_term(str(n).lstrip("~"))[0] == "b" for n in names)


def triangle_view(posterior):
    """The posterior with each symmetric (q, q) quantity cut to its distinct elements, for
    plots: "D" keeps j <= k, "corr" j < k (its diagonal is 1), along a new dim
    "<name>_pair" labelled "Intercept,Days" (the labels of `Fit.summary`); corr is
    dropped when q = 1. Other variables are unchanged."""
    import xarray as xr

    out = posterior
    pairs = [(name, _split_term(name)[0] == "corr") for name in list(out.data_vars)
             if _split_term(name)[0] in ("D", "corr")]
    for name, strict in pairs:
        da = out[name]
        row, col = da.dims[-2:]
        labels = list(da[row].values)
        j, k = np.triu_indices(len(labels), 1 if strict else 0)
        if j.size == 0:
            out = out.drop_vars(name)
            continue
        pair = f"{name}_pair"
        values = da.values[..., j, k]
        names = [f"{labels[a]},{labels[b]}" for a, b in zip(j, k)]
        out = out.drop_vars(name).assign(
            {name: xr.DataArray(values, dims=da.dims[:-2] + (pair,),
                                coords={pair: names})})
    return out


def _term_names(posterior, base: str) -> list[str]:
    return [name for name in posterior.data_vars if _split_term(name)[0] == base]


def plot(fit, kind: str, var_names=None, **kwargs):
    """ArviZ's plot of a fit: kind "trace" (arviz.plot_trace_dist), "rank" (plot_rank),
    "forest" (plot_forest), "ppc" (plot_ppc_dist) or "pair" (plot_pair).

    var_names=None shows every posterior quantity except the cluster coefficients b (name
    "b" to see them); D and corr are shown by their distinct elements (`triangle_view`), and
    "pair" shows the elements of D (of every term) against each other. For "ppc", the
    posterior predictive is drawn first (seed from kwargs["seed"], default 0). Other
    keyword arguments go to ArviZ's function.
    Returns:
        the arviz_plots.PlotCollection (or PlotMatrix for "pair") ArviZ returns.
    """
    import arviz as az

    if kind not in PLOT_KINDS:
        raise ValueError(f"kind={kind!r} is unknown; choose one of {', '.join(PLOT_KINDS)}.")
    function = getattr(az, PLOT_FUNCTIONS[kind])
    if kind == "ppc":
        seed = kwargs.pop("seed", 0)
        tree = to_inference_data(fit, posterior_predictive=True, include_b=False,
                                 log_likelihood=False, seed=seed)
        return function(tree, var_names=var_names, **kwargs)
    tree = to_inference_data(fit, include_b=_mentions_b(var_names), log_likelihood=False)
    tree["posterior"] = triangle_view(tree["posterior"].to_dataset())
    if kind == "pair" and var_names is None:
        var_names = _term_names(tree["posterior"], "D")
    return function(tree, var_names=var_names, **kwargs)
