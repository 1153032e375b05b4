"""NumPyro versions of the models of benchmarks/suite/models.json, for the benchmark (run.py).

The same model as jaxglmm (DESIGN.md section 1) with exactly the entry's priors, float64:

    y_ij | b_i ~ family(h(x_ij' beta + z_ij' b_i)),   b_i ~ N_q(mu, D),
    Omega = D^{-1} ~ Wishart(df, S), S^{-1} = diag(gamma),   tau ~ Gamma(c, d)  (gaussian)

with d ~ Gamma(g, h) and gamma_j ~ Gamma(g_j, h_j) where the entry makes them random, and a flat
(NumPyro `ImproperUniform`) prior on beta or mu where the entry writes none. Two samplers' views:

- `joint` (every family): non-centred b = mu + z L', z ~ N(0, I) (N, q), the way jaxglmm
  samples by default. L, the Cholesky factor of D, is a site with an improper uniform prior on
  `lower_cholesky`; the Wishart prior of Omega = (L L')^{-1} enters through `numpyro.factor`
  together with the Jacobian of L -> Omega:
      log|dOmega/dD| = -(q + 1) log|D|,   log|d(L L')/dL| = q log 2 + sum_i (q - i) log L_ii.
  NumPyro adds the Jacobian of its own unconstrained -> L transform (log-diagonal, then the
  strict lower triangle) itself, as jaxglmm does for its "chol" vector: the two unconstrained
  spaces differ by a permutation of coordinates, so the log densities agree up to a constant.
- `joint_centred` (every family): b_i ~ N_q(mu, L L') itself (MultivariateNormal with
  scale_tril=L), the better choice where every cluster's data pin its b_i down (jaxglmm's data
  rule picks it for cbpp and epil); the rest as `joint`.
- `marginal` (gaussian, identity link): b integrated out, one multivariate normal per cluster
  (Lai, Domke and Sheldon, NeurIPS 2024, "Hamiltonian Monte Carlo inference of marginalized
  linear mixed-effects models"), y_i ~ N(X_i beta + Z_i mu, Z_i D Z_i' + I / tau). Ragged
  clusters are padded to the largest size: padded rows have zero design rows, y = 0 and unit
  variance, so each adds the constant -log(2 pi) / 2 and nothing else.

The Wishart density is NumPyro's own (`dist.Wishart` with rate matrix diag(gamma)), so that
agreement with jaxglmm checks jaxglmm's Wishart code independently.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import LowerCholeskyTransform

KINDS = ("joint", "joint_centred", "marginal")
FAMILY_LINKS = {"gaussian": "identity", "bernoulli": "logit", "binomial": "logit",
                "poisson": "log"}


class Prior(NamedTuple):
    """Priors of one models.json entry, in the entry's terms (floats and tuples only)."""

    beta: tuple | None        # (loc, sd) or None (flat)
    mu: tuple | None          # (loc, sd) or None (flat)
    tau: tuple | None         # (c, d) with d a float, or (c, (g, h)) when d is random; None: no tau
    df: float                 # Wishart degrees of freedom
    gamma: tuple              # (q,) or (1,) fixed values, or (g, h) when random_gamma
    random_d: bool
    random_gamma: bool


def _gamma_spec(spec):
    """A Gamma [shape, rate] spec whose rate may itself be {"gamma": [g, h]}."""
    shape, rate = spec
    if isinstance(rate, dict):
        rate = tuple(float(v) for v in rate["gamma"])
    return float(shape), rate


def check_entry(name: str, entry: dict, kind: str, kinds: tuple, engine: str) -> str:
    """The entry's family, after checking that `engine`'s models cover it and `kind` (one of
    `kinds`); ValueError naming what is not covered."""
    if kind not in kinds:
        raise ValueError(f"kind={kind!r} is unknown; choose one of {', '.join(kinds)}.")
    family = entry["family"]
    link = entry.get("link", FAMILY_LINKS.get(family))
    if FAMILY_LINKS.get(family) != link:
        raise ValueError(f"models.json entry {name!r}: family {family!r} with link {link!r} "
                         f"is not covered; the {engine} models have gaussian/identity, "
                         "bernoulli/logit, binomial/logit and poisson/log.")
    if kind == "marginal" and family != "gaussian":
        raise ValueError(f"kind='marginal' needs a gaussian model; entry {name!r} is "
                         f"{family!r}.")
    return family


