"""A persistent XLA compilation cache, so a new Python process reuses compiled samplers.

``enable_compilation_cache()`` points JAX's on-disk cache at
``$PPL_CACHE_DIR`` (or ``~/.cache/ppl/xla``) and lowers the thresholds so
that every sampler program is stored. It only sets public ``jax.config``
options and can be called at any time before the programs are compiled.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["enable_compilation_cache", "default_cache_dir"]


def default_cache_dir() -> Path:
    root = os.environ.get("PPL_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ppl" / "xla"


def enable_compilation_cache(path: str | os.PathLike | None = None, min_compile_time_secs: float = 0.0) -> Path:
    """Store compiled XLA programs under ``path`` (created if missing); returns the directory used.

    Programs that took at least ``min_compile_time_secs`` to compile are kept.
    """
    directory = Path(path).expanduser() if path is not None else default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory
