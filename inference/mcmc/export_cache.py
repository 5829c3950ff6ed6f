"""Sampler programs kept on disk, so a second process skips tracing them.

JAX's persistent compilation cache (``cache.enable_compilation_cache``) saves
the XLA *compilation* of a sampler, but its key is the lowered program: a new
process still traces the whole driver (initialisation, the step-size search,
warm-up and the NUTS loop) and lowers it before it can look the compilation
up, and that tracing is most of a second process's wait. This cache keeps the
lowered program itself, serialised with the public ``jax.export`` API, under a
key computed *without* tracing the driver:

- the log density, as the StableHLO text of its value and gradient at the
  run's argument shapes (one small trace and lowering; every constant and the
  gradient included, so two densities share a key only when they compute the
  same numbers); or, for the density of a ppl program on one device, the
  digest of the program's IR and of ppl's source (``semantics/ir_digest.py``),
  which needs no trace at all;
- the run's static description (``base._Spec``: tree structures, shapes,
  dtypes, init strategy, kernel options, adaptation structure, plan);
- the source of the code that builds the program around the density
  (``DRIVER_SOURCES``: ``inference/mcmc``, the placement, the JAX shims, the written-out Threefry), the
  jax and jaxlib versions, the JAX settings that change what a trace computes (``TRACE_SETTINGS``:
  float width, random streams, matmul precision) and the backend and device kind.

Only ppl's own kernel builders and adaptations qualify (their code is in the
hashed source), on one device, without a progress display (its host
callbacks cannot be serialised); anything else, or a description whose text
names an object by its address, compiles as before. A file that cannot be read
or does not match its key is replaced. The program called is the deserialised
one in both the exporting and the later processes, so their XLA compilations
share one persistent-cache entry and their draws are the same bits.

The files live in ``<compilation cache dir>/ppl-programs``; with the
compilation cache off (``ppl.config(compilation_cache=False)``) this cache is
off too, and ``PPL_PROGRAM_CACHE=off`` turns it off alone.

The folder is bounded: after each new file is written, the least recently used
programs (a load counts as a use) are removed until the rest total at most
``ppl.config(program_cache_max_mb=...)`` megabytes, else
``$PPL_PROGRAM_CACHE_MAX_MB``, else ``DEFAULT_MAX_MB`` (256; one program is
typically 0.1 to 1 MB). Temporary files a crashed writer left behind are
removed once they are an hour old.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics import ir_digest
from ppl.stdlib import jax_compat
from ppl.stdlib.errors import ModelError

__all__ = ["TRACE_SETTINGS", "directory", "evict", "fingerprint", "key", "load_or_export", "max_bytes", "max_mb",
           "set_max_mb", "settings"]

_MAGIC = b"ppl-program-v1\n"
# The code that traces a sampler program around its log density (the density itself is keyed by its
# lowered value and gradient): the MCMC package, the placement, JAX's internals as ppl uses them and the
# written-out Threefry the samplers draw with.
# tests/test_program_cache.py checks that these import no other ppl module that could shape a program.
DRIVER_SOURCES = ("ppl.inference.mcmc", "ppl.inference.sharding", "ppl.stdlib.jax_compat", "ppl.stdlib.threefry")


DEFAULT_MAX_MB = 256.0
_STALE_TEMP_SECONDS = 3600.0
_limit: dict[str, float | None] = {"max_mb": None}  # what ppl.config(program_cache_max_mb=...) set


def _as_mb(value, where: str) -> float:
    try:
        mb = float(value)
    except (TypeError, ValueError):
        mb = float("nan")
    if isinstance(value, bool) or not mb >= 0 or mb == float("inf"):
        raise ModelError(f"{where}={value!r}: give the program cache's size bound in megabytes (a number, 0 or more)")
    return mb


def set_max_mb(mb) -> None:
    """Bound the program folder to ``mb`` megabytes (None: ``$PPL_PROGRAM_CACHE_MAX_MB`` or the default)."""
    _limit["max_mb"] = None if mb is None else _as_mb(mb, "program_cache_max_mb")


def max_mb() -> float:
    """The bound in force, in megabytes: the configured one, else the environment's, else the default."""
    if _limit["max_mb"] is not None:
        return _limit["max_mb"]
    env = os.environ.get("PPL_PROGRAM_CACHE_MAX_MB", "").strip()
    return _as_mb(env, "PPL_PROGRAM_CACHE_MAX_MB") if env else DEFAULT_MAX_MB


