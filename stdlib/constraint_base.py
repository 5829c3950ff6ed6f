"""The interface every constraint has: the base class ``Constraint`` and the helpers the sets share.

A constraint is a small value (a JAX pytree) with

- ``event_dim``: how many trailing axes form one element (0 scalar, 1 vector, 2 matrix);
- ``is_discrete``: whether the set is countable;
- ``check(x)``: a boolean array, ``x``'s shape less its ``event_dim`` trailing axes,
  true where the element lies in the set (jittable; NaN is never in any set);
  ``check_now(x)`` is the same test in NumPy, for concrete values (parameter validation);
- ``feasible_like(x)``: a point of the set broadcastable against ``x`` (used to keep
  gradients finite where a value outside the set is masked);
- ``describe()``: the set in words, for error messages; ``repr`` is how to write it;
- ``same_set(other)`` / ``same_set_traced(other)``: whether two constraints are the same set
  (now, where the bounds are concrete; at run time, where one is traced).

The sets themselves are in ``constraints.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ppl.stdlib.jax_compat import is_tracer
from ppl.stdlib.leaf_fields import LeafFields

__all__ = ["Constraint", "format_concrete", "nan_unless"]


def format_concrete(x, max_elements: int) -> str:
    """A concrete value as a person would write it: a scalar as itself, a small array in
    full, a larger one by dtype and shape (the one formatter of bounds and parameters)."""
    a = np.asarray(x)
    if a.ndim == 0:
        return str(a[()])  # a NumPy scalar prints as typed: float32 0.3 as '0.3'
    if a.size <= max_elements:
        return np.array2string(a, separator=", ")
    return f"<array {a.dtype}{list(a.shape)}>"


def _fmt(x) -> str:
    """A bound as the user would write it; traced bounds are shown by shape."""
    if is_tracer(x):
        return f"<traced {jnp.shape(x)}>"
    return format_concrete(x, 6)


# The membership tests are written once against an array namespace ``xp``: ``jax.numpy``
# for ``check`` (jittable) and ``numpy`` for ``check_now`` (concrete values, no compilation).


def _all_last(xp, ok, n: int):
    """Reduce a boolean array over its last ``n`` axes."""
    return xp.all(ok, axis=tuple(range(-n, 0))) if n else ok


def _is_integer(xp, x):
    if xp.issubdtype(x.dtype, xp.integer) or x.dtype == xp.bool_:
        return xp.ones(x.shape, bool)
    return xp.isfinite(x) & (x == xp.round(x))


class Constraint(LeafFields):
    """A set of values; see the module docstring for the interface."""

    event_dim: int = 0
    is_discrete: bool = False
    _children: tuple[str, ...] = ()  # the names of the pytree leaves (bounds)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The broadcast shape of the bounds (``()`` for a constraint without bounds)."""
        return jnp.broadcast_shapes(*(jnp.shape(getattr(self, n)) for n in self._children)) if self._children else ()

    def check(self, x):
        """Membership of ``x``: a bool array over its batch axes (jittable)."""
        return self._check(jnp, jnp.asarray(x))

    def check_now(self, x) -> np.ndarray:
        """``check`` for a concrete ``x``, computed in NumPy (nothing to compile)."""
        return np.asarray(self._check(np, np.asarray(x)))

    def _check(self, xp, x):
        raise TypeError(f"{type(self).__name__} does not define _check")  # pragma: no cover

    def feasible_like(self, x):
        raise TypeError(f"{type(self).__name__} does not define feasible_like")  # pragma: no cover

    def describe(self) -> str:
        return repr(self)

    def __eq__(self, other):
        if type(self) is not type(other):
            return False
        if not self._children:
            return True
        try:
            return all(
                np.array_equal(np.asarray(getattr(self, n)), np.asarray(getattr(other, n))) for n in self._children
            )
        except (TypeError, jax.errors.TracerArrayConversionError):
            return self is other

    def __hash__(self):
        return hash(type(self))

    def same_set(self, other) -> bool | None:
        """Whether ``self`` and ``other`` are the same set, as far as can be told now: ``True``,
        ``False`` (provably different: another kind of set, or concrete bounds that differ), or
        ``None`` when a bound is traced (``same_set_traced`` answers at run time). Bounds are
        compared elementwise after broadcasting, so ``interval(0, 1)`` is the same set as
        ``interval(zeros(3), ones(3))``."""
        if type(self) is not type(other):
            return False
        undecided = False
        for name in self._children:
            a, b = getattr(self, name), getattr(other, name)
            if a is b:
                continue
            if is_tracer(a) or is_tracer(b):
                undecided = True
                continue
            try:
                if not np.all(np.asarray(a) == np.asarray(b)):
                    return False
            except ValueError:  # bounds of shapes that do not broadcast together
                return False
        return None if undecided else True

    def same_set_traced(self, other):
        """``same_set`` as a boolean array, traced when a bound is (for pairs ``same_set``
        could not decide): true when the kinds agree and every pair of bounds is equal."""
        if type(self) is not type(other):
            return jnp.asarray(False)
        ok = jnp.asarray(True)
        for name in self._children:
            ok = ok & jnp.all(jnp.asarray(getattr(self, name)) == jnp.asarray(getattr(other, name)))
        return ok


def nan_unless(ok, value):
    """``value`` where ``ok``, NaN elsewhere: a density at a point where it is not defined.

    Written as ``value + (0 if ok else NaN)`` rather than ``where(ok, value, NaN)``: the same value
    everywhere, but the gradient of ``value`` passes through unselected. Under ``where`` every
    gradient of the density waited on ``ok`` (the parameter-domain checks, reductions over whole
    arrays) and XLA could not fuse the backward pass across it: NUTS's gradient on a 50 x 20
    hierarchical model took 2.9x the time of the same density without it. Where ``ok`` is false
    the value is NaN either way, which every method treats as a point to reject."""
    return value + jnp.where(ok, 0.0, jnp.nan).astype(jnp.result_type(value))
