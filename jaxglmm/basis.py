"""The sampler's basis for the population effects: a centred design, exactly mapped back.

The population part of the linear predictor is X beta + sum_k Z_k[:, free_k] mu_k. A column
whose mean is far from 0 relative to its spread (a year, an age, a dose) makes its coefficient
and the intercept correlate near -1 in the posterior; with hundreds of other parameters a
diagonal mass matrix cannot follow that, and the chains crawl. brms and rstanarm therefore
sample the intercept of the centred design; so does jaxglmm, in two shears:

1. The intercept. The sampler moves

       alpha = intercept + sum_j w_j theta_j,     w_j = mean(column j) / c

   over the coefficients theta_j of every non-constant column (beta, and the free mu of
   columns whose coefficient enters the likelihood directly), c being the intercept column's
   constant value: c alpha + sum_j (column_j - mean_j) theta_j is the population predictor,
   and alpha no longer moves with the slopes. When the intercept is the mean of a term whose
   b is sampled centred, that column of b moves by the same shift.
2. Covariates of a level (hierarchical centring, Gelfand, Sahu and Carlin 1995). With
   centred b, a column of X that is constant within the levels of a term (a person's age, a
   herd's size) makes beta_j trade against every level's b: the likelihood sees only
   beta_j x_l + b_l. The sampler moves instead b'_l = b_l + beta_j (x_l - mean_j) / c_k in
   that term's constant column (value c_k), so that the likelihood sees b'_l alone and
   beta_j is the regression of the levels' b' on x_l: b'_l ~ N(mu + beta_j (x_l - mean_j)
   / c_k, D). A column goes to the first centred term (with a constant column) within whose
   levels it is constant.
3. A centred term without a mean. When the intercept acts on the likelihood directly (it is
   in X, or the mean of a term whose b is integrated out or non-centred) and another term,
   sampled centred, has a constant column whose mean is fixed at 0 (crossed `(1 | s) +
   (1 | d)`: the intercept is mu|s), the likelihood sees only alpha + b_l, so alpha trades
   against the mean of all of that term's b (on InstEval, bulk ESS of the intercept 74 in
   600 draws). The sampler moves b'_l = b_l + (c / c_k) alpha instead: the likelihood sees
   b'_l alone and alpha is the mean of the b': b'_l ~ N((c / c_k) alpha, D).

These maps (alpha, theta, b') -> (intercept, theta, b) are shears: unit Jacobian, so the log
density in the sampler's coordinates is the user's log density at the mapped point, exactly.
Where things sit is static (`Basis`, part of the compiled program); the weights are data
(`shift`: {"alpha": {block: (size of block,)}, "levels": {b block: (N_k, p)}}), passed into
the jitted code as arguments.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
BASES = ("centred", "none")


@dataclass(frozen=True)
class Basis:
    """Where the sampler's coordinates differ from the user's (static).

    Attributes:
        block: position name holding the intercept ("beta", "mu" or "mu|g"), or None.
        index: the intercept's element within that block.
        b_block: position name of the centred b whose `column` moves with the intercept, or
            None.
        column: the random-design column of the intercept (used with b_block).
        levels: ((b block, column), ...) of the centred terms that absorb level covariates
            (their weights are shift["levels"][b block], (N_k, p)).
        absorb: ((b block, column, ratio),) the centred term without a mean whose column
            moves by ratio * alpha (rule 3), or ().
    """

    block: str | None = None
    index: int = 0
    b_block: str | None = None
    column: int = 0
    levels: tuple = ()
    absorb: tuple = ()


NONE = Basis()


def _constant(col: np.ndarray) -> bool:
    return bool(col.size) and bool(np.all(col == col[0]))


def _find_intercept(arrays, spec, collapsed: tuple) -> tuple[Basis, float]:
    """The intercept (a constant non-zero column of X, else the first term's mean of a
    constant column of Z) and that column's value c; (NONE, 1.0) when the model has none."""
    X = arrays.X
    for j in range(X.shape[1]):
        if _constant(X[:, j]) and X[0, j] != 0:
            return Basis("beta", j), float(X[0, j])
    for k, (t, term) in enumerate(zip(arrays.terms, spec.terms)):
        for i, j in enumerate(term.mu_free):
            col = t.Z[:, j]
            if _constant(col) and col[0] != 0:
                moves_b = k not in collapsed and term.centred
                return Basis(term.name("mu"), i, term.name("b") if moves_b else None,
                             j), float(col[0])
    return NONE, 1.0


def _weights(M: np.ndarray, c: float) -> np.ndarray:
    """mean / c per column of M, 0 for constant columns."""
    return np.array([0.0 if _constant(col) else float(np.mean(col)) / c for col in M.T])


def _level_values(col: np.ndarray, cluster: np.ndarray, N: int) -> np.ndarray | None:
    """(N,) the value of `col` in each level, or None when it varies within a level."""
    first = np.full(N, np.nan)
    first[cluster[::-1]] = col[::-1]  # (any row of each level)
    return first if np.array_equal(first[cluster], col) else None