def max_bytes() -> int:
    """The bound in force, in bytes."""
    return int(max_mb() * 1024 * 1024)


def directory() -> Path | None:
    """Where programs are kept, or None when the cache is off."""
    if os.environ.get("PPL_PROGRAM_CACHE", "on").lower() in ("0", "off", "false", "no"):
        return None
    root = jax.config.jax_compilation_cache_dir
    if not root or importlib.util.find_spec("flatbuffers") is None:  # jax.export serialises with it
        return None
    return Path(root) / "ppl-programs"


# JAX settings that change what a traced program computes: its float width and dtypes, its random
# streams (the key implementation, threefry's partitionable form, the seed offset, Gumbel draws), its
# matmul precision and its gradients (softmax's rule). A program traced under one value of any of them
# is another program under another value, in memory (``base._compiled``) and on disk.
TRACE_SETTINGS = ("jax_enable_x64", "jax_explicit_x64_dtypes", "jax_numpy_dtype_promotion",
                  "jax_default_prng_impl", "jax_threefry_partitionable", "jax_random_seed_offset",
                  "jax_high_dynamic_range_gumbel", "jax_default_matmul_precision", "jax_softmax_custom_jvp")


def settings() -> tuple:
    """The current values of ``TRACE_SETTINGS`` (as text; a setting this JAX lacks reads None)."""
    return tuple((name, str(getattr(jax.config, name, None))) for name in TRACE_SETTINGS)


def _environment() -> str:
    device = jax.devices()[0]
    traced = " ".join(f"{name}={value}" for name, value in settings())
    return (f"jax={jax.__version__} jaxlib={metadata.version('jaxlib')} {traced} "
            f"backend={jax.default_backend()} device={device.device_kind} "
            f"ppl={ir_digest.source_digest(DRIVER_SOURCES)}")


def fingerprint(value_and_grad: Callable, position: Any, args: tuple, description: str) -> str | None:
    """The cache key of a sampler program, or None when it cannot be keyed soundly.

    ``value_and_grad(position, *args)``: the log density's value and gradient on the flat position;
    ``description``: the text of everything static about the run (it must not name objects by
    their addresses, which differ between processes).
    """
    if not _readable(description):
        return None
    return key(description, jax.jit(value_and_grad).lower(position, *args).as_text())


def key(description: str, density: str) -> str | None:
    """The cache key of a sampler program whose log density is fixed by the text ``density``: its
    lowered value and gradient (``fingerprint``), or a digest of the program it comes from
    (``semantics/ir_digest.py``: no trace). None where ``description`` names an object by address."""
    if not _readable(description):
        return None
    text = "\n".join((_environment(), description, density))
    return hashlib.sha256(text.encode()).hexdigest() + hashlib.sha256(density.encode()).hexdigest()[:16]


def _readable(description: str) -> bool:
    return " at 0x" not in description and "object at" not in description


# --------------------------------------------------------------------------- flat calls (keys as data)


def _flatten(args: tuple) -> tuple[list, Any, tuple]:
    """The leaves of ``args`` as arrays (a typed PRNG key as its key data), the tree and key impls."""
    leaves, tree = jax.tree.flatten(args)
    flat, impls = [], []
    for leaf in leaves:
        if jnp.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key):
            flat.append(jax.random.key_data(leaf))
            impls.append(str(jax.random.key_impl(leaf)))
        else:
            flat.append(jnp.asarray(leaf))
            impls.append(None)
    return flat, tree, tuple(impls)


