"""Convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021):
rank-normalised split R-hat, bulk and tail effective sample size, Monte Carlo standard error.

Plain NumPy on draws of shape (C, S) (chains, draws); results agree with ArviZ's (tested).
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtri


def _split(x: np.ndarray) -> np.ndarray:
    """(C, S) -> (2C, S // 2): each chain cut in halves (the middle draw of odd S dropped)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def _rank_normalise(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks (average ranks for ties), same shape as x."""
    flat = x.ravel()
    order = flat.argsort(kind="mergesort")
    ranks = np.empty(flat.size)
    ranks[order] = np.arange(1, flat.size + 1)
    # average ranks of ties
    sorted_vals = flat[order]
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    if np.any(counts > 1):
        avg = first + (counts + 1) / 2.0
        ranks[order] = np.repeat(avg, counts)
    return ndtri((ranks - 0.375) / (flat.size + 0.25)).reshape(x.shape)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance of each chain by FFT, (M, n) -> (M, n)."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, size, axis=1)
    return np.fft.irfft(f * np.conjugate(f), size, axis=1)[:, :n] / n


def _ess_raw(x: np.ndarray) -> float:
    """ESS of chains x (M, n) by Geyer's initial monotone sequence (Stan's estimator)."""
    M, n = x.shape
    if n < 4 or not np.all(np.isfinite(x)):
        return np.nan
    if np.ptp(x) == 0:
        return np.nan
    acov = _autocov(x)
    chain_mean = x.mean(axis=1)
    mean_var = np.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if M > 1:
        var_plus += np.var(chain_mean, ddof=1)
    rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus  # (n,), rho[0] := 1
    rho_hat = np.zeros(n)
    rho_hat[0] = 1.0
    rho_even, rho_odd = 1.0, rho[1]
    rho_hat[1] = rho_odd
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0.0:
        rho_even, rho_odd = rho[t + 1], rho[t + 2]
        if rho_even + rho_odd >= 0:
            rho_hat[t + 1], rho_hat[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho_hat[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:  # initial monotone sequence
        if rho_hat[t + 1] + rho_hat[t + 2] > rho_hat[t - 1] + rho_hat[t]:
            rho_hat[t + 1] = rho_hat[t + 2] = (rho_hat[t - 1] + rho_hat[t]) / 2.0
        t += 2
    total = M * n
    tau = -1.0 + 2.0 * np.sum(rho_hat[:max_t + 1]) + np.sum(rho_hat[max_t + 1:max_t + 2])
    tau = max(tau, 1.0 / np.log10(total))
    return total / tau


def _rhat_raw(x: np.ndarray) -> float:
    """Potential scale reduction of chains x (M, n)."""
    M, n = x.shape
    if n < 2 or np.ptp(x) == 0 or not np.all(np.isfinite(x)):
        return np.nan
    between = n * np.var(x.mean(axis=1), ddof=1) if M > 1 else 0.0
    within = np.mean(np.var(x, axis=1, ddof=1))
    return float(np.sqrt(((n - 1) / n * within + between / n) / within))


def rhat(x) -> float:
    """Rank-normalised split R-hat (max of bulk and folded), draws x (C, S)."""
    x = np.asarray(x, dtype=float)
    split = _split(x)
    folded = np.abs(split - np.median(split))
    return max(_rhat_raw(_rank_normalise(split)), _rhat_raw(_rank_normalise(folded)))


def ess_bulk(x) -> float:
    """Bulk effective sample size (rank-normalised split chains), draws x (C, S)."""
    return _ess_raw(_rank_normalise(_split(np.asarray(x, dtype=float))))


def ess_tail(x) -> float:
    """Tail ESS: the smaller ESS of the 5% and 95% quantile indicators, draws x (C, S)."""
    x = np.asarray(x, dtype=float)
    split = _split(x)
    out = []
    for prob in (0.05, 0.95):
        indicator = (split <= np.quantile(x, prob)).astype(float)
        out.append(_ess_raw(indicator))
    return float(np.nanmin(out)) if not np.all(np.isnan(out)) else np.nan


def ess_mean(x) -> float:
    """ESS for the posterior mean (split chains, no rank normalisation), draws x (C, S)."""
    return _ess_raw(_split(np.asarray(x, dtype=float)))


def mcse_mean(x) -> float:
    """Monte Carlo standard error of the posterior mean, draws x (C, S)."""
    x = np.asarray(x, dtype=float)
    return float(np.std(x, ddof=1) / np.sqrt(ess_mean(x)))
