"""Modes: what the compiled interpreter does at a random choice.

A mode is an object with one method,
``sample(stmt, dist, inputs, key) -> (value, term, given)``: the value the
site ``stmt`` takes, the log-density term the run adds to ``log_prior`` for
it, and whether the site counts as *given* (its term also goes to
``log_given``). ``inputs`` are the run's values by address, ``key`` its PRNG
key (``None`` unless the mode sets ``needs_key``). Observations, factors and
deterministic code are the interpreter's; a mode sees only random choices.

The reusable modes, each with its law (``p`` the model's density, ``x_a`` the
value of site ``a``, ``T_a`` the bijection from R^k onto the support of ``a``):

- :class:`Simulate`: ``x_a ~ p(x_a | parents)``; term ``log p(x_a | parents)``.
- :class:`Given`: ``x_a = inputs[a]``; term ``log p(x_a | parents)``, given.
- :class:`Generate`: :class:`Given` where ``a`` is in ``inputs``, :class:`Simulate` elsewhere.
- :class:`Unconstrained`: for ``a`` in ``names`` (all sites when ``names`` is None),
  ``x_a = T_a(inputs[a])``; term ``log p(x_a | parents) + log |det J_{T_a}(inputs[a])|``,
  given; every other site as the mode ``rest`` says.
- :class:`Drawn`: :class:`Given` where supplied, else a prior draw (one key per site, or
  the run's key itself when the block has a single random choice).
- :class:`Inverted`: :class:`Given`, recording ``T_a^{-1}(x_a)`` for ``a`` in ``names``.
- :class:`Regenerate`: inputs ``(x_a, mask_a, fresh_a)``; masked or fresh sites are redrawn
  from ``p(. | parents)``, the others keep ``x_a``; the term counts only kept sites.
- :class:`Kept`: inputs ``(x_a, mask_a, gone_a)``; ``x_a`` kept; the term counts only the
  sites neither masked nor gone. (Regenerate then Kept give the two sides of a
  resimulation MH ratio: see :func:`~.gfi.regenerate`.)
- :class:`ShapeProbe`: trace-time only; records each site's unconstrained shape.
- :class:`SupportProbe`: records each discrete site's finite support (the values every
  element can take), or why it has none; the run's value at a site is its first value, traced
  under :func:`probe_supports` so that no later support is read at that one value.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from ppl.semantics import ir
import numpy as np

from ppl.semantics.compile.interpreter import address_hash, run, sum_terms
from ppl.stdlib.errors import AddressError, ModelError

__all__ = ["Mode", "Simulate", "Given", "Generate", "Unconstrained", "Drawn", "Inverted", "Regenerate", "Kept",
           "ShapeProbe", "SupportProbe", "SupportProblem", "probe_supports"]


class Mode(abc.ABC):
    """Decides a latent site's value. Returns ``(value, log-density term, given?)``."""

    needs_key = False
    #: the mode keeps nothing of its own from one site to the next, so the interpreter may run a
    #: loop's steps side by side (``vmap``); each class says so itself (a subclass that records
    #: what it sees on itself would record batched values), see :meth:`vectorizes`
    vectorizable = False

    @abc.abstractmethod
    def sample(self, stmt: ir.Sample, dist, inputs: dict, key):
        """The value of the latent site ``stmt`` drawn from ``dist``."""

    def vectorizes(self) -> bool:
        """Whether runs in this mode may take a loop's steps side by side: only where the mode's
        own class (not a parent's) declares ``vectorizable``."""
        return bool(type(self).__dict__.get("vectorizable", False))


def _bijection(dist):
    from ppl.stdlib.bijectors import biject_to

    return biject_to(dist.support)


class Simulate(Mode):
    """``x_a ~ p(x_a | parents)``, with the site's key the run's key folded with its address."""

    vectorizable = True

    needs_key = True

    def sample(self, stmt, dist, inputs, key):
        value = dist.sample(jax.random.fold_in(key, address_hash(stmt.address)))
        return value, sum_terms(dist.log_density(value)), False


class Given(Mode):
    """``x_a = inputs[a]`` (an :class:`AddressError` where no value was given)."""

    vectorizable = True

    def sample(self, stmt, dist, inputs, key):
        if stmt.address not in inputs:
            raise AddressError(
                f"no value was given for the random choice '{stmt.address}'",
                span=stmt.span,
                hint=f"Pass a value for every latent site: {stmt.address!r} is missing.",
            )
        value = jnp.asarray(inputs[stmt.address], dtype=stmt.out.dtype)
        return value, sum_terms(dist.log_density(value)), True