def _spec(x: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, weak_type=bool(getattr(x, "weak_type", False)))


def _export(program: Callable, tree: Any, impls: tuple, flat: list) -> Any:
    def flat_program(*leaves):
        leaves = [x if impl is None else jax.random.wrap_key_data(x, impl=impl) for x, impl in zip(leaves, impls)]
        return program(*jax.tree.unflatten(tree, leaves))

    return jax.export.export(jax.jit(flat_program))(*(_spec(x) for x in flat))


def _read(path: Path, key: str, flat: list) -> tuple[Any, bytes] | None:
    """The exported program stored at ``path`` for ``key`` and its serialised form, or None (missing,
    unreadable, another key)."""
    try:
        blob = path.read_bytes()
        header = _MAGIC + key.encode() + b"\n"
        if not blob.startswith(header):
            return None
        payload = blob[len(header):]
        exported = jax.export.deserialize(bytearray(payload))
    except Exception:  # a missing, truncated or foreign file: compile afresh and replace it
        return None
    def aval(x):
        return tuple(x.shape), str(x.dtype), bool(getattr(x, "weak_type", False))

    if [aval(a) for a in exported.in_avals] != [aval(x) for x in flat]:
        return None
    try:
        os.utime(path)  # a use: the file's time orders the eviction (least recently used first)
    except OSError:
        pass
    return exported, payload


def _write(path: Path, key: str, payload: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _MAGIC + key.encode() + b"\n" + payload
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    except OSError:
        return  # a read-only folder: the program still runs, uncached
    evict(path.parent, max_bytes())


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # gone already (another process evicted it), or not ours to remove


def evict(folder: Path, limit: int) -> None:
    """Keep the most recently used programs in ``folder`` whose sizes total at most ``limit`` bytes
    (newest first, stopping at the first that does not fit), and remove the others, and any
    temporary file older than an hour (a writer that crashed). Safe while other processes use it."""
    now = time.time()
    programs = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for p in entries:
        try:
            st = p.stat()
        except OSError:
            continue
        if p.name.startswith(".tmp-"):
            if now - st.st_mtime > _STALE_TEMP_SECONDS:
                _unlink(p)
        elif p.suffix == ".bin":
            programs.append((st.st_mtime, st.st_size, p))
    programs.sort(key=lambda e: e[0], reverse=True)
    total = 0
    for _, size, p in programs:
        total += size
        if total > limit:
            _unlink(p)


def load_or_export(program: Callable, key: str, args: tuple, compiler_options: dict | None = None) -> Callable:
    """A callable equal to ``program`` on arguments shaped like ``args``: the exported program
    stored under ``key`` when there is one, else ``program`` exported now (and stored), compiled
    with XLA's ``compiler_options`` (an exported program keeps no options of its own)."""
    folder = directory()
    flat, tree, impls = _flatten(args)
    path = None if folder is None else folder / f"{key}.bin"
    stored = None if path is None else _read(path, key, flat)
    if stored is None:
        exported = _export(program, tree, impls, flat)
        try:
            payload = bytes(exported.serialize())
        except (ValueError, TypeError):  # a program that cannot be serialised: it still runs, uncached
            payload = None
        if path is not None and payload is not None:
            _write(path, key, payload)
    else:
        exported, payload = stored
    run = jax.jit(exported.call, compiler_options=compiler_options)
    # A program without LAPACK calls (every NUTS or HMC program with a diagonal metric) is lowered
    # without importing scipy.linalg for JAX's LAPACK handlers. Only the first call lowers it.
    skip_lapack_setup = [payload is not None and not jax_compat.uses_lapack(payload)]

    def call(*call_args):
        leaves, _, _ = _flatten(call_args)
        if not skip_lapack_setup[0]:
            return run(*leaves)
        with jax_compat.lowering_exported_without_lapack():
            out = run(*leaves)
        skip_lapack_setup[0] = False
        return out

    return call
