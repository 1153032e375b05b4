"""The public description of what a sampler moves on: `GLMM.problem` returns one, and
jaxglmm's own sampler, the benchmark and a user's own BlackJAX loop use the same pieces."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple


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
