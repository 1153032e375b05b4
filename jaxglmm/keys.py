"""Seeds to JAX PRNG keys: one rule for every function that takes `seed`."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def as_key(seed) -> jax.Array:
    """A typed PRNG key from an integer seed, a typed key, or raw key data (2,) uint32.

    Raises ValueError naming `seed` for anything else (a bool included)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return jax.random.key(int(seed))
    if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if isinstance(seed, jax.Array) and seed.shape == (2,) and seed.dtype == jnp.uint32:
        return jax.random.wrap_key_data(seed)
    raise ValueError(f"seed: must be an integer or a jax.random key, got {seed!r}.")
