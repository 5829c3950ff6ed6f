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
import os
import sys
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ppl.stdlib import jax_compat as jc
from ppl.stdlib.distributions.base import deferred_validation
from ppl.stdlib.errors import AddressError, ModelError, PPLError, ShapeError, Span

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


@dataclass(frozen=True)
class PlateFrame:
    """An enclosing ``plate``: ``size`` independent copies along batch dimension ``dim`` (< 0)."""

    name: str
    size: int
    dim: int
    scale: float = 1.0  # a subsampled plate: size / subsample_size, the weight of each observed row


@dataclass
class Site:
    """One effect performed by a model.

    ``kind`` is ``"sample"``, ``"observe"``, ``"factor"`` or ``"deterministic"``;
    ``value`` is the observed value (observe), the log weight (factor) or the
    recorded value (deterministic).
    """

    kind: str
    address: str
    dist: Any = None
    value: Any = None
    span: Span | None = None
    plates: tuple[PlateFrame, ...] = ()
    estimator: str | None = None  # sample sites: the gradient estimator a VI objective uses here


_current: ContextVar["Handler | None"] = ContextVar("ppl_handler", default=None)


def current_handler() -> "Handler | None":
    return _current.get()


# ---------------------------------------------------------------------------
# Addresses


def address_key(scope: tuple[str, ...], name: Any, indices: tuple[int, ...] = ()) -> str:
    """The string key of an address: ``"sub/x[3]"`` for ("sub", "x", 3)."""
    if isinstance(name, tuple):
        if not name:
            raise AddressError("an address must not be an empty tuple")
        base, *rest = name
        name = str(base) + "".join(f"[{_index_text(i)}]" for i in rest)
    elif not isinstance(name, str):
        raise AddressError(
            f"an address must be a string (or a tuple such as ('x', i)), but got {name!r}",
            hint="Give every random choice a name: ppl.sample('x', dist).",
        )
    key = "/".join((*scope, name)) if scope else name
    return key + "".join(f"[{i}]" for i in indices)


def _index_text(i) -> str:
    if hasattr(i, "shape") and getattr(i, "shape", None) == ():
        try:
            return str(int(i))
        except Exception:  # a traced index: the address is not static
            raise
    return str(i)


def _package_roots() -> tuple[str, ...]:
    """The folders of ppl's four packages (already imported by the time a model runs)."""
    roots = {os.path.dirname(os.path.abspath(__file__))}
    for mod in ("ppl", "ppl.semantics", "ppl.inference", "ppl.stdlib"):
        m = sys.modules.get(mod)
        if m is not None and getattr(m, "__file__", None):
            roots.add(os.path.dirname(os.path.abspath(m.__file__)))
    return tuple(sorted(roots))


_ROOTS: tuple[str, ...] | None = None
_SKIP_PREFIXES = ("<frozen", "<string>")


def is_internal(filename: str) -> bool:
    global _ROOTS
    if _ROOTS is None or len(_ROOTS) < 4:
        _ROOTS = _package_roots()
    if filename.startswith(_SKIP_PREFIXES):
        return True
    path = os.path.abspath(filename)
    if any(path.startswith(root + os.sep) for root in _ROOTS):
        # the user's examples and tests live outside the package folders
        return True
    parts = path.split(os.sep)
    return "jax" in parts or "contextlib.py" in parts[-1:] or "site-packages" in parts


