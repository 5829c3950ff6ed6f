"""Handlers: what runs a model decides what each effect does.

A :class:`Site` is one effect a model performs; a :class:`Handler` gives it its meaning
(the tracer emits IR, the eager engine samples, scores, replays or suspends), with eager
defaults for the control effects (a Python loop for ``scan``, a Python ``if`` for ``cond``);
a :class:`Layer` reinterprets some effects over a running handler. The handler in force is
held in a ``ContextVar`` and installed only for one run (``with handler: ...``).
The effects themselves, which models call, are in ``semantics.effects``.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ppl.stdlib import jax_compat as jc
from ppl.stdlib.distributions.base import deferred_validation
from ppl.stdlib.errors import AddressError, ModelError, ShapeError, Span
from ppl.semantics.user_spans import caller_span


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


# ---------------------------------------------------------------------------
# Handlers


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


def require_handler(what: str) -> Handler:
    h = _current.get()
    if h is None:
        raise ModelError(
            f"ppl.{what} was called outside a model run",
            span=caller_span(),
            hint="Decorate the function with @ppl.model and run it with model.simulate(key, ...) "
            "or ppl.infer(model, ...).",
        )
    return h


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
