"""The result of sampling: natural-scale draws, sample statistics and their summary."""
from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import diagnostics
from .config import RunSettings, SamplerConfig
from .fitting import Run, extend
from .inference_data import plot, posterior_dims, to_inference_data
from .model import Model
from .predict import predict
from .priors import default_priors
from .sampling import ChainEnd
from .sensitivity import prior_sensitivity
from .storage import save

SUMMARY_COLUMNS = ["mean", "sd", "5%", "50%", "95%", "mcse_mean", "ess_bulk", "ess_tail",
                   "r_hat"]


# smallest eigenvalue of a draw's correlation matrix below which D counts as singular
# (for q = 2: |corr| > 0.999); with the data-scaled default Wishart the prior keeps it near
# 0.1 / (nu + q + 1) or above
SINGULAR_CORR_EIG = 1e-3


def _fmt_vec(v) -> str:
    return ", ".join(f"{float(x):.4g}" for x in np.atleast_1d(np.asarray(v, float)))


class SamplingWarning(UserWarning):
    """Convergence trouble found after sampling (R-hat, ESS, divergences)."""


@dataclass(frozen=True, eq=False)
class Fit:
    """Draws on the natural scale with leading dims (chain, draw).

    Attributes:
        draws: "beta" (C, S, p), "mu" (C, S, q), "sigma" and "tau" (C, S) for gaussian,
            "D" (C, S, q, q), "sd" (C, S, q), "corr" (C, S, q, q), "b" (C, S, N, q) in the
            order of the sorted group labels; "d" (C, S) and "gamma" (C, S, q) when random;
            with several terms each term's names carry "|g" (g its grouping factor).
        sample_stats: "acceptance_rate", "diverging", "lp", "n_steps", and for NUTS
            "tree_depth" and "energy", each (C, S).
        model: the `jaxglmm.model.Model` that was sampled.
        settings: how the run was made (`jaxglmm.config.RunSettings`), None if unknown.
        info: method, parametrisation, sizes, seed and timings.
        end: where the chains stopped (`jaxglmm.sampling.ChainEnd`: last positions (C, d),
            log densities and gradients, step sizes, inverse mass matrices, sampling keys),
            what `extend` continues from; None if unknown.
    """

    draws: dict
    sample_stats: dict
    model: Model
    settings: RunSettings | None
    info: dict
    end: ChainEnd | None = field(default=None, repr=False)

    @classmethod
    def from_run(cls, model: Model, run: Run) -> "Fit":
        """The Fit of a `jaxglmm.fitting.Run` of `model`."""
        return cls(draws=run.draws, sample_stats=run.sample_stats, model=model,
                   settings=run.settings, info=run.info, end=run.end)

    @property
    def config(self) -> SamplerConfig | None:
        """The kernel and adaptation settings of the run."""
        return None if self.settings is None else self.settings.sampler

    @property
    def step_size(self) -> np.ndarray | None:
        """Adapted step size per chain (C,)."""
        return None if self.end is None else self.end.step_size

    @property
    def inverse_mass_matrix(self) -> np.ndarray | None:
        """Adapted inverse mass matrix per chain: (C, d) diagonal, (C, d, d) dense, or
        (C, k*k + d - k) a flat block matrix (`jaxglmm.metric`)."""
        return None if self.end is None else self.end.inverse_mass_matrix

    @property
    def coords(self) -> dict:
        """Names of the coefficients and group levels: "x_names", and for each random-effect
        term its "z_names" and "groups" (keys carrying "|g" with several terms, as in the
        draws: "z_names|Subject", "groups|Subject")."""
        a = self.model.arrays
        out = {"x_names": list(a.x_names)}
        for t, ts in zip(a.terms, self.model.spec.terms):
            out["z_names" + ts.key] = list(t.z_names)
            out["groups" + ts.key] = list(t.groups)
        return out

    @property
    def num_divergences(self) -> int:
        return int(np.sum(self.sample_stats["diverging"]))

    def scalar_draws(self, include_b: bool = False) -> dict[str, np.ndarray]:
        """Every scalar quantity as (C, S) draws, keyed by readable names such as
        "beta[x1]", "mu[Intercept]", "D[Intercept,Days]", "corr[Intercept,Days]"; with
        several random-effect terms the term's names carry its grouping factor:
        "mu|Subject[Intercept]", "sd|Subject[Days]", "b|Subject[308,Intercept]"."""
        a, d = self.model.arrays, self.draws
        out: dict[str, np.ndarray] = {}
        for j, name in enumerate(a.x_names):
            out[f"beta[{name}]"] = d["beta"][..., j]
        pairs = list(zip(a.terms, self.model.spec.terms))
        for t, ts in pairs:
            for j, col in enumerate(ts.mu_free):
                out[f"mu{ts.key}[{t.z_names[col]}]"] = d["mu" + ts.key][..., j]
        extra = tuple(p.name for p in self.model.spec.family.sampled_parameters)
        for name in ("sigma", "tau") + extra:
            if name in d:
                out[name] = d[name]
        for t, ts in pairs:
            z, q, key = t.z_names, len(t.z_names), ts.key
            for j in range(q):
                for k in range(j, q):
                    out[f"D{key}[{z[j]},{z[k]}]"] = d["D" + key][..., j, k]
            for j in range(q):
                out[f"sd{key}[{z[j]}]"] = d["sd" + key][..., j]
            for j in range(q):
                for k in range(j + 1, q):
                    out[f"corr{key}[{z[j]},{z[k]}]"] = d["corr" + key][..., j, k]
        if "d" in d:
            out["d"] = d["d"]
        for t, ts in pairs:
            if "gamma" + ts.key in d:
                for j, col in enumerate(t.z_names):
                    out[f"gamma{ts.key}[{col}]"] = d["gamma" + ts.key][..., j]
        if include_b:
            for t, ts in zip(a.terms, self.model.spec.terms):
                b = d["b" + ts.key]
                for i, g in enumerate(t.groups):
                    for j, col in enumerate(t.z_names):
                        out[f"b{ts.key}[{g},{col}]"] = b[..., i, j]
        return out

    def summary(self, include_b: bool = False, warn: bool = True) -> pd.DataFrame:
        """Posterior summary: mean, sd, 5%, 50%, 95%, MCSE of the mean, bulk and tail ESS,
        R-hat per quantity (rows named as in `scalar_draws`). Warns (SamplingWarning) on
        R-hat > 1.01, bulk ESS < 100 per chain, or divergences."""
        rows = {}
        for name, x in self.scalar_draws(include_b).items():
            x = np.asarray(x, dtype=float)
            q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
            rows[name] = [x.mean(), x.std(ddof=1), q05, q50, q95,
                          diagnostics.mcse_mean(x), diagnostics.ess_bulk(x),
                          diagnostics.ess_tail(x), diagnostics.rhat(x)]
        table = pd.DataFrame.from_dict(rows, orient="index", columns=SUMMARY_COLUMNS)
        if warn:
            for message in self._problems(table):
                warnings.warn(message, SamplingWarning, stacklevel=2)
        return table

    def _problems(self, table: pd.DataFrame) -> list[str]:
        out = []
        chains = self.sample_stats["diverging"].shape[0]
        bad = table.index[table["r_hat"] > 1.01].tolist()
        if bad:
            out.append(f"R-hat > 1.01 for {', '.join(bad)}: the chains disagree; run longer "
                       "warmup/draws or reparametrise (centred=...).")
        low = table.index[table["ess_bulk"] < 100 * chains].tolist()
        if low:
            out.append(f"bulk ESS below 100 per chain for {', '.join(low)}: estimates of "
                       "these are noisy; draw more.")
        n_div = self.num_divergences
        if n_div:
            out.append(f"{n_div} divergent transitions after warmup: the posterior may be "
                       "biased. Raise target_accept (e.g. 0.95) or switch the "
                       "parametrisation (centred=True when clusters are large and "
                       "informative, non-centred otherwise).")
        out.extend(self._singular_covariance())
        return out

    def _singular_covariance(self) -> list[str]:
        """Messages for random-effect terms (q >= 2) whose posterior piles up at a singular D:
        the smallest eigenvalue of the correlation matrix below SINGULAR_CORR_EIG in most
        draws. That is what a Wishart prior with gamma_j far below the random effects'
        variances does (DESIGN.md section 2), and NUTS then misses the rest of the posterior
        without a divergence (sleepstudy, Wishart(2, 0.01): a 0.1% mode at corr near -1,
        which moves the mean of corr from 0.9997 to 0.9975 and its sd from 0.001 to 0.063)."""
        out = []
        model = self.model
        for t, ts in zip(model.arrays.terms, model.spec.terms):
            corr = self.draws.get("corr" + ts.key)
            if ts.q < 2 or corr is None:
                continue
            eig = np.linalg.eigvalsh(np.asarray(corr, float))[..., 0]
            median = float(np.median(eig))
            if not median < SINGULAR_CORR_EIG:
                continue
            pri = ts.priors
            if pri.random_gamma:
                g, h = pri.gamma
                gamma = f"diag(gamma), gamma_j ~ Gamma(shape ({_fmt_vec(g)}), rate ({_fmt_vec(h)}))"
            else:
                gamma = f"diag({_fmt_vec(pri.gamma)})"
            a = model.arrays
            default = default_priors(a.y, a.X, t.Z, model.spec.family, a.trials).omega
            out.append(
                f"corr{ts.key}: the posterior piles up at a singular D (the smallest "
                f"eigenvalue of the correlation matrix has median {median:.1e}; "
                f"{np.mean(eig < SINGULAR_CORR_EIG):.0%} of draws are below "
                f"{SINGULAR_CORR_EIG:g}, for q = 2 |corr| > {1 - SINGULAR_CORR_EIG:g}). "
                f"The prior Omega{ts.key} ~ Wishart(nu={pri.omega_df:g}, S), S^-1 = {gamma} "
                "has gamma_j far below the variances of the random effects: with small "
                "gamma_j it is close to |D|^-(nu+q+1)/2 and pulls D to singular matrices, "
                "and the sampler can miss the rest of the posterior without a divergence, "
                "so sd and corr are unreliable. Remedy: the data-scaled default "
                f"Wishart({default.df:g}, S), S^-1 = diag({_fmt_vec(default.scale_inv_diag)}) "
                "(leave priors.omega unset), or gamma_j on the scale of the random "
                "effects' variances.")
        return out

    def extend(self, draws: int = 1000, progress: bool = True) -> "Fit":
        """The chains continued by `draws` more iterations from their last state, with the
        adapted step size and mass matrix and no new warmup: the result equals (draw for
        draw) one run of the combined length with the same seed. Returns a new Fit holding
        the old and the new draws; this one is unchanged."""
        run = Run(self.draws, self.sample_stats, self.settings, self.info, self.end)
        return Fit.from_run(self.model, extend(self.model, run, draws, progress))

    def predict(self, newdata, kind: str = "mean", groups: str = "existing",
                summary: bool = False, seed=0):
        """Posterior predictions for the rows of a DataFrame (formula models).

        Args:
            newdata: DataFrame with the formula's predictor and grouping columns (and, for
                binomial, the trials columns of the response).
            kind: "mean" (h(eta); expected successes for binomial), "link" (eta) or
                "response" (one y from the family per draw: posterior predictive).
            groups: "existing" (every level must be in the fitted data; it uses its b
                draws) or "new" (seen levels use their b, unseen ones get a fresh
                b ~ N(mu, D) per posterior draw).
            summary: return a DataFrame (mean, sd, 5%, 50%, 95% per row) instead of draws.
            seed: integer or jax.random key for the new-level and response draws.
        Returns:
            draws (chains, draws, n_new), or the summary DataFrame indexed like newdata.
        Raises:
            ValueError: missing columns or values, unseen levels with groups="existing".
        """
        return predict(self, newdata, kind, groups, summary, seed)

    def prior_sensitivity(self, quantities=None) -> pd.DataFrame:
        """How each posterior mean moves with each hyperparameter of psi's prior, from these
        draws (no refit): d E[f | y] / d h = Cov(f, d log p(psi | h) / d h), with its MCSE
        and the elasticity h d E[f] / d h, per (hyperparameter, quantity). See
        `jaxglmm.sensitivity.prior_sensitivity`."""
        return prior_sensitivity(self, quantities)

    def power_scaling(self, **kwargs) -> pd.DataFrame:
        """Power-scaling sensitivity of the prior and the likelihood (Kallioinen et al. 2024,
        priorsense): arviz-stats' `psense_summary` of `to_arviz(log_prior=True)` without b
        (kwargs go to it, e.g. var_names, threshold); constant quantities (the diagonal of
        corr) are left out. "prior-data conflict" or "strong prior / weak likelihood" in
        its diagnosis column flag a prior that matters."""
        from arviz_stats import psense_summary
        with warnings.catch_warnings():  # constants (corr's diagonal): 0 / 0, dropped below
            warnings.simplefilter("ignore", RuntimeWarning)
            table = psense_summary(self.to_arviz(include_b=False, log_prior=True), **kwargs)
        return table.dropna(how="all", subset=["prior", "likelihood"])

    # --------------------------------------------------------------- ArviZ, plots, saving

    def posterior_dims(self) -> dict:
        """{draws key: (dims, coords)} of the posterior variables after (chain, draw); the one
        place where dims are named (`jaxglmm.inference_data.posterior_dims`)."""
        return posterior_dims(self)

    def to_arviz(self, posterior_predictive: bool = False, include_b: bool = True, *,
                 log_likelihood: bool = True, seed=0, prior=None, log_prior: bool = False):
        """The fit as ArviZ 1.x data, an `xarray.DataTree` with groups posterior (named
        dims), sample_stats, observed_data, log_likelihood (C, S, n_obs) and, on request,
        posterior_predictive (C, S, n_obs) drawn with keys from `seed`, and the prior and
        prior_predictive groups of `prior=GLMM.sample_prior(...)`. See
        `jaxglmm.inference_data.to_inference_data`."""
        return to_inference_data(self, posterior_predictive, include_b,
                                 log_likelihood=log_likelihood, seed=seed, prior=prior,
                                 log_prior=log_prior)

    def plot_trace(self, var_names=None, **kwargs):
        """arviz.plot_trace_dist (draws and marginal densities) of the posterior (b only
        when named in var_names); returns ArviZ's PlotCollection."""
        return plot(self, "trace", var_names, **kwargs)

    def plot_rank(self, var_names=None, **kwargs):
        """arviz.plot_rank of the posterior (b only when named in var_names)."""
        return plot(self, "rank", var_names, **kwargs)

    def plot_forest(self, var_names=None, **kwargs):
        """arviz.plot_forest of the posterior (b only when named in var_names)."""
        return plot(self, "forest", var_names, **kwargs)

    def plot_pair(self, var_names=None, **kwargs):
        """arviz.plot_pair of the distinct elements of D (of every random-effect term), or
        of var_names."""
        return plot(self, "pair", var_names, **kwargs)

    def plot_ppc(self, var_names=None, num_samples: int = 100, **kwargs):
        """arviz.plot_ppc_dist: the observed y against `num_samples` posterior predictive
        draws, made now (seed=0 unless kwargs["seed"] is given)."""
        return plot(self, "ppc", var_names, num_samples=num_samples, **kwargs)

    def save(self, path) -> None:
        """Write the fit to a netCDF file (no pickle); `jaxglmm.load(path)` reads it back.
        See `jaxglmm.storage.save`."""
        save(self, path)

    def _repr_html_(self) -> str:
        """Jupyter view: one line on the run, the priors, and the summary table."""
        i = self.info
        head = (f"<p><b>GLMM fit</b>: "
                f"{html.escape(str(i.get('method')))}, "
                f"{html.escape(str(i.get('parametrisation')))}, {i.get('chains')} chains x "
                f"{i.get('draws')} draws, {self.num_divergences} divergences</p>")
        priors = "<br>".join(html.escape(line)
                             for line in self.model.describe_priors().splitlines())
        table = self.summary(warn=False).to_html(float_format=lambda v: f"{v:.4g}")
        return f"{head}<p>Priors:<br>{priors}</p>{table}"

    def __repr__(self) -> str:
        i = self.info
        return (f"Fit({i['method']}, {i['parametrisation']}, chains={i['chains']}, "
                f"draws={i['draws']}, divergences={self.num_divergences})")
