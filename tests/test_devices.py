"""jaxglmm asks JAX for one CPU device per core at import (jaxglmm.devices), so that chains
run in parallel; the user's own settings win. Each case runs in a fresh process."""
import json
import os
import subprocess
import sys

import pytest

from jaxglmm.devices import MAX_CPU_DEVICES, usable_cores

SCRIPT = ("import json, jax, jaxglmm; "
          "print(json.dumps({'n': jax.device_count(), 'platform': jax.default_backend()}))")


def _devices(**env_changes) -> int:
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAXGLMM_CPU_DEVICES", "XLA_FLAGS")}
    env.update(JAX_PLATFORMS="cpu", **env_changes)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["n"]


@pytest.mark.slow
def test_one_cpu_device_per_core_unless_told():
    assert _devices() == min(usable_cores(), MAX_CPU_DEVICES)
    assert _devices(JAXGLMM_CPU_DEVICES="1") == 1
    assert _devices(JAXGLMM_CPU_DEVICES="3") == 3
    assert _devices(XLA_FLAGS="--xla_force_host_platform_device_count=5") == 5


def test_left_alone_once_jax_has_run():
    script = ("import jax, jax.numpy as jnp; jnp.ones(2).block_until_ready(); "
              "from jaxglmm.devices import use_cpu_devices; print(use_cpu_devices())")
    env = {k: v for k, v in os.environ.items() if k != "JAXGLMM_CPU_DEVICES"}
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "None"