def caller_span() -> Span | None:
    """The first stack frame outside ppl and JAX: the user's line that made the call."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not is_internal(filename):
            return Span(filename, frame.f_lineno)
        frame = frame.f_back
    return None


def user_span_of(exc: BaseException) -> Span | None:
    """The innermost traceback frame of ``exc`` in the user's code."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not is_internal(filename):
            found = Span(filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


# ---------------------------------------------------------------------------
# Handlers


@dataclass
class _Scope:
    names: list = field(default_factory=list)
    calls: list = field(default_factory=list)  # per scope: name -> count


class Layer:
    """A reinterpretation of some effects, layered over a running handler for the extent of a
    block (``with handler.layered(layer): ...``), as effect handlers compose in Pyro and
    MonadBayes. Each method receives ``below``, the rest of the stack: a layer decides what an
    effect means here and passes it on (changed, or not at all). The defaults pass everything on.
    """

    def site(self, site: "Site", below: Callable[["Site"], Any]) -> Any:
        return below(site)

    def scan(self, step, init, xs, length, reverse, span, below: Callable) -> Any:
        return below(step, init, xs, length, reverse, span)


class Handler:
    """Runs a model: decides what each effect does.

    Subclasses implement :meth:`site`; the control effects have eager
    defaults here (a Python loop for ``scan``, a Python ``if`` for ``cond``),
    which the tracer overrides with ``lax.scan``/``lax.cond``.
    """

    #: whether sites inside ``scan`` get the step appended to their address
    index_loops = True

    def __init__(self):
        self.scope: list[str] = []
        self._call_counts: list[dict[str, int]] = [{}]
        self.plates: list[PlateFrame] = []
        self.indices: list[int] = []
        self.seen: dict[str, Span | None] = {}
        self.memo: dict[int, dict] = {}
        self._memo_counts: dict[tuple, dict] = {}  # per scope that memoised values are drawn in: name -> count
        self.layers: list[Layer] = []
        self._token = None

    # -- installation ------------------------------------------------------
    def __enter__(self):
        self._token = _current.set(self)
        self._defer = deferred_validation()
        self._defer.__enter__()
        return self

    def __exit__(self, *exc):
        self._defer.__exit__(*exc)
        _current.reset(self._token)
        self._token = None
        return False

    # -- addresses -----------------------------------------------------------
    def address(self, name: Any) -> str:
        indices = tuple(self.indices) if self.index_loops else ()
        return address_key(tuple(self.scope), name, indices)

    def claim(self, address: str, span: Span | None) -> None:
        """Record that ``address`` is used; two uses in one run is an error."""
        if address in self.seen:
            first = self.seen[address]
            where = f" (first used at {first.describe()})" if first is not None else ""
            raise AddressError(
                f"the address '{address}' is used twice in one run of the model{where}",
                span=span,
                hint="Every random choice needs its own name. Inside a Python loop, "
                "index it: ppl.sample(('x', i), ...), or use ppl.plate / ppl.scan.",
            )
        self.seen[address] = span

    # -- layers --------------------------------------------------------------------
    @contextlib.contextmanager
    def layered(self, layer: "Layer"):
        """Run the block with ``layer`` over this handler: each site and loop passes through it
        first (the innermost layer first), and reaches the handler only if it passes it on."""
        self.layers.append(layer)
        try:
            yield layer
        finally:
            self.layers.pop()

    def handle_site(self, site: Site, depth: int | None = None) -> Any:
        """``site`` through the layers below ``depth`` (all of them by default), then :meth:`site`."""
        if depth is None:  # ppl's own work: no user index operations to check in the eager engine
            with jc.without_eager_hook():
                return self.handle_site(site, len(self.layers))
        if depth == 0:
            return self.site(site)
        return self.layers[depth - 1].site(site, lambda s: self.handle_site(s, depth - 1))

    def handle_scan(self, step, init, xs, length, reverse, span, depth: int | None = None):
        """A loop through the layers below ``depth``, then :meth:`run_scan`."""
        depth = len(self.layers) if depth is None else depth
        if depth == 0:
            return self.run_scan(step, init, xs, length, reverse, span)

        def below(step, init, xs, length, reverse, span):
            return self.handle_scan(step, init, xs, length, reverse, span, depth - 1)

        return self.layers[depth - 1].scan(step, init, xs, length, reverse, span, below)

    # -- the effects -----------------------------------------------------------
    def site(self, site: Site) -> Any:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} does not handle random choices")

    def run_scan(self, step, init, xs, length, reverse, span):
        """Eager meaning of ``scan``: a Python loop; sites get the step as an index."""
        n = scan_length(xs, length, span)
        carry = init
        ys = []
        steps = range(n - 1, -1, -1) if reverse else range(n)
        for i in steps:
            x = None if xs is None else jax.tree.map(lambda a: a[i], xs)
            self.indices.append(i)
            try:
                carry, y = step(carry, x)
            finally:
                self.indices.pop()
            ys.append(y)
        if reverse:
            ys.reverse()
        if n == 0:
            return carry, None
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *ys)
        return carry, stacked

    def run_cond(self, pred, true_fn, false_fn, operands, span):
        """Eager meaning of ``cond``: evaluate the predicate, run one branch."""
        return true_fn(*operands) if bool(pred) else false_fn(*operands)

    @contextlib.contextmanager
    def enter_scope(self, scope: list[str] | None):
        """Run with the addresses nested under ``scope`` instead of the current one (None: unchanged),
        outside any ``scan`` step (a memoised value belongs to no step)."""
        if scope is None:
            yield
            return
        saved = self.scope, self._call_counts, self.indices
        counts = self.__dict__.setdefault("_memo_counts", {}).setdefault(tuple(scope), {})
        self.scope, self._call_counts, self.indices = list(scope), [counts], []
        try:
            yield
        finally:
            self.scope, self._call_counts, self.indices = saved

    @contextlib.contextmanager
    def enter_call(self, name: str):
        counts = self._call_counts[-1]
        n = counts.get(name, 0)
        counts[name] = n + 1
        self.scope.append(name if n == 0 else f"{name}_{n}")
        self._call_counts.append({})
        try:
            yield
        finally:
            self._call_counts.pop()
            self.scope.pop()

    @contextlib.contextmanager
    def enter_plate(self, name: str, size: int, span: Span | None, *, shard: bool | str | None = None,
                    subsampled_from: int | None = None):
        """Run the block inside plate ``name`` of ``size`` rows; ``subsampled_from``: the number of rows
        they are drawn from (each observation inside then weighs ``subsampled_from / size``); ``shard``:
        as ``plate(shard=...)``, for handlers that keep the program's structure (the tracer)."""
        dim = -1 - len(self.plates)
        scale = 1.0 if subsampled_from is None else subsampled_from / int(size)
        self.plates.append(PlateFrame(name, int(size), dim, scale))
        try:
            yield self.plates[-1]
        finally:
            self.plates.pop()


