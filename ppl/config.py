"""Global numeric settings."""

from __future__ import annotations

import jax

__all__ = ["config"]


def config(*, x64: bool | None = None, platform: str | None = None) -> dict:
    """Set numeric options. ``x64=True`` computes in float64 (the default is float32).

    Call it before building models: arrays made earlier keep their dtype.
    Returns the settings in force.
    """
    if x64 is not None:
        jax.config.update("jax_enable_x64", bool(x64))
    if platform is not None:
        jax.config.update("jax_platforms", platform)
    return {"x64": bool(jax.config.read("jax_enable_x64"))}