def parse_priors(name: str, entry: dict) -> Prior:
    """The entry's priors; Wishart (and tau for gaussian models) must be written."""
    p = entry.get("priors", {})
    if "omega" not in p:
        raise ValueError(f"models.json entry {name!r}: priors.omega is missing; the NumPyro "
                         "benchmark models need the Wishart prior written out.")
    if entry["family"] == "gaussian" and "tau" not in p:
        raise ValueError(f"models.json entry {name!r}: priors.tau is missing; a gaussian "
                         "model needs the Gamma prior of tau written out.")
    w = p["omega"]["wishart"]
    gamma = w["scale_inv_diag"]
    random_gamma = isinstance(gamma, dict)
    gamma = tuple(float(v) for v in (gamma["gamma"] if random_gamma else np.ravel(gamma)))
    tau = _gamma_spec(p["tau"]["gamma"]) if "tau" in p else None
    location = (lambda b: None if b is None else tuple(float(v) for v in b["normal"]))
    return Prior(beta=location(p.get("beta")), mu=location(p.get("mu")), tau=tau,
                 df=float(w["df"]), gamma=gamma, random_d=tau is not None
                 and isinstance(tau[1], tuple), random_gamma=random_gamma)


def design(entry: dict, df) -> dict[str, np.ndarray]:
    """Observation arrays of an entry: y, X (n_obs, p), Z (n_obs, q), cluster (n_obs,) (0..N-1
    in the order of the sorted group labels, as jaxglmm), trials (n_obs,)."""
    n = len(df)
    Z = np.column_stack([np.ones(n) if c == "1" else df[c].to_numpy(float)
                         for c in entry["Z"]])
    X = (np.column_stack([df[c].to_numpy(float) for c in entry["X"]]) if entry["X"]
         else np.zeros((n, 0)))
    _, cluster = np.unique(df[entry["group"]].to_numpy(), return_inverse=True)
    trials = df[entry["trials"]].to_numpy(float) if "trials" in entry else np.ones(n)
    return {"y": df[entry["y"]].to_numpy(float), "X": X, "Z": Z,
            "cluster": cluster.astype(np.int32), "trials": trials}


