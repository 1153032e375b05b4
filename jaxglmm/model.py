"""The GLMM: validated data, the model's static description, and entry points to its pure
functions (log density, initial positions, constraining) and to sampling."""
from __future__ import annotations

import warnings
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .basis import BASES, NONE as NONE_BASIS, centring, describe as describe_basis, to_sampler
from .config import SamplerConfig
from .density import ModelData, ModelSpec, TermSpec, log_posterior, natural_draw
from .design import ArrayData, choose_centred, prepare_arrays
from .families import MEAN_TEXT, Family, make_family
from .keys import as_key
from .parameters import n_chol
from .partial import collapsed_term
from .priors import Flat, Normal, Priors, default_priors, describe_priors, resolve_priors
from .problem import Problem, build_problem
from .results import Fit
from .sampling import compile_seconds, default_chain_method, sample_chains, use_persistent_cache

FACTORS = ("D", "omega")
METHODS = ("auto", "joint", "collapsed")
# dense mass matrix up to this many sampled coordinates: cbpp (20) mixes 1.5x better per
# second with dense, epil (66) 1.8x better with diagonal (4 x 1000/1000, two CPU devices:
# the dense matrix's warmup windows hold fewer draws than coordinates, and each step costs more)
DENSE_MAX_DIM = 40
MASS_MATRICES = ("auto", "dense", "diagonal", "block")
DTYPES = ("float64", "float32")
LATENT = ("z", "b")  # position keys of the random effects (absent when b is integrated out)


def _is_latent(name: str) -> bool:
    """Whether a position name holds random effects ("z", "b", "z|g", "b|g")."""
    return name.split("|")[0] in LATENT


def _pick(prior, columns: tuple):
    """A Normal prior restricted to `columns` (the random columns with a mean parameter)."""
    if isinstance(prior, Normal):
        def pick(v):
            v = np.asarray(v, float)
            return tuple((v[list(columns)] if v.ndim else np.full(len(columns), v)).tolist())
        return Normal(pick(prior.loc), pick(prior.scale))
    return prior


def _init_shrink(M: np.ndarray, scales: np.ndarray, s: float) -> np.ndarray:
    """Per column of M, a factor <= 1 for the initial half-width of its coefficient (whose
    scale is `scales`; s the data scale of the default priors), so that column times
    coefficient starts within about 3 s: a column far from 0 relative to its spread (a year,
    a dose around 1000) otherwise starts eta so far off that exp(eta) overflows (log links).
    1 for centred columns and for intercepts whose prior is not widened by such columns."""
    out = np.ones(M.shape[1])
    for j, col in enumerate(M.T):
        top = float(np.max(np.abs(col))) if col.size else 0.0
        if top == 0.0:
            continue
        sd = float(np.std(col))
        if sd > 1e-12 * max(1.0, top):
            out[j] = min(1.0, 3.0 * sd / top)
        else:  # constant: intercept prior N(m, w / |c|), w widened by uncentred slopes
            out[j] = min(1.0, 5.0 * s / (top * scales[j]))
    return out


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}.")
    return int(value)


@jax.jit
def _box_draw(key, loc: dict, scale: dict) -> dict:
    """loc + scale * U(-1, 1) for every leaf, one key per leaf in sorted order of the names
    (one compiled program instead of a dozen small eager ones)."""
    names = sorted(loc)
    keys = jax.random.split(key, len(names))
    return {name: loc[name] + jax.random.uniform(k, loc[name].shape, loc[name].dtype, -1.0, 1.0)
            * scale[name] for name, k in zip(names, keys)}


