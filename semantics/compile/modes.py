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
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from ppl.semantics import ir
from ppl.semantics.compile.interpreter import address_hash, sum_terms
from ppl.stdlib.errors import AddressError, ModelError

__all__ = ["Mode", "Simulate", "Given", "Generate", "Unconstrained", "Drawn", "Inverted", "Regenerate", "Kept",
           "ShapeProbe"]


class Mode(abc.ABC):
    """Decides a latent site's value. Returns ``(value, log-density term, given?)``."""

    needs_key = False

    @abc.abstractmethod
    def sample(self, stmt: ir.Sample, dist, inputs: dict, key):
        """The value of the latent site ``stmt`` drawn from ``dist``."""


def _bijection(dist):
    from ppl.stdlib.bijectors import biject_to

    return biject_to(dist.support)


class Simulate(Mode):
    """``x_a ~ p(x_a | parents)``, with the site's key the run's key folded with its address."""

    needs_key = True

    def sample(self, stmt, dist, inputs, key):
        value = dist.sample(jax.random.fold_in(key, address_hash(stmt.address)))
        return value, sum_terms(dist.log_density(value)), False


class Given(Mode):
    """``x_a = inputs[a]`` (an :class:`AddressError` where no value was given)."""

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

    needs_key = True

    def sample(self, stmt, dist, inputs, key):
        if stmt.address in inputs:
            return Given().sample(stmt, dist, inputs, key)
        return Simulate().sample(stmt, dist, inputs, key)


class Unconstrained(Mode):
    """The sites in ``names`` (every site when None) at ``T(inputs[a])``, log-Jacobian included;
    the others as ``rest`` decides."""

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
