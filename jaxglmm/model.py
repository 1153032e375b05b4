"""The GLMM: validated data, the model's static description, and entry points to its pure
functions (log density, initial positions, constraining) and to sampling."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import collapsed
from .density import ModelData, ModelSpec, log_posterior, natural_draw, unpack
from .design import ArrayData, choose_centred, prepare_arrays
from .families import Family, make_family
from .parameters import n_chol
from .priors import Flat, Priors, default_priors, describe_priors, resolve_priors
from .results import Fit
from .sampling import SamplerConfig, sample_chains

FACTORS = ("D", "omega")
METHODS = ("auto", "joint", "collapsed")
DENSE_MAX_DIM = 100
DTYPES = ("float64", "float32")
LATENT = ("z", "b")  # position keys of the random effects (absent when b is integrated out)


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _as_key(seed):
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return jax.random.key(int(seed))
    if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if isinstance(seed, jax.Array) and seed.shape == (2,) and seed.dtype == jnp.uint32:
        return jax.random.wrap_key_data(seed)
    raise ValueError(f"seed: must be an integer or a jax.random key, got {seed!r}.")


class GLMM:
    """A generalized linear mixed model (DESIGN.md section 1) ready to sample.

        y_ij | b_i ~ family with mean h(x_ij' beta + z_ij' b_i + offset_ij)
        b_i ~ N_q(mu, D),   Omega = D^{-1},   priors as in `jaxglmm.Priors`

    Build one with `GLMM.from_arrays`. The object is immutable: sampling returns a `Fit`.
    """

    def __init__(self, arrays: ArrayData, family: Family, priors: Priors | None,
                 centred: bool | None = None, factor: str = "D", dtype: str = "float64"):
        if factor not in FACTORS:
            raise ValueError(f"factor={factor!r} is unknown; choose one of "
                             f"{', '.join(map(repr, FACTORS))}.")
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r} is unknown; choose 'float64' or 'float32'.")
        self.arrays = arrays
        p, q, N = arrays.X.shape[1], arrays.Z.shape[1], len(arrays.groups)
        defaults = default_priors(arrays.y, arrays.X, arrays.Z, family, arrays.trials)
        resolved = resolve_priors(priors, defaults, p, q, family.has_dispersion)
        self.centred_auto = centred is None
        if centred is None:
            centred = choose_centred(arrays, family)
        self.spec = ModelSpec(family=family, priors=resolved, p=p, q=q, N=N,
                              centred=bool(centred), factor=factor)
        self.dtype = dtype
        self._init_loc, self._init_scale = self._init_box(defaults)
        flat = [name for name in ("beta", "mu")
                if isinstance(getattr(resolved.spec, name), Flat) and (p if name == "beta" else q)]
        if flat:
            warnings.warn(f"priors.{' and '.join(flat)}: flat (improper) prior; the posterior "
                          "is proper only if the data identify these coefficients.",
                          UserWarning, stacklevel=3)

    @classmethod
    def from_arrays(cls, y, Z, groups, X=None, family="gaussian", trials=None, offset=None,
                    priors: Priors | None = None, x_names=None, z_names=None, *,
                    link: str | None = None, centred: bool | None = None, factor: str = "D",
                    dtype: str = "float64") -> "GLMM":
        """A model from arrays.

        Args:
            y: responses (n_obs,).
            Z: random-effects design (n_obs, q), or (n_obs,) for one column.
            groups: cluster label per observation (n_obs,), any sortable labels.
            X: fixed-effects design (n_obs, p) or None (no beta). X and Z share no column.
            family: "gaussian", "bernoulli", "binomial", "poisson" or a Family object.
            trials: binomial number of trials (n_obs,).
            offset: known term added to the linear predictor (n_obs,).
            priors: a `jaxglmm.Priors`; fields left None take the defaults scaled to the data.
            x_names, z_names: column names for the output (p,), (q,).
            link: link function (default: the family's canonical one).
            centred: sample b directly (True) or the non-centred z with b = mu + L z (False);
                None (default) chooses by the data: centred when the typical cluster's
                information ratio is >= 3 (`jaxglmm.design.information_ratio`).
            factor: "D" (default) or "omega": which Cholesky factor the sampler moves.
            dtype: "float64" (default) or "float32" for the computations.
        Raises:
            ValueError: any bad input, naming the argument and the first bad row.
        """
        fam = make_family(family, link)
        arrays = prepare_arrays(y, Z, groups, X, fam, trials, offset, x_names, z_names)
        return cls(arrays, fam, priors, centred=centred, factor=factor, dtype=dtype)

    # ------------------------------------------------------------------ pure functions

    @property
    def priors(self) -> Priors:
        """The priors used, user values and defaults filled in."""
        return self.spec.priors.spec

    def describe_priors(self) -> str:
        """The priors used, one line per block or coefficient, defaults marked."""
        a = self.arrays
        return "\n".join(describe_priors(self.spec.priors, a.x_names, a.z_names))

    def _data(self) -> ModelData:
        """Device arrays in the current precision."""
        a = self.arrays
        f = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        y, trials = jnp.asarray(a.y, f), jnp.asarray(a.trials, f)
        return ModelData(y=y, X=jnp.asarray(a.X, f), Z=jnp.asarray(a.Z, f),
                         cluster=jnp.asarray(a.cluster), trials=trials,
                         offset=jnp.asarray(a.offset, f),
                         log_base=jnp.sum(self.spec.family.log_base(y, trials)))

    @property
    def logdensity_fn(self):
        """The joint log posterior as a pure function of the unconstrained pytree (dict).

        It computes in the precision JAX is set to when it is called: turn on
        `jax.config.update("jax_enable_x64", True)` (or use `with jax.enable_x64(True):`)
        for float64. `sample` does this by itself for a float64 model.
        """
        spec = self.spec

        def logdensity(position):
            return log_posterior(position, self._data(), spec)
        return logdensity

    def _init_box(self, defaults: Priors):
        """Centre and half-width of the box that initial positions are drawn from."""
        a, spec = self.arrays, self.spec
        s = (float(np.std(a.y)) or 1.0) if spec.family.name == "gaussian" else 1.0
        q = spec.q
        loc, scale = {}, {}
        if spec.p:
            loc["beta"] = np.zeros(spec.p)
            scale["beta"] = 0.1 * np.asarray(defaults.beta.scale, float)
        loc["mu"] = np.asarray(defaults.mu.loc, float) * np.ones(q)
        scale["mu"] = 0.1 * np.asarray(defaults.mu.scale, float) * np.ones(q)
        s_j = np.sqrt(np.asarray(defaults.omega.scale_inv_diag, float) / 0.1) * np.ones(q)
        log_sd = np.log(0.5 * s_j)
        diag = log_sd if spec.factor == "D" else -log_sd
        loc["chol"] = np.concatenate([diag, np.zeros(n_chol(q) - q)])
        scale["chol"] = np.concatenate([np.full(q, 0.5), np.full(n_chol(q) - q, 0.1)])
        if spec.family.has_dispersion:
            loc["log_tau"] = np.asarray(-2.0 * np.log(s))
            scale["log_tau"] = np.asarray(0.5)
        pri = spec.priors
        if pri.random_d:
            g, h = pri.tau[1]
            loc["log_d"], scale["log_d"] = np.asarray(np.log(g / h)), np.asarray(0.5)
        if pri.random_gamma:
            g, h = (np.asarray(v) for v in pri.gamma)
            loc["log_gamma"], scale["log_gamma"] = np.log(g / h), np.full(q, 0.5)
        re = "b" if spec.centred else "z"
        loc[re] = np.tile(loc["mu"], (spec.N, 1)) if spec.centred else np.zeros((spec.N, q))
        scale[re] = np.tile(0.5 * s_j, (spec.N, 1)) if spec.centred else np.ones((spec.N, q))
        return loc, scale

    def initial_position(self, key) -> dict:
        """A random unconstrained position (dict of arrays) near the data's scale: each leaf
        uniform in a box around a data-based centre (see README "Initial values")."""
        key = _as_key(key)
        f = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        names = sorted(self._init_loc)
        keys = jax.random.split(key, len(names))
        return {name: jnp.asarray(self._init_loc[name], f)
                + jax.random.uniform(k, np.shape(self._init_loc[name]), f, -1.0, 1.0)
                * jnp.asarray(self._init_scale[name], f)
                for name, k in zip(names, keys)}

    def initial_positions(self, seed, chains: int, method: str = "auto") -> list[dict]:
        """The starting positions `sample(chains=..., seed=seed, method=method)` uses, one
        dict per chain (without the random effects when b is integrated out)."""
        method = self._resolve_method(method)
        init_key = jax.random.split(_as_key(seed), 3)[0]
        latent = LATENT if method == "collapsed" else ()
        return [{k: v for k, v in self.initial_position(k_c).items() if k not in latent}
                for k_c in jax.random.split(init_key, chains)]

    def constrain(self, position: dict) -> dict:
        """Natural-scale parameters of one unconstrained position: beta, mu, tau, sigma, D,
        sd, corr, b, and the random hyperparameters d, gamma."""
        return natural_draw(position, self.spec)

    @property
    def can_collapse(self) -> bool:
        """Whether b can be integrated out exactly (gaussian family, identity link)."""
        f = self.spec.family
        return f.name == "gaussian" and f.link == "identity"

    def _n_sampled(self, method: str) -> int:
        """Number of unconstrained parameters the sampler moves under `method`."""
        return int(sum(np.size(v) for k, v in self._init_loc.items()
                       if method == "joint" or k not in LATENT))

    def _resolve_method(self, method: str) -> str:
        if method not in METHODS:
            raise ValueError(f"method={method!r} is unknown; choose one of "
                             f"{', '.join(map(repr, METHODS))}.")
        if method == "collapsed" and not self.can_collapse:
            raise ValueError("method='collapsed': b can be integrated out only for the "
                             "gaussian family with the identity link; use method='joint'.")
        if method == "auto":
            return "collapsed" if self.can_collapse else "joint"
        return method

    def _problem(self, method: str, template: dict):
        """(data for the jitted code, unravel, make_logdensity, transform) of a method."""
        spec = self.spec
        _, unravel = ravel_pytree(template)
        if method == "joint":
            def make_logdensity(data):
                return lambda x: log_posterior(unravel(x), data, spec)

            def transform(x, data, key):
                return natural_draw(unravel(x), spec)
            return self._data(), unravel, make_logdensity, transform

        stats = jax.jit(collapsed.sufficient_stats, static_argnums=1)(self._data(), spec.N)

        def make_logdensity(stats):
            return lambda x: collapsed.log_posterior_collapsed(unravel(x), stats, spec)

        def transform(x, stats, key):
            position = unravel(x)
            psi, _ = unpack(position, spec)
            return natural_draw(position, spec, b=collapsed.draw_b(key, psi, stats, spec))
        return stats, unravel, make_logdensity, transform

    # ------------------------------------------------------------------------ sampling

    def sample(self, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed=0, *,
               kernel="nuts", target_accept: float | None = None, max_tree_depth: int = 10,
               dense_mass: bool | None = None, num_integration_steps: int = 32,
               method: str = "auto", progress: bool = True, chunk: int = 50) -> Fit:
        """Run `chains` chains of window adaptation then `draws` draws, in one vmapped program.

        Args:
            chains, warmup, draws: numbers of chains, warmup iterations, kept draws.
            seed: an integer or a jax.random key; the same seed gives the same draws.
            kernel: "nuts" (default), "hmc" or "mala", or blackjax.nuts / .hmc / .mala.
            target_accept: step-size adaptation target (0.8; 0.574 for MALA).
            max_tree_depth: NUTS's maximum number of doublings.
            dense_mass: adapt a dense (True) or diagonal (False) inverse mass matrix; None
                (default): dense when the sampler moves at most 100 parameters, except for
                the joint sampler of a gaussian model (diagonal).
            num_integration_steps: leapfrog steps per HMC transition.
            method: "auto" (collapsed for gaussian identity models, else joint), "joint"
                (b sampled with psi), or "collapsed" (b integrated out, drawn exactly
                given psi for every kept draw).
            progress: show a progress bar when sampling takes more than two seconds.
            chunk: iterations per jitted chunk (progress and memory granularity).
        Returns:
            A `Fit` with natural-scale draws of leading shape (chains, draws).
        """
        method = self._resolve_method(method)
        if dense_mass is None:
            dense_mass = self._n_sampled(method) <= DENSE_MAX_DIM and not (
                method == "joint" and self.spec.family.name == "gaussian")
        chains = _check_count(chains, "chains", 1)
        warmup = _check_count(warmup, "warmup", 0)
        draws = _check_count(draws, "draws", 1)
        chunk = _check_count(chunk, "chunk", 1)
        config = SamplerConfig(kernel=kernel, target_accept=target_accept,
                               max_tree_depth=max_tree_depth, dense_mass=dense_mass,
                               num_integration_steps=num_integration_steps)
        key = _as_key(seed)
        spec = self.spec
        with jax.enable_x64(self.dtype == "float64"):
            _, warmup_key, sample_key = jax.random.split(key, 3)
            starts = self.initial_positions(key, chains, method)
            data, unravel, make_logdensity, transform = self._problem(method, starts[0])
            x0 = jnp.stack([ravel_pytree(start)[0] for start in starts])

            timings: dict = {}
            out, stats, last, done = sample_chains(
                make_logdensity, transform, data, x0, jax.random.split(warmup_key, chains),
                jax.random.split(sample_key, chains), warmup, draws, config,
                cache_key=(spec, method), progress=progress, chunk=chunk, timings=timings)
        parametrisation = ("b integrated out" if method == "collapsed"
                           else "centred" if spec.centred else "non-centred")
        if method == "joint" and self.centred_auto:
            parametrisation += " (chosen by the data)"
        info = {"method": method, "parametrisation": parametrisation, "factor": spec.factor,
                "chains": chains, "warmup": warmup, "draws": done,
                "mass_matrix": "dense" if config.dense_mass else "diagonal",
                "seed": seed if isinstance(seed, int) else None, "dtype": self.dtype,
                **timings}
        return Fit(
            draws=out, sample_stats=stats, model=self, config=config, info=info,
            step_size=np.asarray(last.step_size),
            inverse_mass_matrix=np.asarray(last.inverse_mass_matrix),
            last_state=last,
        )

    def __repr__(self) -> str:
        s = self.spec
        return (f"GLMM(family={s.family.name!r}, link={s.family.link!r}, n_obs="
                f"{self.arrays.y.shape[0]}, N={s.N}, p={s.p}, q={s.q})")