def pad_clusters(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cluster-major padded arrays for the marginal model: y (N, M), X (N, M, p),
    Z (N, M, q), mask (N, M) with M the largest cluster size; padded entries are zero."""
    cluster = arrays["cluster"]
    N = int(cluster.max()) + 1
    sizes = np.bincount(cluster, minlength=N)
    M = int(sizes.max())
    order = np.argsort(cluster, kind="stable")
    c = cluster[order]
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    slot = np.arange(c.size) - start[c]
    out = {"y": np.zeros((N, M)), "X": np.zeros((N, M, arrays["X"].shape[1])),
           "Z": np.zeros((N, M, arrays["Z"].shape[1])), "mask": np.zeros((N, M))}
    out["y"][c, slot] = arrays["y"][order]
    out["X"][c, slot] = arrays["X"][order]
    out["Z"][c, slot] = arrays["Z"][order]
    out["mask"][c, slot] = 1.0
    return out


# ------------------------------------------------------------------------------ model pieces

def _location(name: str, prior: tuple | None, size: int):
    """beta or mu (size,) with a Normal prior, or flat when `prior` is None."""
    if prior is None:
        return numpyro.sample(name, dist.ImproperUniform(constraints.real_vector, (),
                                                         event_shape=(size,)))
    loc, sd = prior
    return numpyro.sample(name, dist.Normal(jnp.full(size, loc), jnp.full(size, sd))
                          .to_event(1))


def _tau(prior: Prior):
    """tau (()) ~ Gamma(c, d), d itself Gamma(g, h) when random."""
    c, d = prior.tau
    if prior.random_d:
        d = numpyro.sample("d", dist.Gamma(d[0], d[1]))
    return numpyro.sample("tau", dist.Gamma(c, d))


def _covariance_factor(prior: Prior, q: int):
    """L (q, q), the Cholesky factor of D, with the Wishart prior of Omega = (L L')^{-1}
    and the Jacobian of L -> Omega added as a factor."""
    if prior.random_gamma:
        g, h = prior.gamma
        gamma = numpyro.sample("gamma", dist.Gamma(jnp.full(q, g), jnp.full(q, h))
                               .to_event(1))
    else:
        gamma = jnp.broadcast_to(jnp.asarray(prior.gamma, dtype=float), (q,))
    L = numpyro.sample("L", dist.ImproperUniform(constraints.lower_cholesky, (),
                                                 event_shape=(q, q)))
    eye = jnp.eye(q, dtype=L.dtype)
    omega = jax.scipy.linalg.cho_solve((L, True), eye)
    log_diag = jnp.log(jnp.diagonal(L))
    log_det_d = 2.0 * jnp.sum(log_diag)
    wishart = dist.Wishart(prior.df, rate_matrix=jnp.diag(gamma)).log_prob(omega)
    # Omega = D^{-1}: log|dOmega/dD| = -(q + 1) log|D|;  D = L L': q log 2 + sum (q - i) log L_ii
    jacobian = (-(q + 1) * log_det_d + q * jnp.log(2.0)
                + jnp.sum(jnp.arange(q, 0, -1) * log_diag))
    numpyro.factor("omega_prior", wishart + jacobian)
    return L


def _log_likelihood_site(family: str, eta, y, trials, tau):
    if family == "gaussian":
        return numpyro.sample("y", dist.Normal(eta, 1.0 / jnp.sqrt(tau)), obs=y)
    if family == "bernoulli":
        return numpyro.sample("y", dist.Bernoulli(logits=eta), obs=y)
    if family == "binomial":
        return numpyro.sample("y", dist.Binomial(total_count=trials, logits=eta), obs=y)
    return numpyro.sample("y", dist.Poisson(jnp.exp(eta)), obs=y)


def joint_model(y, X, Z, cluster, trials, *, N: int, family: str, prior: Prior,
                centred: bool = False):
    """Joint model, non-centred b = mu + z L' or centred b (see the module docstring)."""
    p, q = X.shape[1], Z.shape[1]
    beta = _location("beta", prior.beta, p) if p else None
    mu = _location("mu", prior.mu, q)
    tau = _tau(prior) if family == "gaussian" else None
    L = _covariance_factor(prior, q)
    if centred:
        b = numpyro.sample("b", dist.MultivariateNormal(mu, scale_tril=L).expand([N])
                           .to_event(1))
    else:
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([N, q]).to_event(2))
        b = mu + z @ L.T                                    # (N, q)
    eta = jnp.sum(Z * b[cluster], axis=1)                   # (n_obs,)
    if p:
        eta = eta + X @ beta
    _log_likelihood_site(family, eta, y, trials, tau)


def marginal_model(y, X, Z, mask, *, prior: Prior):
    """Gaussian model with b integrated out, padded clusters (see the module docstring)."""
    p, q = X.shape[-1], Z.shape[-1]
    beta = _location("beta", prior.beta, p) if p else None
    mu = _location("mu", prior.mu, q)
    tau = _tau(prior)
    L = _covariance_factor(prior, q)
    mean = Z @ mu                                           # (N, M)
    if p:
        mean = mean + X @ beta
    ZL = Z @ L                                              # (N, M, q)
    noise = jnp.where(mask > 0, 1.0 / tau, 1.0)             # (N, M)
    V = ZL @ jnp.swapaxes(ZL, -1, -2) + jax.vmap(jnp.diag)(noise)   # (N, M, M)
    numpyro.sample("y", dist.MultivariateNormal(mean, covariance_matrix=V), obs=y)


# --------------------------------------------------------------------------------- problems

@dataclass(frozen=True)
class Problem:
    """A NumPyro model with its data: `model(**data)` is the model; N clusters, p, q sizes."""

    name: str
    kind: str
    family: str
    model: Callable
    data: dict
    N: int
    p: int
    q: int
    prior: Prior

    @property
    def sites(self) -> tuple[str, ...]:
        """Latent sites sampled by NUTS."""
        out = (("beta",) if self.p else ()) + ("mu",)
        if self.family == "gaussian":
            out += (("d",) if self.prior.random_d else ()) + ("tau",)
        out += (("gamma",) if self.prior.random_gamma else ()) + ("L",)
        return out + {"joint": ("z",), "joint_centred": ("b",)}.get(self.kind, ())

    @property
    def dimension(self) -> int:
        """Number of unconstrained parameters NUTS moves."""
        q = self.q
        n = self.p + q + q * (q + 1) // 2
        n += (self.family == "gaussian") + self.prior.random_d
        n += q * self.prior.random_gamma
        return n + (self.N * q if self.kind != "marginal" else 0)

    def reference_draws(self, samples: dict) -> dict[str, np.ndarray]:
        """Draws (C, S, ...) of the sites -> the reference quantities of models.json (beta[k],
        mu[k], sigma, tau, D[j,k] j <= k, sd[j], corr[j,k] j < k, d, gamma[j]), each (C, S)."""
        out = {}
        for name in ("beta", "mu", "gamma"):
            if name in samples:
                for k in range(samples[name].shape[-1]):
                    out[f"{name}[{k}]"] = np.asarray(samples[name][..., k])
        if "tau" in samples:
            tau = np.asarray(samples["tau"])
            out["sigma"] = 1.0 / np.sqrt(tau)
            out["tau"] = tau
        if "d" in samples:
            out["d"] = np.asarray(samples["d"])
        L = np.asarray(samples["L"])
        D = L @ np.swapaxes(L, -1, -2)
        sd = np.sqrt(np.diagonal(D, axis1=-2, axis2=-1))
        for j in range(self.q):
            for k in range(j, self.q):
                out[f"D[{j},{k}]"] = D[..., j, k]
                if k > j:
                    out[f"corr[{j},{k}]"] = D[..., j, k] / (sd[..., j] * sd[..., k])
            out[f"sd[{j}]"] = sd[..., j]
        return out

    def potential_fn(self):
        """(params, data) -> potential energy (minus the log density) at unconstrained params;
        data enter as an argument (not as compile-time constants) when jitted."""
        def potential(params, data):
            return numpyro.infer.util.potential_energy(self.model, (), data, params)
        return potential

    def unconstrained_from_natural(self, nat: dict) -> dict:
        """NumPyro's unconstrained params from jaxglmm natural-scale values (`GLMM.constrain`:
        beta, mu, tau, d, gamma, D, b), each with any leading batch dims."""
        out = {"mu": jnp.asarray(nat["mu"])}
        if self.p:
            out["beta"] = jnp.asarray(nat["beta"])
        if self.family == "gaussian":
            out["tau"] = jnp.log(nat["tau"])
            if "d" in self.sites:
                out["d"] = jnp.log(nat["d"])
        if "gamma" in self.sites:
            out["gamma"] = jnp.log(nat["gamma"])
        L = jnp.linalg.cholesky(nat["D"])
        out["L"] = LowerCholeskyTransform().inv(L)
        if self.kind == "joint":
            # b_i = mu + L z_i  =>  z_i = L^{-1} (b_i - mu)
            centred = jnp.swapaxes(nat["b"] - nat["mu"][..., None, :], -1, -2)   # (.., q, N)
            z = jax.scipy.linalg.solve_triangular(L, centred, lower=True)
            out["z"] = jnp.swapaxes(z, -1, -2)
        elif self.kind == "joint_centred":
            out["b"] = jnp.asarray(nat["b"])
        return out


def make_problem(name: str, entry: dict, df, kind: str = "joint") -> Problem:
    """The NumPyro model of models.json entry `name` on data frame `df`.

    Raises:
        ValueError: unknown kind, a family/link the benchmark models do not cover, a
            marginal model for a non-gaussian family, or priors missing from the entry.
    """
    family = check_entry(name, entry, kind, KINDS, "NumPyro")
    prior = parse_priors(name, entry)
    arrays = design(entry, df)
    N = int(arrays["cluster"].max()) + 1
    p, q = arrays["X"].shape[1], arrays["Z"].shape[1]
    if kind != "marginal":
        data = {k: jnp.asarray(v) for k, v in arrays.items()}
        model = partial(joint_model, N=N, family=family, prior=prior,
                        centred=kind == "joint_centred")
    else:
        data = {k: jnp.asarray(v) for k, v in pad_clusters(arrays).items()}
        model = partial(marginal_model, prior=prior)
    return Problem(name=name, kind=kind, family=family, model=model, data=data, N=N, p=p,
                   q=q, prior=prior)


def initial_params(problem: Problem, glmm, seed: int, chains: int):
    """Starting points for NumPyro's `MCMC.run(init_params=...)`: a `ParamInfo` of
    unconstrained values (leading axis `chains`), their potential energy and its gradient,
    equal on the natural scale to the points jaxglmm's `GLMM.sample(chains=..., seed=seed)`
    starts from (its key splitting is repeated here). The potential and gradient are computed
    in one jitted call: passed a bare dict, NumPyro would compute them op by op, which costs
    hundreds of small compilations."""
    key = jax.random.key(int(seed))
    init_key = jax.random.split(key, 3)[0]
    natural = [glmm.constrain(glmm.initial_position(k))
               for k in jax.random.split(init_key, chains)]
    stacked = {k: jnp.stack([n[k] for n in natural]) for k in natural[0]}
    z = problem.unconstrained_from_natural(stacked)
    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(problem.potential_fn()),
                                      in_axes=(0, None)))
    energy, grad = value_and_grad(z, problem.data)
    return numpyro.infer.util.ParamInfo(z, energy, grad)


def make_mcmc(problem: Problem, chains: int, warmup: int, draws: int,
              dense_mass: bool = False, chain_method: str = "vectorized"):
    """NumPyro NUTS with jaxglmm's sampler settings (target acceptance 0.8, tree depth 10,
    diagonal or dense mass matrix, and its chain method: "vectorized" on one device, or
    "sequential", one chain after the other)."""
    kernel = numpyro.infer.NUTS(problem.model, target_accept_prob=0.8, dense_mass=dense_mass,
                                max_tree_depth=10)
    return numpyro.infer.MCMC(kernel, num_warmup=warmup, num_samples=draws,
                              num_chains=chains, chain_method=chain_method,
                              progress_bar=False)
