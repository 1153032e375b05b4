"""PyMC versions of the models of benchmarks/suite/models.json, sampled by nutpie (run.py).

The same model as jaxglmm and benchmarks/numpyro_models.py (DESIGN.md section 1), with exactly
the entry's priors, float64:

    y_ij | b_i ~ family(h(x_ij' beta + z_ij' b_i)),   b_i ~ N_q(mu, D),
    Omega = D^{-1} ~ Wishart(df, S), S^{-1} = diag(gamma),   tau ~ Gamma(c, d)  (gaussian)

with d ~ Gamma(g, h) and gamma_j ~ Gamma(g_j, h_j) where the entry makes them random (PyMC
samples them on the log scale and adds the Jacobian itself), and `pm.Flat` on beta or mu where
the entry writes none. The data arrays are NumPyro's (`numpyro_models.design`: clusters coded
0..N-1 in the order of the sorted labels, as jaxglmm).

The moved covariance parameter is the Cholesky factor L of D, written the way a careful PyMC
user writes an unconstrained factor: one `pm.Flat` vector "chol" of q(q+1)/2 free reals, the
log of the diagonal of L then its strict lower triangle row by row (jaxglmm's own layout, so the
two unconstrained spaces are the same). PyMC has no usable Wishart prior for a factor of the
covariance (pm.Wishart cannot be sampled by NUTS), so the Wishart density of Omega = (L L')^{-1}
enters through `pm.Potential`, with PyMC's own Wishart log density (`pm.logp(pm.Wishart.dist)`,
scale matrix V = S = diag(1 / gamma)) and the Jacobians of chol -> L -> D -> Omega:

    log|dL/dchol| = sum_i log L_ii,  log|d(L L')/dL| = q log 2 + sum_i (q - i) log L_ii,
    log|dOmega/dD| = -(q + 1) log|D|.

Kinds (which variables NUTS moves besides psi):

- `joint`, non-centred: z ~ N(0, I) (N, q), b = mu + z L' (the default: what mixes best when
  the data say little about each b_i).
- `centred`: b_i ~ N_q(mu, L L') itself (pm.MvNormal with chol=L; pm.Normal for q = 1), better
  when every cluster has enough data to pin its b_i down (cbpp, epil: see run.py).
- `marginal` (gaussian, identity link): b integrated out, y_i ~ N(X_i beta + Z_i mu,
  Z_i D Z_i' + I / tau), one multivariate normal per cluster, ragged clusters padded to the
  largest as in numpyro_models.pad_clusters (each padded row adds -log(2 pi) / 2, nothing else).

Data enter as `pm.Data` (shared variables), so nutpie's numba code does not bake them in.
"""
from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from numpyro_models import (Prior, check_entry, design, pad_clusters,  # noqa: E402
                            parse_priors)

KINDS = ("joint", "centred", "marginal")


def _f64(value):
    """A float64 array for a PyMC parameter. PyTensor turns a Python float that float32 holds
    exactly (1.0, 200.0) into a float32 constant, and PyMC's Gamma then computes its scale
    1 / rate in float32: the log density is off by ~1e-8 (tested against scipy)."""
    return np.asarray(value, dtype=np.float64)
PSI_VARS = ("beta", "mu", "tau", "d", "gamma", "chol")


def _location(pm, name: str, prior: tuple | None, size: int):
    if prior is None:
        return pm.Flat(name, shape=(size,))
    loc, sd = prior
    return pm.Normal(name, mu=_f64(loc), sigma=_f64(sd), shape=(size,))