def _level_shifts(arrays, spec, collapsed: tuple) -> tuple[tuple, dict]:
    """((b block, column), ...) and {b block: (N_k, p) weights} of rule 2."""
    if not spec.p:
        return (), {}
    X = arrays.X
    means = np.mean(X, axis=0)
    taken = np.zeros(X.shape[1], bool)
    for j in range(X.shape[1]):
        taken[j] = _constant(X[:, j])
    static, weights = [], {}
    for k, (t, term) in enumerate(zip(arrays.terms, spec.terms)):
        if not term.centred or k in collapsed:
            continue
        const = [j for j in range(term.q) if _constant(t.Z[:, j]) and t.Z[0, j] != 0]
        if not const:
            continue
        c_k = float(t.Z[0, const[0]])
        W = np.zeros((term.N, X.shape[1]))
        for j in np.flatnonzero(~taken):
            v = _level_values(X[:, j], t.cluster, term.N)
            if v is not None:
                W[:, j] = (v - means[j]) / c_k
                taken[j] = True
        if np.any(W != 0):
            static.append((term.name("b"), const[0]))
            weights[term.name("b")] = W
    return tuple(static), weights


def _absorbing_term(arrays, spec, collapsed: tuple, c: float) -> tuple:
    """((b block, column, c / c_k),) of rule 3: the first centred sampled term with a
    constant column whose mean is fixed at 0; () when there is none."""
    for k, (t, term) in enumerate(zip(arrays.terms, spec.terms)):
        if k in collapsed or not term.centred:
            continue
        for j in range(term.q):
            if j not in term.mu_free and _constant(t.Z[:, j]) and t.Z[0, j] != 0:
                return ((term.name("b"), j, c / float(t.Z[0, j])),)
    return ()


def centring(arrays, spec, collapsed: tuple = ()) -> tuple[Basis, dict]:
    """The centred basis of a model whose terms `collapsed` (indices) have b integrated out
    and the others sampled.

    Returns:
        (Basis, shift: {"alpha": {block: (size,) numpy}, "levels": {b block: (N_k, p)}}).
        A term's free mu counts in alpha where it enters the likelihood directly: when its
        b is integrated out, or sampled non-centred (b = mu + L z).
    """
    intercept, c = _find_intercept(arrays, spec, collapsed)
    levels, level_w = _level_shifts(arrays, spec, collapsed)
    alpha = {}
    if intercept.block is not None:
        if spec.p:
            alpha["beta"] = _weights(arrays.X, c)
        for k, (t, term) in enumerate(zip(arrays.terms, spec.terms)):
            if term.mu_free and (k in collapsed or not term.centred):
                alpha[term.name("mu")] = _weights(t.Z[:, list(term.mu_free)], c)
        alpha = {k: w for k, w in alpha.items() if np.any(w != 0)}
    absorb = () if intercept.block is None or intercept.b_block is not None else \
        _absorbing_term(arrays, spec, collapsed, c)
    if not alpha and not absorb:
        intercept = NONE
    return Basis(intercept.block, intercept.index, intercept.b_block, intercept.column,
                 levels, absorb), {"alpha": alpha, "levels": level_w}


def _moved(position: dict, basis: Basis, shift: dict, sign: float) -> dict:
    out = dict(position)
    if basis.block is not None:
        s = sum(jnp.dot(position[name], w) for name, w in shift["alpha"].items())
        out[basis.block] = position[basis.block].at[basis.index].add(sign * s)
        if basis.b_block is not None:
            out[basis.b_block] = out[basis.b_block].at[:, basis.column].add(sign * s)
        # the sampler's alpha: given when mapping to the user, made when mapping from it
        alpha = (position if sign < 0 else out)[basis.block][basis.index]
        for b_block, column, ratio in basis.absorb:
            out[b_block] = out[b_block].at[:, column].add(sign * ratio * alpha)
    for b_block, column in basis.levels:
        s_l = shift["levels"][b_block] @ position["beta"]  # (N_k,)
        out[b_block] = out[b_block].at[:, column].add(sign * s_l)
    return out


def to_user(position: dict, basis: Basis, shift: dict) -> dict:
    """The user's position from the sampler's (intercept = alpha - sum_j w_j theta_j, b =
    b' - the level shifts)."""
    if basis == NONE:
        return position
    return _moved(position, basis, shift, -1.0)


def to_sampler(position: dict, basis: Basis, shift: dict) -> dict:
    """The sampler's position from the user's; the inverse of `to_user` (the shifts depend
    on beta and the slopes' mu only, which both coordinates share)."""
    if basis == NONE:
        return position
    return _moved(position, basis, shift, 1.0)


def describe(basis: Basis, shift: dict, names: dict) -> str:
    """One line for fit.info: what the sampler moves. `names`: position name -> (element
    names,) of the population blocks."""
    parts = []
    if basis.block is not None:
        target = f"{basis.block}[{names[basis.block][basis.index]}]"
        terms = [f"{w:.4g} {block}[{names[block][j]}]"
                 for block, ws in shift["alpha"].items() for j, w in enumerate(ws) if w != 0]
        if terms:
            parts.append(f"{target} + " + " + ".join(terms))
        for b_block, _, ratio in basis.absorb:
            alpha = "that" if terms else target
            parts.append(f"{b_block} + {ratio:.4g} times {alpha}")
    for b_block, _ in basis.levels:
        used = np.flatnonzero(np.any(shift["levels"][b_block] != 0, axis=0))
        parts.append(f"{b_block} + (each level's value - mean) of "
                     + ", ".join(f"{names['beta'][j]} times beta[{names['beta'][j]}]"
                                 for j in used))
    if not parts:
        return "none (no intercept or level covariate to centre)"
    return "centred: the sampler moves " + "; ".join(parts)