class Generate(Mode):
    """:class:`Given` for the sites in ``inputs``, :class:`Simulate` for the rest."""

    vectorizable = True

    needs_key = True

    def sample(self, stmt, dist, inputs, key):
        if stmt.address in inputs:
            return Given().sample(stmt, dist, inputs, key)
        return Simulate().sample(stmt, dist, inputs, key)


class Unconstrained(Mode):
    """The sites in ``names`` (every site when None) at ``T(inputs[a])``, log-Jacobian included;
    the others as ``rest`` decides."""

    vectorizable = True

    def vectorizes(self) -> bool:
        return self.rest is None or self.rest.vectorizes()

    def __init__(self, names: frozenset | None = None, rest: Mode | None = None):
        self.names = names
        self.rest = rest
        self.needs_key = bool(rest is not None and rest.needs_key)

    def sample(self, stmt, dist, inputs, key):
        if self.names is not None and stmt.address not in self.names:
            return (self.rest or Given()).sample(stmt, dist, inputs, key)
        if getattr(dist, "is_discrete", False):
            raise ModelError(
                f"the random choice '{stmt.address}' is discrete, and this method needs every latent "
                "site to be continuous",
                span=stmt.span,
                hint="Use Enumerate, Importance or SMC, or a method that handles discrete sites.",
            )
        bij = _bijection(dist)
        u = inputs[stmt.address]
        x = bij.forward(u)
        return x, sum_terms(dist.log_density(x)) + sum_terms(bij.log_det_jacobian(u)), True


class Drawn(Mode):
    """Given values where supplied (a proposal's), otherwise a prior draw.

    With ``single`` (one random choice in the block) the run's key is used as it
    is; otherwise each site's key is the key folded with its address.
    """

    vectorizable = True

    needs_key = True

    def __init__(self, single: bool = False):
        self.single = single

    def sample(self, stmt, dist, inputs, key):
        if stmt.address in inputs:
            return Given().sample(stmt, dist, inputs, key)
        site_key = key if self.single else jax.random.fold_in(key, address_hash(stmt.address))
        value = dist.sample(site_key)
        return value, sum_terms(dist.log_density(value)), False


class Inverted(Mode):
    """:class:`Given`; records the unconstrained coordinates ``T^{-1}(x_a)`` of the sites in ``names``
    (read them from ``.u`` after the run)."""

    def __init__(self, names: frozenset):
        self.names = names
        self.u: dict = {}

    def sample(self, stmt, dist, inputs, key):
        value, lp, given = Given().sample(stmt, dist, inputs, key)
        if stmt.address in self.names:
            self.u[stmt.address] = _bijection(dist).inverse(value)
        return value, lp, given


class Regenerate(Mode):
    """Inputs ``(value, mask, fresh)``: masked or fresh sites are drawn from the prior; the
    term counts only the sites kept (not masked, not fresh)."""

    vectorizable = True

    needs_key = True

    def sample(self, stmt, dist, inputs, key):
        value, mask, fresh = inputs[stmt.address]
        value = jnp.asarray(value, stmt.out.dtype)
        draw = jnp.asarray(dist.sample(jax.random.fold_in(key, address_hash(stmt.address))), stmt.out.dtype)
        redraw = jnp.logical_or(mask, fresh)
        new = jnp.where(redraw, draw, value)
        lp = sum_terms(dist.log_density(new))
        return new, jnp.where(redraw, 0.0, lp), True


class Kept(Mode):
    """Inputs ``(value, mask, gone)``: the values are kept; the term counts only the sites
    neither masked nor gone (absent after a move)."""

    vectorizable = True

    def sample(self, stmt, dist, inputs, key):
        value, mask, gone = inputs[stmt.address]
        value = jnp.asarray(value, stmt.out.dtype)
        lp = sum_terms(dist.log_density(value))
        return value, jnp.where(jnp.logical_or(mask, gone), 0.0, lp), True


class ShapeProbe(Mode):
    """Trace-time only: records each site's unconstrained shape (None for discrete sites)."""

    def __init__(self):
        self.shapes: dict[str, tuple | None] = {}

    def sample(self, stmt, dist, inputs, key):
        shape = tuple(stmt.out.shape)
        if getattr(dist, "is_discrete", False):
            ushape = None
        else:
            ushape = tuple(_bijection(dist).unconstrained_shape(shape))
        self.shapes[stmt.address] = ushape
        return jnp.zeros(shape, stmt.out.dtype), jnp.zeros(()), False