def _cholesky_factor(pm, pt, prior: Prior, q: int):
    """L (q, q) from the Flat "chol" vector, with the Wishart prior of Omega = (L L')^{-1}
    and the Jacobian chol -> Omega as a Potential (see the module docstring)."""
    if prior.random_gamma:
        g, h = prior.gamma
        gamma = pm.Gamma("gamma", alpha=_f64(g), beta=_f64(h), shape=(q,))
    else:
        gamma = pt.as_tensor_variable(np.broadcast_to(_f64(prior.gamma), (q,)).copy())
    chol = pm.Flat("chol", shape=(q * (q + 1) // 2,))
    log_diag = chol[:q]
    rows, cols = np.tril_indices(q, -1)
    L = pt.zeros((q, q))
    L = pt.set_subtensor(L[np.arange(q), np.arange(q)], pt.exp(log_diag))
    if q > 1:
        L = pt.set_subtensor(L[rows, cols], chol[q:])
    L_inv = pt.linalg.solve_triangular(L, pt.eye(q), lower=True)
    omega = L_inv.T @ L_inv
    with warnings.catch_warnings():   # "Wishart ... can not be used for MCMC sampling": its
        warnings.filterwarnings("ignore", "The Wishart distribution")   # density only here
        wishart = pm.logp(pm.Wishart.dist(nu=_f64(prior.df), V=pt.diag(1.0 / gamma)), omega)
    log_det_d = 2.0 * pt.sum(log_diag)
    jacobian = (pt.sum(log_diag)                                       # chol -> L
                + q * np.log(2.0) + pt.sum(np.arange(q, 0, -1) * log_diag)   # L -> D
                - (q + 1) * log_det_d)                                 # D -> Omega
    pm.Potential("omega_prior", wishart + jacobian)
    return L


def build_model(entry: dict, df, kind: str = "joint", name: str = "?"):
    """(pm.Model, N, p, q, prior) of models.json entry `entry` on data frame `df`.

    Raises:
        ValueError: unknown kind, a family/link the benchmark models do not cover, or a
            marginal model for a non-gaussian family.
    """
    import pymc as pm
    import pytensor.tensor as pt

    family = check_entry(name, entry, kind, KINDS, "PyMC")
    prior = parse_priors(name, entry)
    arrays = design(entry, df)
    N = int(arrays["cluster"].max()) + 1
    p, q = arrays["X"].shape[1], arrays["Z"].shape[1]
    # check_bounds=False: PyMC's Wishart log density checks that Omega is positive definite
    # and symmetric, which it is by construction here; nutpie's numba backend runs that check
    # in object mode (a Python call in every gradient). Without the checks (the other
    # parameter checks are all true here too) the log density is the same at every point.
    with pm.Model(check_bounds=False) as model:
        beta = _location(pm, "beta", prior.beta, p) if p else None
        mu = _location(pm, "mu", prior.mu, q)
        tau = None
        if family == "gaussian":
            c, d = prior.tau
            if prior.random_d:
                d = pm.Gamma("d", alpha=_f64(d[0]), beta=_f64(d[1]))
            tau = pm.Gamma("tau", alpha=_f64(c), beta=d if prior.random_d else _f64(d))
        L = _cholesky_factor(pm, pt, prior, q)
        if kind == "marginal":
            padded = pad_clusters(arrays)
            y = pm.Data("y_obs", padded["y"])
            Z = pm.Data("Z", padded["Z"])
            mask = pm.Data("mask", padded["mask"])
            mean = Z @ mu                                          # (N, M)
            if p:
                mean = mean + pm.Data("X", padded["X"]) @ beta
            ZL = Z @ L                                             # (N, M, q)
            noise = pt.switch(mask > 0, 1.0 / tau, _f64(1.0))            # (N, M)
            M = padded["y"].shape[1]
            V = ZL @ ZL.transpose(0, 2, 1) + noise[:, :, None] * np.eye(M)
            pm.MvNormal("y", mu=mean, cov=V, observed=y)
            return model, N, p, q, prior
        if kind == "joint":
            z = pm.Normal("z", _f64(0.0), _f64(1.0), shape=(N, q))
            b = mu + z @ L.T                                       # (N, q)
        elif q == 1:
            b = pm.Normal("b", mu=mu, sigma=L[0, 0], shape=(N, 1))
        else:
            b = pm.MvNormal("b", mu=mu, chol=L, shape=(N, q))
        Zd = pm.Data("Z", arrays["Z"])
        cluster = pm.Data("cluster", arrays["cluster"].astype(np.int64))
        eta = pt.sum(Zd * b[cluster], axis=1)                      # (n_obs,)
        if p:
            eta = eta + pm.Data("X", arrays["X"]) @ beta
        y = pm.Data("y_obs", arrays["y"])
        if family == "gaussian":
            pm.Normal("y", mu=eta, tau=tau, observed=y)
        elif family == "bernoulli":
            pm.Bernoulli("y", logit_p=eta, observed=y)
        elif family == "binomial":
            pm.Binomial("y", n=pm.Data("trials", arrays["trials"]), logit_p=eta, observed=y)
        else:
            pm.Poisson("y", mu=pt.exp(eta), observed=y)
    return model, N, p, q, prior


@dataclass
class Problem:
    """A PyMC model of a models.json entry with the sizes and priors it was built from."""

    name: str
    kind: str
    family: str
    model: object
    N: int
    p: int
    q: int
    prior: Prior

    @property
    def value_names(self) -> list[str]:
        """Names of the unconstrained value variables, in the model's order."""
        return [self.model.rvs_to_values[v].name for v in self.model.free_RVs]

    @property
    def dimension(self) -> int:
        """Number of unconstrained parameters NUTS moves."""
        q = self.q
        n = self.p + q + q * (q + 1) // 2
        n += (self.family == "gaussian") + self.prior.random_d + q * self.prior.random_gamma
        return n + (self.N * q if self.kind != "marginal" else 0)

    def unconstrained_from_natural(self, nat: dict) -> dict[str, np.ndarray]:
        """PyMC's unconstrained values (by value-variable name) from one jaxglmm natural draw
        (`GLMM.constrain`: beta, mu, tau, d, gamma, D, b)."""
        nat = {k: np.asarray(v, dtype=float) for k, v in nat.items()}
        L = np.linalg.cholesky(nat["D"])
        rows, cols = np.tril_indices(self.q, -1)
        out = {"mu": nat["mu"], "chol": np.concatenate([np.log(np.diag(L)), L[rows, cols]])}
        if self.p:
            out["beta"] = nat["beta"]
        if self.family == "gaussian":
            out["tau_log__"] = np.log(nat["tau"])
            if self.prior.random_d:
                out["d_log__"] = np.log(nat["d"])
        if self.prior.random_gamma:
            out["gamma_log__"] = np.log(nat["gamma"])
        if self.kind == "joint":
            out["z"] = np.linalg.solve(L, (nat["b"] - nat["mu"]).T).T   # b = mu + L z
        elif self.kind == "centred":
            out["b"] = nat["b"]
        return out

    def reference_draws(self, posterior) -> dict[str, np.ndarray]:
        """Draws (C, S, ...) by variable name (e.g. an ArviZ posterior group) -> the reference
        quantities of models.json (beta[k], mu[k], sigma, tau, D[j,k] j <= k, sd[j],
        corr[j,k] j < k, d, gamma[j]), each (C, S)."""
        out = {}
        for name in ("beta", "mu", "gamma"):
            if name in posterior:
                x = np.asarray(posterior[name])
                for k in range(x.shape[-1]):
                    out[f"{name}[{k}]"] = x[..., k]
        if "tau" in posterior:
            tau = np.asarray(posterior["tau"])
            out["sigma"] = 1.0 / np.sqrt(tau)
            out["tau"] = tau
        if "d" in posterior:
            out["d"] = np.asarray(posterior["d"])
        chol = np.asarray(posterior["chol"])
        q = self.q
        L = np.zeros(chol.shape[:-1] + (q, q))
        L[..., np.arange(q), np.arange(q)] = np.exp(chol[..., :q])
        rows, cols = np.tril_indices(q, -1)
        L[..., rows, cols] = chol[..., q:]
        D = L @ np.swapaxes(L, -1, -2)
        sd = np.sqrt(np.diagonal(D, axis1=-2, axis2=-1))
        for j in range(q):
            for k in range(j, q):
                out[f"D[{j},{k}]"] = D[..., j, k]
                if k > j:
                    out[f"corr[{j},{k}]"] = D[..., j, k] / (sd[..., j] * sd[..., k])
            out[f"sd[{j}]"] = sd[..., j]
        return out


def make_problem(name: str, entry: dict, df, kind: str = "joint") -> Problem:
    """The PyMC model of models.json entry `name` on data frame `df` (see build_model)."""
    model, N, p, q, prior = build_model(entry, df, kind, name)
    return Problem(name=name, kind=kind, family=entry["family"], model=model, N=N, p=p, q=q,
                   prior=prior)


def compile_nutpie(problem: Problem):
    """nutpie's compiled model with its defaults (numba backend), storing only psi (the draws
    of z or b are not kept: the benchmark reads psi only)."""
    import nutpie
    keep = [v for v in PSI_VARS if v in problem.model.named_vars]
    return nutpie.compile_pymc_model(problem.model, var_names=keep)


def flat_point(problem: Problem, values: dict[str, np.ndarray]) -> np.ndarray:
    """The flat unconstrained vector nutpie's logp function takes (the value variables of
    `model.free_RVs`, in order, each raveled, as nutpie joins them), from values by name."""
    return np.concatenate([np.asarray(values[name], dtype=float).reshape(-1)
                           for name in problem.value_names])
