"""How much memory a run will need, checked before it starts.

``estimate(program, args, method)`` counts the bytes of what a run keeps:
one *record* per draw — every latent and deterministic site and the return
value, in their dtypes (from the IR's static shapes, so nothing is
computed) — times the draws kept (chains × draws for MCMC, where ``thin``
spaces the kept draws ``thin`` iterations apart; particles for importance
and SMC), plus the sampler's own per-draw state
(the unconstrained position and a few statistics for NUTS/HMC, the log
weights for weighted methods). What is made on the device is copied to the
host, so both must hold it.

``check(program, args, method)`` raises a :class:`MemoryLimitError` when the
estimate exceeds ``FRACTION`` of the memory available (the host's free
memory, and an accelerator's free memory when there is one), with the
number and how to lower it. Should a run exhaust the device's memory all
the same (XLA's ``RESOURCE_EXHAUSTED``: the working memory of a large model
is more than its draws), ``exhausted_error`` says so in the same words. Dynamic models (eager engine) and exact
enumeration are not estimated: their size depends on the values drawn.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import jax
import numpy as np

from ppl.semantics import ir
from ppl.stdlib.errors import ModelError

__all__ = ["MemoryLimitError", "Estimate", "estimate", "available_bytes", "check", "FRACTION", "format_bytes",
           "is_exhausted", "exhausted_error"]

#: the largest share of the available memory a run may plan to use
FRACTION = 0.5

#: per-draw statistics the gradient samplers record (diverging, accept_prob, step_size, ...)
_GRADIENT_STATS = 8


class MemoryLimitError(ModelError):
    """A run whose draws would not fit in memory."""

    kind = "Memory error"


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Bytes a run needs: ``draws`` records of ``record_bytes`` each, plus ``overhead_bytes``."""

    draws: int
    record_bytes: int
    overhead_bytes: int
    per_draw: str  # what one draw holds, in words

    @property
    def total(self) -> int:
        return self.draws * self.record_bytes + self.overhead_bytes


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _size(shape, dtype) -> int:
    """Bytes of one value of this shape and dtype (the default float where the dtype is not known)."""
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        itemsize = np.dtype(jax.numpy.result_type(float)).itemsize
    return int(math.prod(shape)) * itemsize


def _record(program: ir.Program) -> int:
    """Bytes of one draw's latent and deterministic sites and return value, from the IR alone."""
    kept = sum(_size(s.stacked_shape, s.dtype) for s in program.sites.values()
               if s.kind in ("sample", "deterministic"))
    kept += sum(_size(getattr(r, "shape", ()), getattr(r, "dtype", None)) for r in program.block.returns)
    return kept


def _position(program: ir.Program, args) -> int:
    """Bytes of one draw's unconstrained position (what NUTS and HMC carry); 0 where it is not known."""
    from ppl.semantics import compile as C

    try:
        shapes = C.unconstrained_shapes(program, list(args))
    except Exception:  # noqa: BLE001 - the sampler itself reports such a model; the estimate only advises
        return 0
    return sum(_size(s, jax.numpy.result_type(float)) for s in shapes.values() if s is not None)


def _count(value, default: int) -> int:
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else default


def estimate(program, args, method) -> Estimate | None:
    """The memory ``method.run(program, args, key)`` will need (None where it is not estimated)."""
    if not isinstance(program, ir.Program) or args is None:
        return None
    name = type(method).__name__
    if name == "Enumerate":
        return None
    particles = getattr(method, "num_particles", None)
    samples = getattr(method, "num_samples", None)
    chains = getattr(method, "num_chains", None)
    if samples is None and particles is None:
        return None
    record = _record(program)
    float_size = np.dtype(jax.numpy.result_type(float)).itemsize
    if samples is not None:  # MCMC (PMMH too): chains × kept draws
        draws = _count(chains, 1) * _count(samples, 1)
        per_draw = record
        overhead = 0
        if hasattr(method, "target_accept"):  # NUTS/HMC: the driver's positions and statistics, on the device
            per_draw += _position(program, args) + _GRADIENT_STATS * float_size
        if particles is not None:  # PMMH: the particle filter's working set, per chain
            overhead = _count(chains, 1) * _count(particles, 1) * (record + float_size)
        # made on the device, then copied to the host
        return Estimate(draws, 2 * per_draw, overhead, f"{format_bytes(record)} of values")
    n = _count(particles, 1)
    return Estimate(n, 2 * (record + float_size), 0, f"{format_bytes(record)} of values")


