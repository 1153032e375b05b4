"""Shared test setup: every test runs in float64 (set here, never at library import)."""
import jax

jax.config.update("jax_enable_x64", True)

# Shared fixtures are welcome below.
