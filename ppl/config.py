"""Global numeric settings."""

from __future__ import annotations

import os

import jax

__all__ = ["config"]


_UNSET = object()


def config(*, x64: bool | None = None, platform: str | None = None, compilation_cache=None,
           devices=_UNSET, auto_shard_rows=_UNSET, program_cache_max_mb=_UNSET) -> dict:
    """Set global options; returns the settings in force.

    ``x64=True`` computes in float64 (the default is float32); call it before
    building models: arrays made earlier keep their dtype.
    ``compilation_cache``: a folder for the persistent XLA cache (compiled
    samplers are reused by later processes), or ``False`` to turn it off. It is
    on by default, in ``$PPL_CACHE_DIR`` or ``~/.cache/ppl/xla``; set the
    environment variable ``PPL_CACHE=off`` to start with it off.
    ``program_cache_max_mb``: the bound, in megabytes, on the traced sampler programs kept next to
    that cache (``<cache>/ppl-programs``, inference/mcmc/export_cache.py): past it the least recently
    used are removed. None: ``$PPL_PROGRAM_CACHE_MAX_MB``, else 256.
    ``devices``: where ``ppl.infer`` runs when its call names no devices (a number
    of devices, a list of devices, a ``jax.sharding.Mesh``, or None for every
    device; see docs/devices.md).
    ``auto_shard_rows``: with several devices, a plate over observations with at least this many
    rows (100,000 by default) is split over them unless marked ``shard=False``; None: only plates
    marked ``shard=True`` are split.
    """
    if devices is not _UNSET:
        from ppl.inference import sharding

        sharding.set_default(devices)
    if auto_shard_rows is not _UNSET:
        from ppl.inference import sharding

        sharding.set_auto_shard_rows(auto_shard_rows)
    if program_cache_max_mb is not _UNSET:
        from ppl.inference.mcmc import export_cache

        export_cache.set_max_mb(program_cache_max_mb)
    if x64 is not None:
        jax.config.update("jax_enable_x64", bool(x64))
    if platform is not None:
        jax.config.update("jax_platforms", platform)
    if compilation_cache is not None:
        if compilation_cache is False:
            jax.config.update("jax_compilation_cache_dir", None)
        else:
            from ppl.inference.mcmc.cache import enable_compilation_cache

            enable_compilation_cache(None if compilation_cache is True else compilation_cache,
                                     min_compile_time_secs=0.0)
    from ppl.inference import sharding
    from ppl.inference.mcmc import export_cache

    return {"x64": bool(jax.config.jax_enable_x64),
            "compilation_cache": jax.config.jax_compilation_cache_dir,
            "devices": sharding.default_mesh(), "auto_shard_rows": sharding.auto_shard_rows(),
            "program_cache_max_mb": export_cache.max_mb()}


def enable_default_cache() -> None:
    """Turn the persistent compilation cache on at import, unless PPL_CACHE=off or it cannot be written."""
    if os.environ.get("PPL_CACHE", "on").lower() in ("0", "off", "false", "no"):
        return
    if jax.config.jax_compilation_cache_dir:
        return  # the user configured one already
    from ppl.inference.mcmc.cache import enable_compilation_cache

    try:
        enable_compilation_cache(None, min_compile_time_secs=0.0)
    except OSError:
        pass
