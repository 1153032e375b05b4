"""The public description of what a sampler moves on: `GLMM.problem` returns one (built by
`build_problem` from the model's spec, data and sampler basis), and jaxglmm's own sampler,
the benchmark and a user's own BlackJAX loop use the same pieces."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from . import collapsed
from .basis import Basis, to_user
from .density import ModelData, ModelSpec, log_posterior, natural_draw, unpack
from .partial import collapsed_term, draw_b_partial, log_posterior_partial, partial_data

_sufficient_stats = jax.jit(collapsed.sufficient_stats, static_argnums=1)
_partial_data = jax.jit(partial_data, static_argnums=(1, 2))


class Problem(NamedTuple):
    """A model's log density on a flat unconstrained vector x (d,), in the sampler's basis.

    Attributes:
        data: a pytree of device arrays; passed to the programs as an argument, so that the
            data are not baked into them as constants.
        unravel: x (d,) -> the position dict (`GLMM.initial_position`'s keys).
        make_logdensity: data -> (x (d,) -> log posterior ()), Jacobians included.
        transform: (x (d,), data, key) -> one draw on the natural scale (dict of arrays;
            the key draws b exactly where b is integrated out).
    """

    data: Any
    unravel: Callable
    make_logdensity: Callable
    transform: Callable

    def logdensity(self) -> Callable:
        """x (d,) -> log posterior () for this problem's data."""
        return self.make_logdensity(self.data)


def build_problem(spec: ModelSpec, model_data: ModelData, layout: Basis, shift: dict,
                  method: str, template: dict, keep_b: bool = True) -> Problem:
    """The Problem of `method` ("joint" or "collapsed"; with several terms "collapsed"
    integrates one out, `jaxglmm.partial`) for positions shaped like `template`, the flat
    position in the sampler's basis (`layout`, `shift`: `jaxglmm.basis.centring`); without
    `keep_b` the draws leave out b."""
    _, unravel = ravel_pytree(template)
    f = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    shift = jax.tree.map(lambda v: jnp.asarray(v, f), shift)

    def user(x, shift):
        return to_user(unravel(x), layout, shift)

    def drop_b(out: dict) -> dict:
        return out if keep_b else {k: v for k, v in out.items() if k.split("|")[0] != "b"}

    if method == "joint":
        def make_logdensity(data):
            model_data, shift = data
            return lambda x: log_posterior(user(x, shift), model_data, spec)

        def transform(x, data, key):
            return drop_b(natural_draw(user(x, data[1]), spec, data=data[0]))
        return Problem((model_data, shift), unravel, make_logdensity, transform)
    if len(spec.terms) > 1:
        return _partial_problem(spec, model_data, unravel, user, drop_b, shift, keep_b)

    (term,) = spec.terms
    stats = _sufficient_stats(model_data, term.N)

    def make_logdensity(data):
        stats, shift = data
        return lambda x: collapsed.log_posterior_collapsed(user(x, shift), stats, spec)

    def transform(x, data, key):
        stats, shift = data
        position = user(x, shift)
        if not keep_b:
            return drop_b(natural_draw(position, spec, b=jnp.zeros((term.N, term.q), x.dtype)))
        psi, _ = unpack(position, spec)
        return natural_draw(position, spec, b=collapsed.draw_b(key, psi, stats, spec))
    return Problem((stats, shift), unravel, make_logdensity, transform)


def _partial_problem(spec, model_data, unravel, user, drop_b, shift, keep_b: bool) -> Problem:
    """build_problem's pieces for several terms, one of them integrated out."""
    c = collapsed_term(spec)
    pdata = _partial_data(model_data, spec, c)

    def make_logdensity(data):
        pdata, shift = data
        return lambda x: log_posterior_partial(user(x, shift), pdata, spec, c)

    def transform(x, data, key):
        pdata, shift = data
        position = user(x, shift)
        if not keep_b:
            zeros = tuple(jnp.zeros((t.N, t.q), x.dtype) for t in spec.terms)
            return drop_b(natural_draw(position, spec, b=zeros))
        return natural_draw(position, spec, b=draw_b_partial(key, position, pdata, spec, c))
    return Problem((pdata, shift), unravel, make_logdensity, transform)
