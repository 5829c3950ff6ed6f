"""Random choices as effects: ``sample``, ``observe``, ``factor`` and the
structured control effects ``plate``, ``scan``, ``cond`` and sub-model calls.

A model is ordinary Python that performs these effects. What they *do* is
decided by whoever runs the model: a ``Handler``. The tracer handles them by
emitting IR (``ppl.trace``); the eager engine handles them by sampling,
scoring, replaying or suspending (``semantics.interpret``).

The handler in force is held in a ``ContextVar`` and installed only for the
duration of one run (``with handler: ...``): there is no global mutable
handler stack to leak between runs or into ``jit``.

Laws (for any handler ``h``)::

    observe(a, d, v)  ==  factor(a, d.log_density(v))     (as a weight)
    plate(n, k): sample(a, d)  ==  sample(a, d.expand(plate shape))
    scan(f, c, xs) == the sequential loop, with sites inside stacked by step
    cond(p, f, g, *x) == f(*x) if p else g(*x)
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from ppl.stdlib.errors import ModelError, PPLError, ShapeError, Span
from ppl.semantics.handler import (  # noqa: F401 - re-exported: the names of effects' handlers
    Handler, Layer, MemoOnTracedValue, NeedsDynamic, PlateFrame, Site, address_key, current_handler,
    require_handler, scan_length,
)
from ppl.semantics.memo import mem, memo_label  # noqa: F401 - re-exported
from ppl.semantics.user_spans import caller_span, is_internal, user_span_of  # noqa: F401 - re-exported

__all__ = [
    "Site",
    "PlateFrame",
    "Handler",
    "Layer",
    "current_handler",
    "sample",
    "observe",
    "factor",
    "deterministic",
    "param",
    "ESTIMATORS",
    "plate",
    "scan",
    "cond",
    "call",
    "mem",
    "caller_span",
    "address_key",
]


# ---------------------------------------------------------------------------
# Plates: broadcasting a site to the enclosing plates


def plate_batch_shape(batch_shape: tuple[int, ...], plates, address: str, span, what: str = "site",
                      hint: str = "Make the distribution's parameters broadcast with the plate size.") -> tuple[int, ...]:
    """The batch shape a site takes inside ``plates`` (NumPyro's rule: plate k owns dim -1-k)."""
    if not plates:
        return tuple(batch_shape)
    need = max(-f.dim for f in plates)
    shape = [1] * max(0, need - len(batch_shape)) + list(batch_shape)
    for f in plates:
        have = shape[f.dim]
        if have not in (1, f.size):
            raise ShapeError(
                f"the {what} '{address}' has size {have} in dimension {f.dim}, "
                f"but it is inside plate '{f.name}' of size {f.size}",
                span=span,
                hint=hint,
            )
        shape[f.dim] = f.size
    return tuple(shape)


def _in_plates(dist, plates, address, span):
    if not plates:
        return dist
    target = plate_batch_shape(tuple(dist.batch_shape), plates, address, span)
    return dist if target == tuple(dist.batch_shape) else dist.expand(target)


# ---------------------------------------------------------------------------
# The effects users call


def _check_dist(dist, what, address, span):
    if not hasattr(dist, "log_density") or not hasattr(dist, "batch_shape"):
        raise ModelError(
            f"ppl.{what}('{address}', ...) needs a distribution as its second argument, "
            f"but got {type(dist).__name__}",
            span=span,
            hint="Use one of ppl.dist: ppl.dist.Normal(0, 1), ppl.dist.Bernoulli(probs=0.5), ...",
        )
    validate = getattr(dist, "validate_params", None)
    if validate is not None:
        try:
            validate()
        except PPLError as err:
            err.message = f"at '{address}': {err.message}"
            raise err.with_span(span) from None


#: the gradient estimators a random choice may ask for (``ppl.sample(..., estimator=...)``); what each
#: means is in ``inference/vi/estimators.py``. Outside variational inference the choice has no effect.
ESTIMATORS = ("reparam", "implicit", "reinforce", "enum", "mvd")


def sample(name: Any, dist, *, obs=None, estimator: str | None = None, span: Span | None = None):
    """A random choice named ``name`` drawn from ``dist``; returns its value.

    ``obs=value`` (NumPyro's spelling) makes it an observation instead:
    ``sample(name, dist, obs=y)`` is ``observe(name, dist, y)``.
    ``estimator=`` names the gradient estimator variational inference uses at this
    choice (one of :data:`ESTIMATORS`; None: the distribution's default).
    """
    if obs is not None:
        return observe(name, dist, obs, span=span or caller_span())
    h = require_handler("sample")
    span = span or caller_span()
    if any(f.scale != 1.0 for f in h.plates):
        raise ModelError(f"the random choice {name!r} is inside the subsampled plate '{h.plates[-1].name}': "
                         "ppl subsamples observations only", span=span,
                         hint="Draw per-row latent variables outside the subsampled plate, or use all rows.")
    address = h.address(name)
    if estimator is not None and estimator not in ESTIMATORS:
        raise ModelError(
            f"ppl.sample('{address}', ...) was given estimator={estimator!r}, which is not a gradient estimator",
            span=span,
            hint="Use one of " + ", ".join(repr(e) for e in ESTIMATORS) + ", or leave it out for the default.",
        )
    _check_dist(dist, "sample", address, span)
    dist = _in_plates(dist, h.plates, address, span)
    h.claim(address, span)
    return h.handle_site(Site("sample", address, dist, None, span, tuple(h.plates), estimator))


def observe(name: Any, dist, value, *, span: Span | None = None):
    """Condition on ``value`` having been drawn from ``dist``; returns ``value``."""
    h = require_handler("observe")
    span = span or caller_span()
    address = h.address(name)
    _check_dist(dist, "observe", address, span)
    for f in h.plates:
        rows = np.shape(value)[f.dim] if f.scale != 1.0 and np.ndim(value) >= -f.dim else None
        if rows is not None and rows != f.size:
            raise ShapeError(
                f"the observed value at '{address}' has {rows} rows, but plate '{f.name}' subsamples "
                f"{f.size} of them", span=span,
                hint=f"Index the data with the plate's rows: with ppl.plate('{f.name}', ..., subsample_size="
                     f"{f.size}) as idx: ppl.observe(..., y[idx]).")
    dist = _in_plates(dist, h.plates, address, span)
    _check_observed_shape(dist, value, address, span)
    h.claim(address, span)
    h.handle_site(Site("observe", address, dist, value, span, tuple(h.plates)))
    scale = _subsample_scale(h)
    if scale != 1.0:  # a subsampled plate: the rows seen stand for all rows (size / subsample_size each)
        _weigh(h, h.address(_scaled_name(name)), (scale - 1.0) * jnp.sum(dist.log_density(value)), span)
    return value


def observed_shape_error(address: str, value_shape: tuple, dist_shape: tuple, span: Span | None) -> ShapeError | None:
    """Why an observed value of ``value_shape`` cannot be scored by a distribution of ``dist_shape``
    (batch + event), or None. The two must broadcast, and the parameters must not broadcast an observed
    array to a larger shape: ``y`` of shape (5, 1) against a Normal of shape (5,) would be scored as
    (5, 5), each observation counted five times. A scalar observation against vector parameters (Stan's
    vectorisation) is fine."""
    value_shape, dist_shape = tuple(value_shape), tuple(dist_shape)
    try:
        joint = tuple(np.broadcast_shapes(value_shape, dist_shape))
    except ValueError:
        return ShapeError(f"the observed value at '{address}' has shape {value_shape}, which does not broadcast "
                          f"with its distribution's shape {dist_shape}", span=span,
                          hint="Give data of the distribution's shape, or index the parameters to the data's.")
    if value_shape and joint != value_shape:
        times = int(np.prod(joint)) // max(1, int(np.prod(value_shape)))
        return ShapeError(
            f"the observed value at '{address}' has shape {value_shape}, but its distribution has shape "
            f"{dist_shape}: together they broadcast to {joint}, which would score each observation {times} times",
            span=span, hint="Reshape the data or the parameters so that their shapes agree (e.g. y[:, 0] for a "
                            "column, or parameters indexed per observation).")
    return None


def _check_observed_shape(dist, value, address: str, span: Span | None) -> None:
    try:
        dist_shape = tuple(dist.batch_shape) + tuple(dist.event_shape)
    except Exception:  # noqa: BLE001 - a distribution without static shapes: its log density decides
        return
    err = observed_shape_error(address, np.shape(value), dist_shape, span)
    if err is not None:
        raise err


def _subsample_scale(h) -> float:
    """How many rows each row seen stands for, under the enclosing (subsampled) plates."""
    return float(np.prod([f.scale for f in h.plates])) if h.plates else 1.0


def _scaled_name(name: Any) -> Any:
    """The address of the factor that scales a subsampled observation."""
    if isinstance(name, tuple):
        return (f"{name[0]}_subsample_scale",) + tuple(name[1:])
    return f"{name}_subsample_scale"


def factor(name: Any, log_weight, *, span: Span | None = None):
    """Multiply the program's weight by ``exp(log_weight)`` (summed over its elements)."""
    h = require_handler("factor")
    span = span or caller_span()
    address = h.address(name)
    if h.plates:
        # inside plates a factor is a term per plate element, as an observation is (and as in
        # NumPyro): a scalar counts once per element, an array must fit the plates' sizes, and a
        # subsampled plate's rows stand for all rows
        lw = jnp.asarray(log_weight)
        target = plate_batch_shape(lw.shape, h.plates, address, span, what="factor",
                                   hint="A factor inside a plate gives one term per element of the plate (a "
                                        "number counts once per element): give it the plate's size, or move it out.")
        if lw.shape != target:
            lw = jnp.broadcast_to(lw, target)
        scale = _subsample_scale(h)
        log_weight = lw if scale == 1.0 else scale * lw
    _weigh(h, address, log_weight, span)


def _weigh(h, address: str, log_weight, span) -> None:
    """The factor site ``address`` with ``log_weight`` as it is."""
    h.claim(address, span)
    h.handle_site(Site("factor", address, None, log_weight, span, tuple(h.plates)))


def deterministic(name: Any, value, *, span: Span | None = None):
    """Record a derived quantity in the trace (no effect on the weight); returns it."""
    h = require_handler("deterministic")
    span = span or caller_span()
    address = h.address(name)
    h.claim(address, span)
    return h.handle_site(Site("deterministic", address, None, value, span, tuple(h.plates)))


def param(name: Any, init, *, constraint=None, span: Span | None = None):
    """A learnable value named ``name``, starting at ``init`` (a value inside ``constraint``'s set;
    real numbers by default). Variational inference optimises it, in unconstrained coordinates
    through the constraint's bijector; everywhere else (simulate, MCMC, ...) it is ``init``.
    Returns the value."""
    h = require_handler("param")
    span = span or caller_span()
    address = h.address(name)
    shared = h.__dict__.get("shared_params")  # inside ppl.sim / ppl.density (semantics/scored_call.py):
    if shared is not None and shared.prefix is not None:  # the name inside the called program, one value
        address = shared.rename(address)
        if address in shared.values:
            return shared.values[address]
    h.claim(address, span)
    init = jnp.asarray(init, dtype=jnp.result_type(float))
    handle = getattr(h, "param_site", None)  # the tracer records it in the IR; other handlers use init
    value = init if handle is None else handle(address, init, constraint, span)
    if shared is not None and shared.prefix is not None:
        shared.values[address] = value
    return value


@contextlib.contextmanager
def plate(name: str, size: int, *, dim: int | None = None, subsample_size: int | None = None,
          shard: bool | str | None = None, span: Span | None = None):
    """Independent, vectorised iterations: sites inside get a batch dimension of ``size``.

    The outermost plate owns batch dimension -1, a plate inside it -2, and so
    on; ``dim=`` (NumPyro's argument) may say so, and must agree.
    ``shard=True`` (or the name of a mesh axis): on several devices, the data
    arrays whose leading axis has ``size`` rows are split over the devices, each
    evaluating its rows' likelihood (see docs/devices.md); it changes no value.
    ``subsample_size=B`` (NumPyro's data subsampling, for stochastic variational
    inference): each run draws B distinct rows at random (the site ``name``) and the
    plate yields their indices, ``with plate("data", N, subsample_size=B) as idx:
    observe("y", d, y[idx])``; every observation inside counts ``N / B`` times, so
    the log-likelihood is an unbiased estimate of the full data's.
    """
    h = require_handler("plate")
    span = span or caller_span()
    own = -1 - len(h.plates)
    if dim is not None and dim != own:
        raise ShapeError(
            f"plate '{name}' was given dim={dim}, but it is nested {len(h.plates)} plate(s) deep, "
            f"so it owns dimension {own}",
            span=span,
            hint="ppl gives plates their dimensions in nesting order: the outermost owns -1, the next -2. "
                 "Leave out dim=, or nest the plates so that the one with dim=-1 is outermost.",
        )
    try:
        whole = int(size)
    except Exception:
        raise ShapeError(
            f"plate '{name}' needs a fixed integer size, but got {size!r}",
            span=span,
            hint="A plate's size must be a Python int (len(y), y.shape[0]) known when the model is called, "
                 "not a value computed from a random choice or an array argument.",
        ) from None
    if whole != size or whole < 0:  # 2.5 would become a plate of 2 without a word
        raise ShapeError(f"plate '{name}' needs a whole, non-negative number as its size, but got {size!r}",
                         span=span, hint="Pass the number of rows as an int: len(y) or y.shape[0].")
    size = whole
    if shard is not None and not isinstance(shard, (bool, str)):  # False is kept: never split automatically
        raise ModelError(f"plate '{name}' was given shard={shard!r}: use shard=True or the name of a "
                         "mesh axis", span=span)
    if subsample_size is not None and subsample_size != size:
        with _subsampled(h, name, size, subsample_size, span, shard) as idx:
            yield idx
        return
    with h.enter_plate(name, size, span, shard=shard) as frame:
        yield frame


def subsampling_refused(plate_name: str, span: Span | None, what: str) -> ModelError:
    """The error of ``what`` (a method that needs the exact density) at the subsampled plate ``plate_name``."""
    return ModelError(
        f"plate '{plate_name}' draws a random subsample of its rows (subsample_size=): its likelihood is then a "
        f"stochastic estimate, which {what} cannot use (it needs the exact density)", span=span,
        hint="Fit it with stochastic variational inference (method=ppl.VI(...)), or drop subsample_size "
             "to use every row.")


@contextlib.contextmanager
def _subsampled(h, name: str, size: int, subsample_size, span, shard):
    """``plate(name, size, subsample_size=B)``: B distinct rows drawn at random (the site ``name``,
    ``SubsampleIndices``), a plate of size B over them, each observation inside weighted size / B."""
    from ppl.stdlib.distributions.subsample import SubsampleIndices

    try:
        b = int(subsample_size)
    except Exception:
        b = None
    if b is None or isinstance(subsample_size, bool) or not 1 <= b < size:
        raise ShapeError(f"plate '{name}' of size {size} was given subsample_size={subsample_size!r}",
                         span=span, hint=f"Give a whole number of rows from 1 to {size}.")
    if h.plates:
        raise ModelError(f"plate '{name}' subsamples its rows but is inside plate '{h.plates[-1].name}'",
                         span=span, hint="Make the subsampled plate the outermost one.")
    idx = sample(name, SubsampleIndices(size, b), span=span)
    with h.enter_plate(name, b, span, shard=shard, subsampled_from=size):
        yield idx


def scan(step: Callable, init, xs=None, length: int | None = None, *, reverse: bool = False,
         span: Span | None = None):
    """A loop with carried state, with ``jax.lax.scan``'s signature.

    Sites inside ``step`` are indexed by the step: their values are stacked
    along a new leading axis.
    """
    h = require_handler("scan")
    span = span or caller_span()
    return h.handle_scan(step, init, xs, length, reverse, span)


def cond(pred, true_fn: Callable, false_fn: Callable, *operands, span: Span | None = None):
    """A branch on a (possibly random) boolean, with ``jax.lax.cond``'s signature."""
    h = require_handler("cond")
    span = span or caller_span()
    return h.run_cond(pred, true_fn, false_fn, operands, span)


def call(name: str, fn: Callable, *args, **kwargs):
    """Run ``fn`` with its addresses nested under ``name`` (a sub-model call)."""
    h = require_handler("call")
    with h.enter_call(name):
        return fn(*args, **kwargs)