class SupportProblem(NamedTuple):
    """Why a discrete site has no fixed finite support (see :class:`SupportProbe`)."""

    why: str  # "continuous", "infinite", "unknown" or "differ"
    address: str
    dist_name: str
    span: Any
    detail: str = ""


class SupportProbe(Mode):
    """Records each discrete site's support: ``supports[a]`` is the array of the values one
    element can take (leading axis: the values), the same for every element and every step.

    Where a site has no such support, ``problems[a]`` is a :class:`SupportProblem` whose ``why``
    is ``"continuous"`` (the site is not discrete), ``"infinite"`` (no finite support and no
    ``bound``; with a bound, the first ``bound`` values are taken), ``"unknown"`` (the support
    depends on values known only when the program runs) or ``"differ"`` (elements or steps of the
    site have different supports). Each method decides which problems it can live with and says
    them in its own words: ``fatal(problem)`` may return an error, raised at once (before the run
    goes on with a stand-in value).
    """

    def __init__(self, bound: int | None = None, fatal: Callable[[SupportProblem], Exception | None] | None = None):
        self.bound = bound
        self.fatal = fatal
        self.supports: dict[str, np.ndarray] = {}
        self.problems: dict[str, SupportProblem] = {}
        self.bounded: set[str] = set()  # sites with infinitely many values, cut at ``bound``
        self.taint = None  # set by probe_supports: a traced zero added to every stand-in value

    def _stand_in(self, stmt, value):
        value = jnp.asarray(value, stmt.out.dtype)
        if self.taint is not None:
            value = value + self.taint.astype(stmt.out.dtype)
        return jnp.broadcast_to(value, tuple(stmt.out.shape))

    def _problem(self, stmt, dist, why: str, detail: str = ""):
        problem = SupportProblem(why, stmt.address, type(dist).__name__, stmt.span, detail)
        error = self.fatal(problem) if self.fatal is not None else None
        if error is not None:
            raise error
        self.problems.setdefault(stmt.address, problem)
        return self._stand_in(stmt, 0), jnp.zeros(()), False

    def sample(self, stmt, dist, inputs, key):
        if not getattr(dist, "is_discrete", False):
            return self._problem(stmt, dist, "continuous")
        finite = getattr(dist, "has_enumerate_support", False)
        if not finite and self.bound is None:
            return self._problem(stmt, dist, "infinite")
        if not finite:
            self.bounded.add(stmt.address)
        try:
            values = np.asarray(dist.enumerate_support(None if finite else self.bound))
        except Exception as err:  # noqa: BLE001 - e.g. a total_count known only at run time
            return self._problem(stmt, dist, "unknown", getattr(err, "message", None) or str(err))
        k = values.shape[0]
        flat = values.reshape(k, -1)
        if flat.shape[1] and not np.all(flat == flat[:, :1]):
            return self._problem(stmt, dist, "differ", "its elements")
        earlier = self.supports.get(stmt.address)
        if earlier is not None and (earlier.shape != values.shape or not np.array_equal(earlier, values)):
            return self._problem(stmt, dist, "differ", "its steps")
        self.supports[stmt.address] = values
        first = flat[0, 0] if flat.shape[1] else values[0]
        return self._stand_in(stmt, first), jnp.zeros(()), False


def probe_supports(program: ir.Program, probe: SupportProbe, args) -> None:
    """Run ``program`` on ``args`` in ``probe``, with every stand-in value traced.

    The probe runs eagerly (``jax.ensure_compile_time_eval``), so a support computed from the data
    is concrete; but each site's stand-in value is marked as unknown (a traced zero is added to
    it), so the support of a later site that depends on it (``Binomial(2 + 2 * x)`` after
    ``x ~ Bernoulli``) cannot be computed from the stand-in and is reported ``"unknown"``, never
    taken at the stand-in's value alone (which would lose the other values' outcomes).
    """
    def go(taint):
        probe.taint = taint
        try:
            with jax.ensure_compile_time_eval():
                run(program, probe, args)
        finally:
            probe.taint = None
        return 0

    jax.eval_shape(go, jax.ShapeDtypeStruct((), jnp.int32))
