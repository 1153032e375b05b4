"""`GLMM`: the user's entry point, a thin immutable facade over a `Model` record
(`jaxglmm.model`) and the functions that sample it (`jaxglmm.fitting`)."""
from __future__ import annotations

from .design import ArrayData, prepare_arrays
from .family_base import Family
from .family_registry import make_family
from .fitting import (collapsed_terms, constrain, initial_points, initial_position,
                      initial_positions, problem, sample)
from .formula import parse_formula
from .many import FitBatch, sample_many
from .model import Model, build_model
from .prior_predictive import sample_prior
from .priors import Priors
from .problem import Problem
from .results import Fit


class GLMM:
    """A generalized linear mixed model (DESIGN.md section 1) ready to sample.

        y_ij | b_i ~ family with mean h(x_ij' beta + z_ij' b_i + offset_ij)
        b_i ~ N_q(mu, D),   Omega = D^{-1},   priors as in `jaxglmm.Priors`

    Build one from a formula and a data frame, `GLMM("y ~ x + (1 + t | id)", df)`, or from
    arrays with `GLMM.from_arrays`. The object is immutable (its one attribute, `model`, is
    the frozen `jaxglmm.model.Model`); sampling returns a `Fit`.
    """

    __slots__ = ("model",)

    def __init__(self, formula: str, data, family="gaussian", priors: Priors | None = None, *,
                 link: str | None = None, centred: bool | str | dict | None = None,
                 factor: str = "D", dtype: str = "float64", na_action: str = "raise",
                 weights=None):
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
                factor, and `centred` is chosen per term when None (or given per term as a
                dict {grouping factor: bool}).
            na_action: "raise" (default: missing values in the used columns are an error
                that says how many rows and which columns) or "drop" (drop those rows, with
                a warning saying how many).
            weights: None, a column name, or one number >= 0 per row of `data`: each
                observation's log likelihood is multiplied by its weight, as brms'
                `weights()` and lme4's `weights` do (an integer weight k counts the row k
                times; 0 leaves it out). Not a precision and not a sampling weight.
        Raises:
            ValueError: a formula that does not parse, a missing column, a grouping factor
                with one level, a response the family cannot take, missing values.
        """
        fam = make_family(family, link)
        design = parse_formula(formula, data, fam, na_action, weights)
        model = build_model(design.arrays, fam, priors, centred, factor, dtype,
                            formula=formula, design=design, na_action=na_action)
        object.__setattr__(self, "model", model)

    @classmethod
    def of(cls, model: Model) -> "GLMM":
        """The facade over an already built `Model` (e.g. a loaded fit's `fit.model`)."""
        if not isinstance(model, Model):
            raise ValueError(f"model: must be a jaxglmm.model.Model, got "
                             f"{type(model).__name__}.")
        glmm = object.__new__(cls)
        object.__setattr__(glmm, "model", model)
        return glmm

    @classmethod
    def from_array_data(cls, arrays: ArrayData, family: Family, priors: Priors | None,
                        centred: bool | str | dict | None = None, factor: str = "D",
                        dtype: str = "float64") -> "GLMM":
        """A model from validated `jaxglmm.design.ArrayData` (any number of terms)."""
        return cls.of(build_model(arrays, family, priors, centred, factor, dtype))

    @classmethod
    def from_arrays(cls, y, Z, groups, X=None, family="gaussian", trials=None, offset=None,
                    priors: Priors | None = None, x_names=None, z_names=None, *,
                    link: str | None = None, centred: bool | str | None = None, factor: str = "D",
                    dtype: str = "float64", weights=None) -> "GLMM":
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
            weights: observation weights (n_obs,) >= 0 multiplying each log likelihood term
                (see `GLMM(...)`); None: ones.
        Raises:
            ValueError: any bad input, naming the argument and the first bad row.
        """
        fam = make_family(family, link)
        arrays = prepare_arrays(y, Z, groups, X, fam, trials, offset, x_names, z_names,
                                weights)
        return cls.from_array_data(arrays, fam, priors, centred=centred, factor=factor,
                                   dtype=dtype)

    def __setattr__(self, name, value):
        raise AttributeError("GLMM is immutable; build a new one.")

    # the model record's fields and description
    spec = property(lambda self: self.model.spec, doc="The static description (ModelSpec).")
    arrays = property(lambda self: self.model.arrays, doc="The validated arrays (ArrayData).")
    dtype = property(lambda self: self.model.dtype, doc='"float64" or "float32".')
    formula = property(lambda self: self.model.formula, doc="The formula, or None.")
    data = property(lambda self: self.model.data, doc="The formula's rows and columns.")
    design = property(lambda self: self.model.design, doc="The parsed formula, or None.")
    priors = property(lambda self: self.model.priors, doc=Model.priors.__doc__)
    can_collapse = property(lambda self: self.model.can_collapse,
                            doc=Model.can_collapse.__doc__)
    logdensity_fn = property(lambda self: self.model.logdensity_fn,
                             doc=Model.logdensity_fn.__doc__)

    def model_data(self):
        """The arrays on the device (`jaxglmm.density.ModelData`)."""
        return self.model.model_data()

    def describe_priors(self) -> str:
        """The priors used, one line per block or coefficient, defaults marked."""
        return self.model.describe_priors()

    def describe(self) -> str:
        """The model's hierarchy in the notation of DESIGN.md section 1, with its priors."""
        return self.model.describe()

    # pure functions of the model (jaxglmm.fitting)
    def initial_position(self, key) -> dict:
        """A random unconstrained position near the data's scale (`fitting.initial_position`)."""
        return initial_position(self.model, key)

    def initial_positions(self, seed, chains: int, method: str = "auto") -> list[dict]:
        """The starting positions `sample` uses, one dict per chain."""
        return initial_positions(self.model, seed, chains, method)

    def initial_points(self, seed, chains: int, method: str = "auto",
                       basis: str = "centred"):
        """The flat starting points (chains, d) `sample` uses, in the sampler's basis: the
        x that `problem(method, ..., basis=basis).logdensity()` takes."""
        return initial_points(self.model, seed, chains, method, basis)

    def collapsed_terms(self, method: str = "auto") -> tuple:
        """Indices of the terms whose b `method` integrates out (`fitting.collapsed_terms`)."""
        return collapsed_terms(self.model, method)

    def constrain(self, position: dict) -> dict:
        """Natural-scale parameters of one unconstrained position (`fitting.constrain`)."""
        return constrain(self.model, position)

    def problem(self, method: str, template: dict, keep_b: bool = True,
                basis: str = "none") -> Problem:
        """The `Problem` that `method` samples (`jaxglmm.fitting.problem`): data for the
        jitted code, unravel, make_logdensity and transform, for positions like `template`."""
        return problem(self.model, method, template, keep_b, basis)

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
            max_tree_depth: NUTS's maximum number of doublings (10).
            dense_mass: True / False: the same as mass_matrix="dense" / "diagonal" (kept for
                earlier code); None (default): mass_matrix decides.
            mass_matrix: the inverse mass matrix warmup adapts: "dense", "diagonal", "block"
                (dense over psi, the population parameters and hyperparameters, diagonal
                over the random effects; `jaxglmm.metric`) or "auto" (default): dense when
                the sampler moves at most `jaxglmm.fitting.DENSE_MAX_DIM` = 40 parameters,
                except for the joint sampler of a gaussian identity model, else diagonal
                (epil, 66 parameters: 1.8x more ESS per second diagonal; on sim_logit,
                4 x 1000/1000, seeds 5 and 6, the block matrix gave min bulk ESS 382 and
                354 against the diagonal's 432 and 567).
            num_integration_steps: leapfrog steps per HMC transition (32).
            method: "auto" (collapsed for gaussian identity models, else joint), "joint" (b
                sampled with psi), or "collapsed" (b integrated out, drawn exactly given
                psi for every kept draw; with several terms, the largest term's).
            progress: True (default): a progress bar where one can be drawn (a terminal, or
                Jupyter's widget bar; shown after two seconds; never in a log file or CI
                output; JAXGLMM_PROGRESS=0 or 1 turns bars off or always on) and one
                summary line on stderr at the end; False: nothing.
            chunk: iterations per jitted chunk (50; progress and memory granularity: the
                host holds the kept draws, the device one chunk).
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
        run = sample(self.model, chains, warmup, draws, seed, kernel=kernel,
                     target_accept=target_accept, max_tree_depth=max_tree_depth,
                     dense_mass=dense_mass, num_integration_steps=num_integration_steps,
                     method=method, progress=progress, chunk=chunk, thin=thin, keep_b=keep_b,
                     chain_method=chain_method, basis=basis, mass_matrix=mass_matrix)
        return Fit.from_run(self.model, run)

    def sample_many(self, datasets, chains: int = 4, warmup: int = 1000, draws: int = 1000,
                    seed=0, *, batch_size: int = 64, batch_method: str = "auto",
                    weights=None, progress: bool = True, **options) -> FitBatch:
        """Fit this model to many data sets in one compiled program (a simulation study, a
        bootstrap, a power analysis): no compiling per data set, and the data sets move
        together (see `jaxglmm.many`).

        Args:
            datasets: a list of data frames with the formula's columns (formula models), or
                responses at this model's design: an array (B, n_obs) or a list of (n_obs,)
                arrays (binomial: successes, with the model's trials).
            chains, warmup, draws: as in `sample`, for every data set.
            seed: an integer (data set k is fitted with seed + k), a key (split into one
                per data set) or a list of one seed per data set.
            batch_size: the most data sets one program runs at once (memory: the device
                holds batch_size x chains chains; larger groups run in equal parts).
            batch_method: "auto" (= "vectorized"), "vectorized" (the data sets vmapped:
                each NUTS step lasts as long as the longest of the batch, and many small
                data sets run several times faster than one by one) or "sequential" (one
                after the other inside the program: draws bit-identical to separate calls).
            weights: the weights column of the data frames, when the model has weights.
            progress: bars per program and one summary line on stderr.
            options: the other arguments of `sample` (kernel, target_accept, method,
                thin, keep_b, mass_matrix, basis, chunk, ...), the same for every data set.
        Every data set is fitted with this model's priors as resolved (defaults scaled to
        this model's data, not to each data set's) and its parametrisation; data set k's
        fit equals `jaxglmm.GLMM.of(jaxglmm.batch_models(model, datasets)[k]).sample(seed=
        seeds[k], ...)` (bit for bit with batch_method="sequential" and no padding).
        Returns:
            A `jaxglmm.FitBatch`: fit_batch[k] is data set k's `Fit`; `summary()`,
            `diagnostics()` (divergences, worst R-hat and ESS per data set), `draws(name)`.
        Raises:
            ValueError: naming datasets[k] for a data set that does not fit the model.
        """
        return sample_many(self.model, datasets, chains, warmup, draws, seed,
                           batch_size=batch_size, batch_method=batch_method, weights=weights,
                           progress=progress, **options)

    def sample_prior(self, draws: int = 500, seed=0, include_b: bool = True):
        """Draws from the prior and the prior predictive distribution, without the data
        (brms' sample_prior = "only", Bambi's prior_predictive).

        Args:
            draws: number of draws.
            seed: an integer or a jax.random key.
            include_b: keep the random effects b in the prior group.
        Returns:
            ArviZ 1.x data (an xarray.DataTree) with groups prior (beta, mu, tau, the
            family's dispersion draws such as sigma, D, sd, corr, b and the random
            hyperparameters, (1, draws, ...), named dims as the posterior's),
            prior_predictive (y, (1, draws, n_obs)) and observed_data.
        Raises:
            ValueError: a flat prior on beta or mu, which cannot be drawn from.
        """
        return sample_prior(self.model, draws, seed, include_b)

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        s, n = self.model.spec, self.model.arrays.y.shape[0]
        if self.formula is not None:
            return (f"GLMM({self.formula!r}, family={s.family.name!r}, link={s.family.link!r}, "
                    f"n_obs={n})")
        t = s.terms[0]
        return (f"GLMM(family={s.family.name!r}, link={s.family.link!r}, n_obs={n}, "
                f"N={t.N}, p={s.p}, q={t.q})")
