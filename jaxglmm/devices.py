"""CPU devices for parallel chains.

XLA runs a program on one CPU device with one thread for the small operations of a
sampler, so four chains on a 4-core machine would use one core. At import, before JAX has
started its backends, jaxglmm asks for as many CPU devices as there are cores usable by
this process (at most 16), so that `sample` spreads the chains over them
(`sampling.chain_sharding`), as Stan, PyMC and nutpie run chains in parallel. Draws do not
depend on the layout with sequential chains (tested). Left alone when JAX's backends are
already running, when XLA_FLAGS sets --xla_force_host_platform_device_count, when
jax_num_cpu_devices was set, or with JAXGLMM_CPU_DEVICES=N (N devices; 1: one device, the
opt-out).
"""
from __future__ import annotations

import os

import jax

MAX_CPU_DEVICES = 16


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def use_cpu_devices() -> int | None:
    """Ask JAX for one CPU device per usable core (see the module docstring). Returns the
    number asked for, or None when it was left alone."""
    wanted = os.environ.get("JAXGLMM_CPU_DEVICES", "").strip()
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    if jax.config.jax_num_cpu_devices != -1:
        return None
    n = int(wanted) if wanted.isdigit() and int(wanted) > 0 else min(usable_cores(),
                                                                       MAX_CPU_DEVICES)
    if n < 2:
        return None
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # JAX already ran something: its devices are fixed
        return None
    return n