def available_bytes() -> int | None:
    """Free memory: the host's, and the default device's when it reports one (the smaller)."""
    candidates = []
    host = _host_available()
    if host is not None:
        candidates.append(host)
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - backends without memory statistics
        stats = None
    if stats and stats.get("bytes_limit"):
        candidates.append(int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
    return min(candidates) if candidates else None


def _host_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# the last reading of the free memory: (the reader it came from, when, bytes)
_last_reading: list = [None, -math.inf, None]
_READING_FRESH_S = 1.0


def _recently_available(needed: int) -> int | None:
    """``available_bytes()``, or its reading of less than a second ago when ``needed`` is under a
    quarter of what that reading allowed (a repeated small run does not read /proc/meminfo each
    time; a run near the limit always gets a fresh reading)."""
    reader = available_bytes  # looked up at each call: a test may replace it
    fn, when, value = _last_reading
    now = time.monotonic()
    if fn is reader and value is not None and now - when < _READING_FRESH_S and 4 * needed <= FRACTION * value:
        return value
    value = reader()
    _last_reading[:] = [reader, now, value]
    return value


def check(program, args, method, available: int | None = None, command_line: bool = False) -> Estimate | None:
    """Refuse a run whose estimate exceeds ``FRACTION`` of the available memory; return the estimate."""
    est = estimate(program, args, method)
    if est is None:
        return None
    if available is None:
        available = _recently_available(est.total)
    if available is None:
        return est
    limit = int(FRACTION * available)
    if est.total <= limit:
        return est
    name = type(method).__name__
    particles = getattr(method, "num_particles", None)
    samples = getattr(method, "num_samples", None)
    record = max(est.record_bytes, 1)
    fit = max((limit - est.overhead_bytes) // record, 0)
    if samples is not None:
        chains = max(_count(getattr(method, "num_chains", 1), 1), 1)
        what = f"{chains} chain{'s' if chains != 1 else ''} × {_count(samples, 1)} draws"
        most = max(fit // chains, 0)
        k = max(-(-_count(samples, 1) // max(most, 1)), 2)  # keep k times fewer draws ...
        thin = k * max(_count(getattr(method, "thin", 1), 1), 1)  # ... of as many iterations as asked for
        kept = _count(samples, 1) // k
        if command_line:
            fix = f"Lower --num-samples to at most {most} (or use fewer --num-chains)"
            fix += (f"; to run as many iterations, keep every k-th: --num-samples {kept} "
                    f"--thin {thin}." if hasattr(method, "thin") else ".")
        else:
            fix = (f"Use {name}(num_samples=...) of at most {most}, or fewer chains"
                   + (f"; to run as many iterations, keep every k-th: num_samples={kept}, "
                      f"thin={thin}." if hasattr(method, "thin") else "."))
    else:
        what = f"{_count(particles, 1)} particles"
        fix = (f"Lower --num-samples to at most {fit}." if command_line
               else f"Use {name}(num_particles=...) of at most {fit}.")
    raise MemoryLimitError(
        f"{name} with {what} would need about {format_bytes(est.total)} to keep its draws "
        f"({est.per_draw} per draw, on the device and again on the host), but only "
        f"{format_bytes(available)} is free (a run may plan to use {int(FRACTION * 100)}% of it)",
        hint=fix)


def is_exhausted(err: BaseException) -> bool:
    """Whether a JAX runtime error is XLA's out-of-memory (``RESOURCE_EXHAUSTED``)."""
    return "RESOURCE_EXHAUSTED" in str(err)


def exhausted_error(program, args, method, err: BaseException, command_line: bool = False) -> MemoryLimitError:
    """A MemoryLimitError for a run that ran out of device memory, with the estimate and what to lower."""
    name = type(method).__name__
    detail = str(err).splitlines()[0].removeprefix("RESOURCE_EXHAUSTED:").strip()
    try:
        est = estimate(program, args, method)
    except Exception:  # noqa: BLE001 - the message must not fail on top of the run
        est = None
    need = f" (its draws alone need about {format_bytes(est.total)})" if est is not None else ""
    if getattr(method, "num_samples", None) is not None:
        fix = ("Use fewer draws or chains (--num-samples, --num-chains)" if command_line
               else f"Use fewer draws or chains ({name}(num_samples=..., num_chains=...))")
    elif getattr(method, "num_particles", None) is not None:
        fix = ("Use fewer particles (--num-samples)" if command_line
               else f"Use fewer particles ({name}(num_particles=...))")
    else:
        fix = "Make the model smaller"
    out = MemoryLimitError(f"{name} ran out of device memory{need}: {detail}",
                           hint=fix + ", or run on a machine with more memory.")
    out.device_error = err  # so that a front end can say it again in its own terms
    return out