class GLMM:
    """A generalized linear mixed model (DESIGN.md section 1) ready to sample.

        y_ij | b_i ~ family with mean h(x_ij' beta + z_ij' b_i + offset_ij)
        b_i ~ N_q(mu, D),   Omega = D^{-1},   priors as in `jaxglmm.Priors`

    Build one from a formula and a data frame, `GLMM("y ~ x + (1 + t | id)", df)`, or from
    arrays with `GLMM.from_arrays`. The object is immutable: sampling returns a `Fit`.
    """

    formula: str | None = None
    data = None        # the rows and columns of the user's frame that the formula uses
    na_action: str = "raise"

    def __init__(self, formula: str, data, family="gaussian", priors: Priors | None = None, *,
                 link: str | None = None, centred: bool | str | None = None, factor: str = "D",
                 dtype: str = "float64", na_action: str = "raise"):
        """A model from an lme4-style formula and a pandas DataFrame.

        Args:
            formula: e.g. "y ~ x + (1 + t | id)". Fixed part parsed by `formulae`
                (numeric and categorical predictors with treatment coding, interactions,
                functions such as log(x)); random terms "(expr | g)", "(1 | a/b)" (nested:
                a and a:b), several terms (crossed). Binomial responses as
                "cbind(successes, failures)" or "successes/trials" or "p(successes, trials)".
                A column both in the fixed part and in a random term becomes that term's mu;
                a random column not in the fixed part has mean 0 (lme4's convention).
            data: a pandas DataFrame; never modified.
            family, link, priors, centred, factor, dtype: as in `GLMM.from_arrays`; with
                several terms `priors.mu` / `priors.omega` may be dicts keyed by the grouping
                factor, and `centred` is chosen per term when None.
            na_action: "raise" (default: missing values in the used columns are an error
                that says how many rows and which columns) or "drop" (drop those rows, with
                a warning saying how many).
        Raises:
            ValueError: a formula that does not parse, a missing column, a grouping factor
                with one level, a response the family cannot take, missing values.
        """
        from .formula import parse_formula
        fam = make_family(family, link)
        parsed = parse_formula(formula, data, fam, na_action)
        self.formula = formula
        self.data = parsed.data
        self.na_action = na_action
        self.design = parsed
        self._setup(parsed.arrays, fam, priors, centred, factor, dtype)

    @classmethod
    def from_array_data(cls, arrays: ArrayData, family: Family, priors: Priors | None,
                        centred: bool | str | None = None, factor: str = "D",
                        dtype: str = "float64") -> "GLMM":
        model = cls.__new__(cls)
        model.design = None
        model._setup(arrays, family, priors, centred, factor, dtype)
        return model

    def _setup(self, arrays: ArrayData, family: Family, priors: Priors | None,
               centred: bool | str | None, factor: str, dtype: str) -> None:
        if factor not in FACTORS:
            raise ValueError(f"factor={factor!r} is unknown; choose one of "
                             f"{', '.join(map(repr, FACTORS))}.")
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r} is unknown; choose 'float64' or 'float32'.")
        is_laplace = isinstance(centred, str) and centred == "laplace"
        if centred is not None and not is_laplace and not isinstance(centred, (bool, np.bool_)):
            raise ValueError(f"centred: must be True, False, 'laplace' or None (chosen by the "
                             f"data), got {centred!r}.")
        if priors is not None and not isinstance(priors, Priors):
            raise ValueError(f"priors: must be a jaxglmm.Priors, got {type(priors).__name__}.")
        self.arrays = arrays
        p = arrays.X.shape[1]
        terms = arrays.terms
        names = tuple(t.name for t in terms)
        priors = priors if priors is not None else Priors()
        self.centred_auto = centred is None
        term_specs, defaults_k = [], []
        for k, t in enumerate(terms):
            q = t.Z.shape[1]
            defaults = default_priors(arrays.y, arrays.X, t.Z, family, arrays.trials)
            defaults = replace(defaults, mu=_pick(defaults.mu, t.mu_free))
            resolved = resolve_priors(priors.for_term(t.name, names), defaults, p, q,
                                      family.has_dispersion, q_mu=len(t.mu_free))
            if is_laplace:
                c = False
            else:
                c = choose_centred(arrays, family, k) if centred is None else bool(centred)
            key = "" if len(terms) == 1 else f"|{t.name}"
            term_specs.append(TermSpec(key=key, q=q, N=len(t.groups), mu_free=t.mu_free,
                                       centred=c, factor=factor, priors=resolved,
                                       laplace=is_laplace))
            defaults_k.append(defaults)
        self.spec = ModelSpec(family=family, priors=term_specs[0].priors, p=p,
                              terms=tuple(term_specs))
        self.dtype = dtype
        self._init_loc, self._init_scale = self._init_box(defaults_k)
        self._centrings: dict = {}  # collapsed terms -> the centred basis (jaxglmm.basis)
        flat = []
        if p and isinstance(self.spec.priors.spec.beta, Flat):
            flat.append("beta")
        if any(isinstance(ts.priors.spec.mu, Flat) and ts.mu_free for ts in term_specs):
            flat.append("mu")
        if flat:
            warnings.warn(f"priors.{' and '.join(flat)}: flat (improper) prior; the posterior "
                          "is proper only if the data identify these coefficients.",
                          UserWarning, stacklevel=4)

    @classmethod
    def from_arrays(cls, y, Z, groups, X=None, family="gaussian", trials=None, offset=None,
                    priors: Priors | None = None, x_names=None, z_names=None, *,
                    link: str | None = None, centred: bool | str | None = None, factor: str = "D",
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
                "laplace": Laplace-guided z, b_i = m_i(psi) + L_i(psi)^{-T} z_i with the
                conditional mode m_i and curvature L_i L_i' of b_i given psi and y after a
                fixed number of Newton steps (`jaxglmm.laplace`; exact, every term).
            factor: "D" (default) or "omega": which Cholesky factor the sampler moves.
            dtype: "float64" (default) or "float32" for the computations.
        Raises:
            ValueError: any bad input, naming the argument and the first bad row.
        """
        fam = make_family(family, link)
        arrays = prepare_arrays(y, Z, groups, X, fam, trials, offset, x_names, z_names)
        return cls.from_array_data(arrays, fam, priors, centred=centred, factor=factor,
                                   dtype=dtype)

    # ------------------------------------------------------------------ pure functions

    @property
    def priors(self) -> Priors:
        """The priors used, user values and defaults filled in; with several random-effect
        terms mu and omega are dicts by grouping factor."""
        first = self.spec.priors.spec
        if len(self.spec.terms) == 1:
            return first
        names = [t.name for t in self.arrays.terms]
        per_term = {block: {n: getattr(ts.priors.spec, block)
                            for n, ts in zip(names, self.spec.terms)}
                    for block in ("mu", "omega")}
        defaults = tuple(b for b in ("beta", "tau") if b in first.defaults) + tuple(
            b for b in ("mu", "omega")
            if all(b in ts.priors.spec.defaults for ts in self.spec.terms))
        return Priors(beta=first.beta, tau=first.tau, defaults=defaults, **per_term)

    def describe_priors(self) -> str:
        """The priors used, one line per block or coefficient, defaults marked."""
        a, spec = self.arrays, self.spec
        lines = describe_priors(spec.priors, a.x_names, (), blocks=("beta", "tau"))
        for t, ts in zip(a.terms, spec.terms):
            mu_names = tuple(t.z_names[j] for j in ts.mu_free)
            lines += describe_priors(ts.priors, (), t.z_names, mu_names, ts.key,
                                     blocks=("mu", "omega"))
        return "\n".join(lines)

    def model_data(self) -> ModelData:
        """Device arrays in the current precision."""
        a = self.arrays
        f = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        y, trials = jnp.asarray(a.y, f), jnp.asarray(a.trials, f)
        extra = tuple((jnp.asarray(t.Z, f), jnp.asarray(t.cluster)) for t in a.extra)
        return ModelData(y=y, X=jnp.asarray(a.X, f), Z=jnp.asarray(a.Z, f),
                         cluster=jnp.asarray(a.cluster), trials=trials,
                         offset=jnp.asarray(a.offset, f),
                         log_base=jnp.sum(self.spec.family.log_base(y, trials)), extra=extra)

    @property
    def logdensity_fn(self):
        """The joint log posterior as a pure function of the unconstrained pytree (dict).

        It computes in the precision JAX is set to when it is called: turn on
        `jax.config.update("jax_enable_x64", True)` (or use `with jax.enable_x64(True):`)
        for float64. `sample` does this by itself for a float64 model.
        """
        spec = self.spec

        def logdensity(position):
            return log_posterior(position, self.model_data(), spec)
        return logdensity

    def _init_box(self, defaults_k: list[Priors]):
        """Centre and half-width of the box that initial positions are drawn from (per
        position name); `defaults_k` the default priors of each term."""
        a, spec = self.arrays, self.spec
        fam = spec.family
        s = (float(np.std(a.y)) or 1.0) if fam.has_dispersion else 1.0
        s_prior, _ = fam.data_scale(a.y)
        loc, scale = {}, {}
        if spec.p:
            beta_scale = np.asarray(defaults_k[0].beta.scale, float) * np.ones(spec.p)
            loc["beta"] = np.zeros(spec.p)
            scale["beta"] = 0.1 * beta_scale * _init_shrink(a.X, beta_scale, s_prior)
        for t, term, defaults in zip(a.terms, spec.terms, defaults_k):
            q, name, n_mu = term.q, term.name, len(term.mu_free)
            mu_full = np.zeros(q)
            if n_mu:
                free = list(term.mu_free)
                mu_scale = np.asarray(defaults.mu.scale, float) * np.ones(n_mu)
                loc[name("mu")] = np.asarray(defaults.mu.loc, float) * np.ones(n_mu)
                scale[name("mu")] = 0.1 * mu_scale * _init_shrink(t.Z[:, free], mu_scale,
                                                                  s_prior)
                mu_full[free] = loc[name("mu")]
            s_j = np.sqrt(np.asarray(defaults.omega.scale_inv_diag, float) / 0.1) * np.ones(q)
            # a column far from 0 relative to its spread starts with a smaller sd of b
            s_j = s_j * _init_shrink(t.Z, s_j, s_prior)
            log_sd = np.log(0.5 * s_j)
            diag = log_sd if term.factor == "D" else -log_sd
            # an entry below the diagonal has the units of its row (row i of chol(D) those of
            # b_i, of chol(Omega) their inverse): +-0.1 of the row's diagonal, so that a
            # column on a scale far from 1 does not start with a huge off-diagonal term
            rows, _ = np.tril_indices(q, -1)
            loc[name("chol")] = np.concatenate([diag, np.zeros(n_chol(q) - q)])
            scale[name("chol")] = np.concatenate([np.full(q, 0.5), 0.1 * np.exp(diag)[rows]])
            pri = term.priors
            if pri.random_gamma:
                g, h = (np.asarray(v) for v in pri.gamma)
                loc[name("log_gamma")], scale[name("log_gamma")] = np.log(g / h), np.full(q, 0.5)
            if term.centred:
                loc[name("b")] = np.tile(mu_full, (term.N, 1))
                scale[name("b")] = np.tile(0.5 * s_j, (term.N, 1))
            else:
                loc[name("z")], scale[name("z")] = np.zeros((term.N, q)), np.ones((term.N, q))
        if spec.family.has_dispersion:
            loc["log_tau"] = np.asarray(-2.0 * np.log(s))
            scale["log_tau"] = np.asarray(0.5)
        pri = spec.priors
        if pri.random_d:
            g, h = pri.tau[1]
            loc["log_d"], scale["log_d"] = np.asarray(np.log(g / h)), np.asarray(0.5)
        return loc, scale

    def _sampler_scale(self, template: dict) -> np.ndarray:
        """A typical size of each coordinate of the flat position (as ravel_pytree orders
        `template`): the half-widths of the initial box, which follow the data's units (prior
        sds of beta and mu, sd guesses of b, 0.5 for log scales). Warmup adapts the mass
        matrix relative to them, so rescaling y does not change how well it mixes."""
        flat, _ = ravel_pytree({k: np.broadcast_to(np.asarray(self._init_scale[k], float),
                                                   np.shape(v))
                                for k, v in template.items()})
        return np.asarray(flat)

    def initial_position(self, key) -> dict:
        """A random unconstrained position (dict of arrays) near the data's scale: each leaf
        uniform in a box around a data-based centre (see README "Initial values")."""
        f = np.float64 if jax.config.jax_enable_x64 else np.float32
        loc = {k: np.asarray(v, f) for k, v in self._init_loc.items()}
        scale = {k: np.asarray(self._init_scale[k], f) for k in loc}
        return _box_draw(as_key(key), loc, scale)

    def initial_positions(self, seed, chains: int, method: str = "auto") -> list[dict]:
        """The starting positions `sample(chains=..., seed=seed, method=method)` uses, one
        dict per chain (without the random effects when b is integrated out)."""
        method = self._resolve_method(method)
        init_key = jax.random.split(as_key(seed), 3)[0]
        gone = self._integrated_names(method)
        return [{k: v for k, v in self.initial_position(k_c).items() if k not in gone}
                for k_c in jax.random.split(init_key, chains)]

    def collapsed_terms(self, method: str = "auto") -> tuple:
        """Indices of the random-effect terms whose b `method` integrates out: none for
        "joint"; for "collapsed" the only term, or with several terms the one with the most
        levels (`jaxglmm.partial`)."""
        method = self._resolve_method(method)
        if method == "joint":
            return ()
        return (0,) if len(self.spec.terms) == 1 else (collapsed_term(self.spec),)

    def _integrated_names(self, method: str) -> set:
        """Position names of the latent effects that `method` integrates out."""
        terms = [self.spec.terms[k] for k in self.collapsed_terms(method)]
        return {t.name(base) for t in terms for base in LATENT}

    def constrain(self, position: dict) -> dict:
        """Natural-scale parameters of one unconstrained position: beta, mu, tau, sigma, D,
        sd, corr, b, and the random hyperparameters d, gamma."""
        laplace = any(t.laplace for t in self.spec.terms)  # only their b needs the data
        return natural_draw(position, self.spec, data=self.model_data() if laplace else None)

    @property
    def can_collapse(self) -> bool:
        """Whether b can be integrated out exactly (gaussian family, identity link): all of
        it with one random-effect term, one term's with several."""
        return self.spec.family.collapsible

    def _mass_matrix(self, method: str, mass_matrix: str, dense_mass) -> str:
        """The mass matrix form for `method` (see `sample`)."""
        if dense_mass is not None:
            if not isinstance(dense_mass, (bool, np.bool_)):
                raise ValueError(f"dense_mass: must be True, False or None, got {dense_mass!r}.")
            return "dense" if dense_mass else "diagonal"
        if mass_matrix not in MASS_MATRICES:
            raise ValueError(f"mass_matrix={mass_matrix!r} is unknown; choose one of "
                             f"{', '.join(map(repr, MASS_MATRICES))}.")
        sampled_b = self._n_sampled(method) > self._n_sampled(method, latent=False)
        if mass_matrix == "block" and not sampled_b:
            raise ValueError("mass_matrix='block': needs sampled random effects "
                             "(method='joint'); b is integrated out here.")
        if mass_matrix != "auto":
            return mass_matrix
        if method == "joint" and self.spec.family.collapsible:
            return "diagonal"
        return "dense" if self._n_sampled(method) <= DENSE_MAX_DIM else "diagonal"

    @staticmethod
    def _psi_indices(template: dict) -> tuple:
        """Indices of the non-latent coordinates (psi and hyperparameters) in the flat
        position, which ravel_pytree orders by sorted name."""
        out, start = [], 0
        for name in sorted(template):
            size = int(np.size(template[name]))
            if not _is_latent(name):
                out += range(start, start + size)
            start += size
        return tuple(out)

    def _n_sampled(self, method: str, latent: bool = True) -> int:
        """Number of unconstrained parameters the sampler moves under `method` (without
        the random effects when not `latent`)."""
        gone = self._integrated_names(method)
        return int(sum(np.size(v) for k, v in self._init_loc.items()
                       if k not in gone and (latent or not _is_latent(k))))

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

    def _basis(self, method: str, basis: str) -> tuple:
        """(Basis, shift: nested dict of numpy arrays) of the sampler's basis for the
        population effects (see `jaxglmm.basis`); basis="none" keeps the user's."""
        if basis not in BASES:
            raise ValueError(f"basis={basis!r} is unknown; choose one of "
                             f"{', '.join(map(repr, BASES))}.")
        if basis == "none":
            return NONE_BASIS, {"alpha": {}, "levels": {}}
        collapsed = self.collapsed_terms(method)
        if collapsed not in self._centrings:  # sample, _run and problem all ask for it
            self._centrings[collapsed] = centring(self.arrays, self.spec, collapsed)
        return self._centrings[collapsed]

    def problem(self, method: str, template: dict, keep_b: bool = True,
                basis: str = "none") -> Problem:
        """The `Problem` (data for the jitted code, unravel, make_logdensity, transform) that
        `method` samples, for positions shaped like `template` (an `initial_position`);
        without `keep_b` the draws leave out b (and the collapsed sampler does not draw it).
        The flat position is in the sampler's `basis` (`jaxglmm.basis`); the log density
        there equals the user's at the mapped point (a shear: unit Jacobian)."""
        return build_problem(self.spec, self.model_data(), *self._basis(method, basis),
                             method, template, keep_b)

    def _describe_parametrisation(self, method: str) -> str:
        """fit.info["parametrisation"]: how each term's b is handled."""
        spec, gone = self.spec, self.collapsed_terms(method)
        if len(spec.terms) == 1 and gone:
            return "b integrated out"

        sampled = [t for k, t in enumerate(spec.terms) if k not in gone]
        kinds = {t.parametrisation for t in sampled}
        text = kinds.pop() if len(kinds) == 1 and not gone else ", ".join(
            f"{t.parametrisation} {t.key[1:]}" for t in sampled)
        if self.centred_auto:
            text += " (chosen by the data)"
        if gone:
            text = f"b{spec.terms[gone[0]].key} integrated out; " + text
        return text

    def _position_names(self) -> dict:
        """Element names of the population blocks: "beta" -> x names, "mu..." -> the free
        columns' z names."""
        names = {"beta": tuple(self.arrays.x_names)}
        for t, ts in zip(self.arrays.terms, self.spec.terms):
            names[ts.name("mu")] = tuple(t.z_names[j] for j in ts.mu_free)
        return names

    # ------------------------------------------------------------------------ sampling

    def sample(self, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed=0, *,
               kernel="nuts", target_accept: float | None = None, max_tree_depth: int = 10,
               dense_mass: bool | None = None, num_integration_steps: int = 32,
               method: str = "auto", progress: bool = True, chunk: int = 50,
               thin: int = 1, keep_b: bool = True, chain_method: str = "auto",
               basis: str = "centred", mass_matrix: str = "auto") -> Fit:
        """Run `chains` chains of window adaptation then `draws` draws, in one jitted program.

        Args:
            chains, warmup, draws: numbers of chains, warmup iterations, sampling iterations.
            seed: an integer or a jax.random key; the same seed gives the same draws.
            kernel: "nuts" (default), "hmc" or "mala", or blackjax.nuts / .hmc / .mala.
            target_accept: step-size adaptation target (0.8; 0.574 for MALA).
            max_tree_depth: NUTS's maximum number of doublings.
            dense_mass: True / False: the same as mass_matrix="dense" / "diagonal" (kept for
                earlier code); None (default): mass_matrix decides.
            mass_matrix: the inverse mass matrix warmup adapts: "dense", "diagonal", "block"
                (dense over psi, the population parameters and hyperparameters, diagonal
                over the random effects; `jaxglmm.metric`) or "auto" (default): dense when
                the sampler moves at most DENSE_MAX_DIM = 40 parameters, except for the
                joint sampler of a gaussian identity model, else diagonal (epil, 66
                parameters: 1.8x more ESS per second diagonal; on sim_logit, 4 x
                1000/1000, seeds 5 and 6, the block matrix gave min bulk ESS 382 and 354
                against the diagonal's 432 and 567).
            num_integration_steps: leapfrog steps per HMC transition.
            method: "auto" (collapsed for gaussian identity models with one random-effect
                term, else joint), "joint" (b sampled with psi), or "collapsed" (b
                integrated out, drawn exactly given psi for every kept draw).
            progress: show a progress bar when sampling takes more than two seconds.
            chunk: iterations per jitted chunk (progress and memory granularity: the host
                holds the kept draws, the device one chunk).
            thin: keep every thin-th draw (draws // thin are kept).
            keep_b: keep the draws of the random effects b (False saves memory when there
                are many clusters; predictions for existing levels then need a refit).
            chain_method: "auto" (default: "sequential" on CPU, "vectorized" on GPUs and
                other accelerators), "sequential" (each device runs its chains one after the
                other) or "vectorized" (the chains of a device move together, batched with
                vmap: the fast choice on a GPU). Sequential draws are bit-identical whether
                the chains run on one device or are spread over several; vectorized ones
                agree with one device only to rounding. Several local devices share the
                chains either way; `fit.info["chain_method"]` records the choice.
            basis: "centred" (default: the sampler moves the intercept of the centred
                design, alpha = intercept + sum_j mean_j theta_j over the coefficients of
                the non-constant columns, as brms and rstanarm do; see `jaxglmm.basis`) or
                "none" (the coefficients as written). The draws are the user's
                coefficients either way; `fit.info["basis"]` says which.
        Returns:
            A `Fit` with natural-scale draws of leading shape (chains, kept draws). Ctrl-C
            while sampling returns the draws finished so far, with a warning.
        """
        compile_start = compile_seconds()
        use_persistent_cache()
        method = self._resolve_method(method)
        mass_matrix = self._mass_matrix(method, mass_matrix, dense_mass)
        chains = _check_count(chains, "chains", 1)
        warmup = _check_count(warmup, "warmup", 0)
        draws = _check_count(draws, "draws", 1)
        chunk = _check_count(chunk, "chunk", 1)
        thin = _check_count(thin, "thin", 1)
        if draws < thin:
            raise ValueError(f"draws: {draws} iterations with thin={thin} keep no draw.")
        if chain_method == "auto":
            chain_method = default_chain_method()
        config = SamplerConfig(kernel=kernel, target_accept=target_accept,
                               max_tree_depth=max_tree_depth,
                               dense_mass=mass_matrix == "dense",
                               num_integration_steps=num_integration_steps,
                               chain_method=chain_method)
        key = as_key(seed)
        layout, shift = self._basis(method, basis)
        with jax.enable_x64(self.dtype == "float64"):
            _, warmup_key, sample_key = jax.random.split(key, 3)
            starts = self.initial_positions(key, chains, method)
            x0 = jnp.stack([ravel_pytree(to_sampler(start, layout, shift))[0]
                            for start in starts])
            if mass_matrix == "block":
                config = replace(config, mass_block=self._psi_indices(starts[0]))
            run = dict(method=method, config=config, keep_b=bool(keep_b), thin=thin,
                       basis=basis,
                       chains=chains, warmup=warmup, chunk=chunk,
                       seed=seed if isinstance(seed, int) else None,
                       template=starts[0],
                       sample_keys=np.asarray(jax.random.key_data(
                           jax.random.split(sample_key, chains))))
            fit = self._run(run, x0, jax.random.split(warmup_key, chains), warmup, draws,
                            progress)
        return replace(fit, info=dict(fit.info, compile_s=compile_seconds() - compile_start))

    def _run(self, run: dict, x0, warmup_keys, warmup: int, steps: int, progress: bool,
             resume: tuple | None = None, start_step: int = 0) -> Fit:
        """Sample `steps` iterations (after `warmup` adaptation ones, or continuing from
        `resume` = (step_size, inverse mass matrix) at step `start_step`) and build the Fit."""
        spec, method, config = self.spec, run["method"], run["config"]
        basis = run.get("basis", "none")
        data, unravel, make_logdensity, transform = self.problem(
            method, run["template"], run["keep_b"], basis)
        layout, shift = self._basis(method, basis)
        sample_keys = jax.random.wrap_key_data(jnp.asarray(run["sample_keys"]))
        timings: dict = {}
        out, stats, last, done = sample_chains(
            make_logdensity, transform, data, x0, warmup_keys, sample_keys, warmup, steps,
            config, cache_key=(spec, method, run["keep_b"], layout), progress=progress,
            chunk=run["chunk"], timings=timings, thin=run["thin"], resume=resume,
            start_step=start_step, scale=self._sampler_scale(run["template"]))
        parametrisation = self._describe_parametrisation(method)
        info = {"method": method, "parametrisation": parametrisation, "factor": spec.factor,
                "chains": run["chains"], "warmup": run["warmup"],
                "draws": next(iter(stats.values())).shape[1], "thin": run["thin"],
                "steps": start_step + done, "keep_b": run["keep_b"],
                "mass_matrix": ("dense" if config.dense_mass else
                                "block" if config.mass_block else "diagonal"),
                "chain_method": config.chain_method, "seed": run["seed"], "dtype": self.dtype,
                "basis": basis,
                "basis_detail": describe_basis(layout, shift, self._position_names()),
                **timings}
        return Fit(
            draws=out, sample_stats=stats, model=self, config=config, info=info,
            step_size=np.asarray(last.step_size),
            inverse_mass_matrix=np.asarray(last.inverse_mass_matrix),
            last_state=last,
            chain_state={k: np.asarray(getattr(last.state, k))
                         for k in ("position", "logdensity", "logdensity_grad")},
            sample_keys=run["sample_keys"],
        )

    def extend_fit(self, fit: Fit, draws: int, progress: bool) -> Fit:
        """`fit` continued by `draws` iterations (see `Fit.extend`)."""
        draws = _check_count(draws, "draws", 1)
        info = fit.info
        if fit.chain_state is None or fit.sample_keys is None:
            raise ValueError("extend: this fit does not hold the chains' last state.")
        method = info["method"]
        template = self.initial_positions(0, 1, method)[0]
        run = dict(method=method, config=fit.config, keep_b=info.get("keep_b", True),
                   thin=info.get("thin", 1), chains=info["chains"], warmup=info["warmup"],
                   chunk=info.get("chunk", 50), seed=info.get("seed"), template=template,
                   basis=info.get("basis", "none"),
                   sample_keys=fit.sample_keys)
        with jax.enable_x64(self.dtype == "float64"):
            f = jnp.float64 if self.dtype == "float64" else jnp.float32
            x0 = jnp.asarray(fit.chain_state["position"], f)
            dummy = jax.random.split(jax.random.key(0), info["chains"])
            more = self._run(run, x0, dummy, 0, draws, progress,
                             resume=(fit.chain_state, fit.step_size,
                                     fit.inverse_mass_matrix),
                             start_step=info["steps"])
        joined = {k: np.concatenate([fit.draws[k], v], axis=1) for k, v in more.draws.items()}
        stats = {k: np.concatenate([fit.sample_stats[k], v], axis=1)
                 for k, v in more.sample_stats.items()}
        new_info = dict(more.info, draws=fit.info["draws"] + more.info["draws"],
                        warmup_s=info.get("warmup_s", 0.0),
                        sampling_s=info.get("sampling_s", 0.0) + more.info["sampling_s"],
                        compile_s=info.get("compile_s", 0.0) + more.info.get("compile_s", 0.0))
        return replace(more, draws=joined, sample_stats=stats, info=new_info)

    def describe(self) -> str:
        """The model's hierarchy in the notation of DESIGN.md section 1, with its priors."""
        a, spec = self.arrays, self.spec
        fam = spec.family
        dist = fam.distribution_text(MEAN_TEXT[fam.link])
        multi = len(spec.terms) > 1
        lines = [f"GLMM: {fam.name} family, {fam.link} link"]
        if self.formula is not None:
            lines.append(f"  formula: {self.formula}")
        lines.append(f"  data: {a.y.shape[0]} observations")
        parts = ["x_ij' beta"] if spec.p else []
        for ts in spec.terms:
            parts.append(f"z{ts.key}_ij' b{ts.key}[ij]" if multi else "z_ij' b_i")
        lines.append(f"  y_ij | b ~ {dist},  eta_ij = {' + '.join(parts)}")
        if multi:
            lines.append("    (b|g[ij]: the coefficients of the level of g that row ij has)")
        if spec.p:
            lines.append(f"    x = ({', '.join(a.x_names)})")
        for t, ts in zip(a.terms, spec.terms):
            b, mu, D = (f"{n}{ts.key}" for n in ("b", "mu", "D"))
            mean = "0" if not ts.mu_free else mu
            if ts.mu_free and len(ts.mu_free) < ts.q:
                free = ", ".join(t.z_names[j] for j in ts.mu_free)
                mean += f" (free for {free}; 0 for the other columns)"
            where = (f"one per level of {t.name} ({ts.N} levels)")
            lines.append(f"    z{ts.key} = ({', '.join(t.z_names)})")
            lines.append(f"  {b}{'_l' if multi else '_i'} ~ N_{ts.q}({mean}, {D}), {where}; "
                         f"Omega{ts.key} = {D}^-1")
        psi = (["beta"] if spec.p else []) + [
            f"mu{ts.key}" for ts in spec.terms if ts.mu_free]
        if fam.has_dispersion:
            psi.append("tau")
        psi += [f"Omega{ts.key}" for ts in spec.terms]
        lines.append(f"  psi = ({', '.join(psi)})")
        lines.append("Priors:")
        lines += ["  " + line for line in self.describe_priors().splitlines()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        s = self.spec
        if self.formula is not None:
            return (f"GLMM({self.formula!r}, family={s.family.name!r}, link={s.family.link!r}, "
                    f"n_obs={self.arrays.y.shape[0]})")
        return (f"GLMM(family={s.family.name!r}, link={s.family.link!r}, n_obs="
                f"{self.arrays.y.shape[0]}, N={s.N}, p={s.p}, q={s.q})")
