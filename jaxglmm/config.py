"""Sampler settings (the kernel, its adaptation target, the mass matrix and how chains run)
and the settings of a whole run."""
from __future__ import annotations

from dataclasses import dataclass

import blackjax

KERNELS = ("nuts", "hmc", "mala")
CHAIN_METHODS = ("vectorized", "sequential")


@dataclass(frozen=True)
class SamplerConfig:
    """Sampler settings.

    Attributes:
        kernel: "nuts", "hmc" or "mala" (the BlackJAX algorithms of those names).
        target_accept: acceptance rate targeted by the step-size adaptation (for MALA the
            default is 0.574, the optimal rate of Roberts and Rosenthal).
        max_tree_depth: NUTS's maximum number of trajectory doublings.
        dense_mass: adapt a dense (True) or diagonal (False) inverse mass matrix.
        mass_block: indices (into the flat position) of a dense block: the inverse mass
            matrix is dense over them and diagonal over the other coordinates
            (`jaxglmm.metric`; with dense_mass False). Empty: no block.
        num_integration_steps: leapfrog steps per HMC transition.
        chain_method: "vectorized": the chains of a device move together, batched with
            vmap; "sequential": each device runs its chains one after the other (lax.map),
            so every chain's arithmetic is the same whatever the number of chains per
            device, and the draws are bit-identical on one device or spread over several.
            Batched matrix products and long sums are rounded differently for other batch
            sizes on XLA:CPU, so "vectorized" draws agree across device layouts only to
            rounding. `GLMM.sample` picks `default_chain_method()` unless told.
    """

    kernel: str = "nuts"
    target_accept: float | None = None
    max_tree_depth: int = 10
    dense_mass: bool = False
    num_integration_steps: int = 32
    chain_method: str = "vectorized"
    mass_block: tuple = ()

    def __post_init__(self):
        kernel = self.kernel
        named = [(blackjax.nuts, "nuts"), (blackjax.hmc, "hmc"), (blackjax.mala, "mala")]
        if not isinstance(kernel, str):
            match = [name for obj, name in named if obj is kernel]
            if not match:
                raise ValueError(
                    "kernel: must be 'nuts', 'hmc', 'mala' or one of blackjax.nuts, "
                    f"blackjax.hmc, blackjax.mala; got {kernel!r}.")
            kernel = match[0]
        if kernel not in KERNELS:
            raise ValueError(f"kernel={kernel!r} is unknown; choose one of {', '.join(KERNELS)}.")
        object.__setattr__(self, "kernel", kernel)
        if self.target_accept is None:
            object.__setattr__(self, "target_accept", 0.574 if kernel == "mala" else 0.8)
        if not 0.0 < self.target_accept < 1.0:
            raise ValueError(f"target_accept: must be in (0, 1), got {self.target_accept}.")
        if int(self.max_tree_depth) != self.max_tree_depth or self.max_tree_depth < 1:
            raise ValueError(f"max_tree_depth: must be a positive integer, "
                             f"got {self.max_tree_depth}.")
        if int(self.num_integration_steps) != self.num_integration_steps \
                or self.num_integration_steps < 1:
            raise ValueError("num_integration_steps: must be a positive integer, "
                             f"got {self.num_integration_steps}.")
        object.__setattr__(self, "mass_block", tuple(int(i) for i in self.mass_block))
        if self.mass_block and self.dense_mass:
            raise ValueError("mass_block: a block mass matrix is not dense; set dense_mass "
                             "False.")
        if self.chain_method not in CHAIN_METHODS:
            raise ValueError(f"chain_method: must be one of {', '.join(CHAIN_METHODS)}, "
                             f"got {self.chain_method!r}.")


@dataclass(frozen=True)
class RunSettings:
    """How a run was made: what `extend` needs to go on the same way, and what `save` keeps.

    Attributes:
        method: "joint" or "collapsed" (resolved, never "auto").
        sampler: the kernel and adaptation settings (`jaxglmm.config.SamplerConfig`).
        chains, warmup: numbers of chains and warmup iterations.
        chunk: iterations per jitted chunk; thin: keep every thin-th draw.
        keep_b: whether the draws hold b.
        basis: the sampler's basis, "centred" or "none" (`jaxglmm.basis`).
        seed: the integer seed, or None when a key was given.
    """

    method: str
    sampler: SamplerConfig
    chains: int
    warmup: int
    chunk: int = 50
    thin: int = 1
    keep_b: bool = True
    basis: str = "none"
    seed: int | None = None

    @classmethod
    def from_dict(cls, values: dict) -> "RunSettings":
        """The settings written as `dataclasses.asdict(settings)` (JSON in a saved fit)."""
        values = dict(values)
        return cls(sampler=SamplerConfig(**values.pop("sampler")), **values)
