"""Simulation-based calibration (Talts et al. 2018), built in: `sbc(model)` draws psi and b
from the model's prior, y from the likelihood at the model's design, fits every replicate
with `sample_many`, and ranks each true psi element among its fit's (thinned) draws. When the
sampler and the density agree, every rank is uniform on 0..L.

Uniformity is judged by the simultaneous ECDF band of Säilynoja, Bürkner and Vehtari (2022,
"Graphical test for discrete uniformity and its applications in goodness-of-fit evaluation
and multiple sample comparison", Statistics and Computing 32:32): the ECDF of the fractional
ranks is compared with the uniform CDF at K points; the band holds the whole ECDF with
probability 1 - alpha under uniformity, its width calibrated by simulating uniform ranks.
The test's p-value is the probability, under uniformity, of an ECDF at least as far outside
(its smallest pointwise binomial tail probability at least as small). A chi-square test over
bins is reported beside it.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import jax
import numpy as np
import pandas as pd
import scipy.stats

from .fitting import check_count
from .inference_data import posterior_predictive_draws
from .keys import as_key
from .many import response_problem, sample_many
from .model import Model, build_model, centred_option
from .prior_predictive import prior_draws
from .priors import Priors
from .results import Fit

# the quantities ranked: every scalar of psi but those that are monotone functions of
# another one ranked already (sigma of tau, D's diagonal of sd)
SKIPPED_PREFIXES = ("sigma", "D[", "D|")


# ------------------------------------------------------------------ the uniformity test


def _grid(L: int, K: int | None) -> np.ndarray:
    """Evaluation points z_k in (0, 1): K of them (default min(L + 1, 100)), minus 1."""
    K = min(L + 1, 100) if K is None else K
    return np.arange(1, K) / K


def _null_cdf(z: np.ndarray, L: int) -> np.ndarray:
    """P((rank + 1) / (L + 1) <= z) for a rank uniform on 0..L."""
    return np.floor(z * (L + 1) + 1e-9) / (L + 1)


def _counts(ranks: np.ndarray, L: int, z: np.ndarray) -> np.ndarray:
    """n times the ECDF of (rank + 1) / (L + 1) at z, for ranks (..., n): (..., K-1)."""
    return np.sum((ranks[..., None] + 1.0) / (L + 1) <= z + 1e-12, axis=-2)


def _min_tail(ranks: np.ndarray, L: int, z: np.ndarray) -> np.ndarray:
    """For ranks (..., n): the smallest two-sided pointwise binomial tail probability of the
    ECDF of (rank + 1) / (L + 1) over z, (...)."""
    n = ranks.shape[-1]
    p = _null_cdf(z, L)
    counts = _counts(ranks, L, z)
    lower = scipy.stats.binom.cdf(counts, n, p)
    upper = scipy.stats.binom.sf(counts - 1, n, p)
    return np.min(np.minimum(1.0, 2.0 * np.minimum(lower, upper)), axis=-1)


def _null_min_tails(n: int, L: int, z: np.ndarray, simulations: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sims = rng.integers(0, L + 1, size=(simulations, n))
    return np.sort(_min_tail(sims, L, z))


def ecdf_test(ranks, L: int, alpha: float = 0.01, K: int | None = None,
              simulations: int = 2000, seed: int = 0) -> dict:
    """The simultaneous ECDF test of uniformity of integer ranks (n,) on 0..L.

    Returns:
        dict with p_value, gamma (the pointwise level that makes the band simultaneous at
        1 - alpha), z (K-1,), ecdf_diff (the ECDF minus the uniform CDF at z), lower and
        upper (the band of ecdf_diff) and inside (whether the ECDF stays in the band).
    """
    ranks = np.asarray(ranks, int)
    n = ranks.shape[0]
    z = _grid(L, K)
    null = _null_min_tails(n, L, z, simulations, seed)
    observed = float(_min_tail(ranks, L, z))
    gamma = float(np.quantile(null, alpha))
    p = _null_cdf(z, L)
    counts = _counts(ranks, L, z)
    lower = scipy.stats.binom.ppf(gamma / 2, n, p) / n - p
    upper = scipy.stats.binom.ppf(1 - gamma / 2, n, p) / n - p
    return {"p_value": float((np.sum(null <= observed) + 1) / (simulations + 1)),
            "gamma": gamma, "z": z, "ecdf_diff": counts / n - p, "lower": lower,
            "upper": upper, "inside": bool(observed > gamma)}


def chi_square_p(ranks, L: int, bins: int = 10) -> float:
    """p-value of a chi-square test of uniform counts of the ranks (n,) in `bins` bins."""
    counts = np.histogram(np.asarray(ranks), bins=bins, range=(0, L + 1))[0]
    return float(scipy.stats.chisquare(counts).pvalue)


# ------------------------------------------------------------------------------ the study


@dataclass(frozen=True, eq=False)
class SBCResult:
    """The outcome of `sbc`.

    Attributes:
        ranks: DataFrame (replicates fitted, quantities) of integer ranks in 0..L.
        truth: DataFrame of the prior draws of the same quantities.
        L: the number of thinned posterior draws per fit (ranks run over 0..L).
        tests: DataFrame per quantity: ecdf_p (the simultaneous ECDF test), chi2_p, inside
            (the ECDF stays in its 1 - alpha band), mean_rank (L / 2 expected).
        alpha: the family-wise level; `passed` applies Bonferroni over the quantities.
        divergences: divergent transitions per fitted replicate.
        failed: {replicate: why} for prior draws that could not be fitted (y outside the
            family's support).
        info: replications, chains, warmup, draws, thin, seed, wall_s.
    """

    ranks: pd.DataFrame
    truth: pd.DataFrame
    L: int
    tests: pd.DataFrame
    alpha: float
    divergences: np.ndarray
    failed: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every quantity's ECDF test has p > alpha / (number of quantities)."""
        return bool(self.tests["ecdf_p"].min() > self.alpha / len(self.tests))

    def band(self, name: str, alpha: float | None = None) -> dict:
        """`ecdf_test` of one quantity (at `alpha`, default the study's)."""
        return ecdf_test(self.ranks[name].to_numpy(), self.L,
                         self.alpha if alpha is None else alpha)

    def plot(self, names=None, alpha: float | None = None, ncols: int = 4):
        """The ECDF-difference plot: for each quantity the ECDF of the fractional ranks
        minus the uniform CDF, inside its simultaneous 1 - alpha band (grey) when the ranks
        are uniform. Returns the matplotlib Figure."""
        import matplotlib.pyplot as plt
        names = list(self.ranks.columns) if names is None else list(names)
        nrows = -(-len(names) // ncols)
        fig, axes = plt.subplots(nrows, min(ncols, len(names)), squeeze=False,
                                 figsize=(3.2 * min(ncols, len(names)), 2.6 * nrows))
        for ax, name in zip(axes.flat, names):
            t = self.band(name, alpha)
            ax.fill_between(t["z"], t["lower"], t["upper"], step="post", color="0.85")
            ax.step(t["z"], t["ecdf_diff"], where="post",
                    color="C0" if t["inside"] else "C3")
            ax.axhline(0.0, color="0.5", lw=0.5)
            ax.set_title(f"{name} (p = {t['p_value']:.3f})", fontsize=9)
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        fig.supxlabel("fractional rank")
        fig.supylabel("ECDF difference")
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        worst = self.tests["ecdf_p"].idxmin()
        return (f"SBCResult({len(self.ranks)} replicates, L={self.L}, "
                f"{'passed' if self.passed else 'FAILED'}: smallest ECDF p "
                f"{self.tests['ecdf_p'].min():.3g} ({worst}))")


def _truth(model: Model, draws: dict) -> pd.DataFrame:
    R = next(iter(draws.values())).shape[1]
    fit = Fit(draws=draws, sample_stats={"diverging": np.zeros((1, R), bool)}, model=model,
              settings=None, info={})
    return pd.DataFrame({name: np.asarray(v)[0] for name, v in fit.scalar_draws().items()
                         if not name.startswith(SKIPPED_PREFIXES)})


def _fit_model(model: Model, fit_priors: Priors | None) -> Model:
    if fit_priors is None:
        return model
    if not isinstance(fit_priors, Priors):
        raise ValueError(f"fit_priors: must be a jaxglmm.Priors, got "
                         f"{type(fit_priors).__name__}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_model(model.arrays, model.spec.family, fit_priors, centred_option(model),
                           model.factor, model.dtype, formula=model.formula,
                           design=model.design, na_action=model.na_action)


def sbc(model, replications: int = 200, chains: int = 2, warmup: int = 300,
        draws: int = 400, thin: int = 4, seed=0, *, alpha: float = 0.01,
        fit_priors: Priors | None = None, batch_size: int = 64,
        batch_method: str = "auto", progress: bool = True, **options) -> SBCResult:
    """Simulation-based calibration of `model` (a GLMM or Model) at its design.

    Args:
        model: the model whose prior the truths are drawn from (every prior proper: beta
            and mu normal); its priors as resolved (defaults from its data) are the truth's
            and the fits'.
        replications: the number of prior draws fitted.
        chains, warmup, draws: each fit's run (see `GLMM.sample`).
        thin: rank among every thin-th draw (near-independent draws keep the ranks uniform
            when the sampler is right); L = chains * (draws // thin).
        seed: an integer or key: the prior draws and y from it, the fits from seed + 1 on.
        alpha: the family-wise level of the uniformity tests (Bonferroni over the
            quantities).
        fit_priors: fit with these priors instead of the model's (a deliberately wrong
            model, to see the test fail); None: the model's.
        batch_size, batch_method, options: as in `GLMM.sample_many`.
    Returns:
        An `SBCResult` (ranks, truths, tests per quantity, `passed`, `plot()`).
    Raises:
        ValueError: a flat prior (nothing to draw the truth from), bad counts.
    """
    model = getattr(model, "model", model)
    if not isinstance(model, Model):
        raise ValueError(f"model: must be a jaxglmm.GLMM or Model, got "
                         f"{type(model).__name__}.")
    replications = check_count(replications, "replications", 2)
    thin = check_count(thin, "thin", 1)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha!r}.")
    start = time.perf_counter()
    key = as_key(seed)
    k_prior, k_y, k_fit = jax.random.split(key, 3)
    prior = prior_draws(model, replications, k_prior)
    truth = _truth(model, prior)
    holder = Fit(draws=prior, sample_stats={"diverging": np.zeros((1, replications), bool)},
                 model=model, settings=None, info={})
    ys = posterior_predictive_draws(holder, k_y)[0]
    failed = {r: why for r in range(replications)
              if (why := response_problem(model, ys[r])) is not None}
    keep = [r for r in range(replications) if r not in failed]
    if not keep:
        raise ValueError("sbc: no prior draw gave a response the family can take: "
                         f"{next(iter(failed.values()))}")
    fit_seeds = list(jax.random.split(k_fit, replications)[np.asarray(keep)])
    batch = sample_many(_fit_model(model, fit_priors), ys[keep], chains, warmup, draws,
                        fit_seeds, batch_size=batch_size, batch_method=batch_method,
                        progress=progress, thin=thin, keep_b=False, **options)
    L = chains * len(range(thin - 1, draws, thin))
    post = [fit.scalar_draws() for fit in batch]
    ranks = pd.DataFrame({name: [int(np.sum(p[name] < truth[name].iloc[r]))
                                 for p, r in zip(post, keep)] for name in truth.columns},
                         index=pd.Index(keep, name="replicate"))
    rows = {}
    for name in ranks.columns:
        r = ranks[name].to_numpy()
        test = ecdf_test(r, L, alpha)
        rows[name] = {"ecdf_p": test["p_value"], "chi2_p": chi_square_p(r, L),
                      "inside": test["inside"], "mean_rank": float(r.mean())}
    tests = pd.DataFrame.from_dict(rows, orient="index")
    info = {"replications": replications, "fitted": len(keep), "chains": chains,
            "warmup": warmup, "draws": draws, "thin": thin,
            "seed": seed if isinstance(seed, int) else None,
            "wall_s": time.perf_counter() - start, "sample_many": batch.info}
    return SBCResult(ranks=ranks, truth=truth.iloc[keep].set_index(ranks.index), L=L,
                     tests=tests, alpha=alpha, divergences=batch.num_divergences,
                     failed=failed, info=info)