def scan_length(xs, length, span) -> int:
    leaves = jax.tree.leaves(xs)
    if leaves:
        n = int(np.shape(leaves[0])[0])
        if length is not None and int(length) != n:
            raise ShapeError(f"scan was given length={length} but xs have {n} steps", span=span)
        return n
    if length is None:
        raise ShapeError("scan needs xs or length=", span=span)
    return int(length)


def _require_handler(what: str) -> Handler:
    h = _current.get()
    if h is None:
        raise ModelError(
            f"ppl.{what} was called outside a model run",
            span=caller_span(),
            hint="Decorate the function with @ppl.model and run it with model.simulate(key, ...) "
            "or ppl.infer(model, ...).",
        )
    return h


# ---------------------------------------------------------------------------
# Plates: broadcasting a site to the enclosing plates


def plate_batch_shape(batch_shape: tuple[int, ...], plates, address: str, span) -> tuple[int, ...]:
    """The batch shape a site takes inside ``plates`` (NumPyro's rule: plate k owns dim -1-k)."""
    if not plates:
        return tuple(batch_shape)
    need = max(-f.dim for f in plates)
    shape = [1] * max(0, need - len(batch_shape)) + list(batch_shape)
    for f in plates:
        have = shape[f.dim]
        if have not in (1, f.size):
            raise ShapeError(
                f"the site '{address}' has size {have} in dimension {f.dim}, "
                f"but it is inside plate '{f.name}' of size {f.size}",
                span=span,
                hint="Make the distribution's parameters broadcast with the plate size.",
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
    h = _require_handler("sample")
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
    h = _require_handler("observe")
    span = span or caller_span()
    address = h.address(name)
    _check_dist(dist, "observe", address, span)
    for f in h.plates:
        rows = jnp.shape(value)[f.dim] if f.scale != 1.0 and jnp.ndim(value) >= -f.dim else None
        if rows is not None and rows != f.size:
            raise ShapeError(
                f"the observed value at '{address}' has {rows} rows, but plate '{f.name}' subsamples "
                f"{f.size} of them", span=span,
                hint=f"Index the data with the plate's rows: with ppl.plate('{f.name}', ..., subsample_size="
                     f"{f.size}) as idx: ppl.observe(..., y[idx]).")
    dist = _in_plates(dist, h.plates, address, span)
    h.claim(address, span)
    h.handle_site(Site("observe", address, dist, value, span, tuple(h.plates)))
    scale = float(np.prod([f.scale for f in h.plates])) if h.plates else 1.0
    if scale != 1.0:  # a subsampled plate: the rows seen stand for all rows (size / subsample_size each)
        factor(_scaled_name(name), (scale - 1.0) * jnp.sum(dist.log_density(value)), span=span)
    return value


def _scaled_name(name: Any) -> Any:
    """The address of the factor that scales a subsampled observation."""
    if isinstance(name, tuple):
        return (f"{name[0]}_subsample_scale",) + tuple(name[1:])
    return f"{name}_subsample_scale"


def factor(name: Any, log_weight, *, span: Span | None = None):
    """Multiply the program's weight by ``exp(log_weight)`` (summed over its elements)."""
    h = _require_handler("factor")
    span = span or caller_span()
    address = h.address(name)
    h.claim(address, span)
    h.handle_site(Site("factor", address, None, log_weight, span, tuple(h.plates)))


def deterministic(name: Any, value, *, span: Span | None = None):
    """Record a derived quantity in the trace (no effect on the weight); returns it."""
    h = _require_handler("deterministic")
    span = span or caller_span()
    address = h.address(name)
    h.claim(address, span)
    return h.handle_site(Site("deterministic", address, None, value, span, tuple(h.plates)))


def param(name: Any, init, *, constraint=None, span: Span | None = None):
    """A learnable value named ``name``, starting at ``init`` (a value inside ``constraint``'s set;
    real numbers by default). Variational inference optimises it, in unconstrained coordinates
    through the constraint's bijector; everywhere else (simulate, MCMC, ...) it is ``init``.
    Returns the value."""
    h = _require_handler("param")
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
    h = _require_handler("plate")
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
        size = int(size)
    except Exception:
        raise ShapeError(
            f"plate '{name}' needs a fixed integer size, but got {size!r}",
            span=span,
            hint="A plate's size must not depend on a random value.",
        ) from None
    if shard is not None and not isinstance(shard, (bool, str)):  # False is kept: never split automatically
        raise ModelError(f"plate '{name}' was given shard={shard!r}: use shard=True or the name of a "
                         "mesh axis", span=span)
    if subsample_size is not None and subsample_size != size:
        with _subsampled(h, name, size, subsample_size, span, shard) as idx:
            yield idx
        return
    with h.enter_plate(name, size, span, shard=shard) as frame:
        yield frame


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
    h = _require_handler("scan")
    span = span or caller_span()
    return h.handle_scan(step, init, xs, length, reverse, span)


def cond(pred, true_fn: Callable, false_fn: Callable, *operands, span: Span | None = None):
    """A branch on a (possibly random) boolean, with ``jax.lax.cond``'s signature."""
    h = _require_handler("cond")
    span = span or caller_span()
    return h.run_cond(pred, true_fn, false_fn, operands, span)


def call(name: str, fn: Callable, *args, **kwargs):
    """Run ``fn`` with its addresses nested under ``name`` (a sub-model call)."""
    h = _require_handler("call")
    with h.enter_call(name):
        return fn(*args, **kwargs)


def mem(fn: Callable, name: str | None = None, *, nest: bool = True) -> Callable:
    """Stochastic memoisation: a random function whose value at each argument is drawn once.

    The memo table belongs to the current run of the model (it is created afresh
    by each run), so ``mem`` is a pure transformation of the program's meaning.
    Random choices made inside ``fn(*args)`` are nested under ``name[args]``
    (``strength[alice]/...``), where ``name`` is given or the function's name
    (``mem`` for a Python lambda), in the scope where ``mem`` was called: the
    address of a memoised value does not depend on where it is first asked for.
    ``nest=False``: ``fn`` names its own random choice (``memo_label(name, args)``).
    """
    fname = name or getattr(fn, "__name__", None) or "mem"
    if fname == "<lambda>":
        fname = "mem"
    creator = _current.get()
    home = list(creator.scope) if creator is not None else None

    def memoised(*args):
        h = _require_handler("mem")
        table = h.memo.setdefault(id(memoised), {})
        key = tuple(_memo_key(a) for a in args)
        if key not in table and getattr(h, "branch_depth", 0) > 0:
            raise NeedsDynamic(
                f"the memoised function '{fname}' is first called inside a branch on a random value "
                "(its value must exist whichever branch runs)", caller_span())
        if key not in table:
            with h.enter_scope(home if h is creator else None):
                if nest:
                    with h.enter_call(memo_label(fname, args)):
                        table[key] = fn(*args)
                else:
                    table[key] = fn(*args)
        return table[key]

    memoised.__name__ = f"mem({fname})"
    return memoised


def memo_label(name: str, args: tuple) -> str:
    """``strength[alice]``: the name of a memoised function at these arguments."""
    return f"{name}[{','.join(str(_memo_key(a)) for a in args)}]"


def _memo_key(a):
    from ppl.stdlib.jax_compat import is_tracer

    if is_tracer(a):
        raise MemoOnTracedValue()
    if isinstance(a, (str, int, bool, float, tuple)):
        return a
    arr = np.asarray(a)
    if arr.shape == ():
        return arr.item()
    return tuple(arr.ravel().tolist())


class MemoOnTracedValue(Exception):
    """Signal: a memoised function was called on a value known only at run time."""


class NeedsDynamic(Exception):
    """Signal from a front end: this program needs concrete values where it has traced ones
    (recursion on a random condition, a loop bound that is random, ...). ``span`` points at
    the user's text; tracing stops and the program runs in the eager engine."""

    def __init__(self, reason: str, span: Span | None):
        super().__init__(reason)
        self.reason = reason
        self.span = span
