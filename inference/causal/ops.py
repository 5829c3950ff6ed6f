"""New deterministic mechanisms as IR statements.

Surgery and the twin-world construction put new arithmetic into a program: a
soft intervention's Python function, the inverse-CDF coupling of a site
across two worlds. Each becomes one ``ir.Prim`` whose operation is a
:class:`Mechanism` (an object with ``bind``, as ``ir.Prim`` allows), so the
result is still an ordinary IR program that every engine runs and compiles.
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from ppl.semantics import ir

__all__ = ["Mechanism", "emit", "lit"]


class Mechanism:
    """An operation computing ``fn(*args)`` (a pytree of arrays, flattened to the outputs)."""

    multiple_results = True

    def __init__(self, fn: Callable, name: str):
        self.fn = fn
        self.name = name
        self._compiled = jax.jit(fn)  # run eagerly (the eager engine, shape probes): one program, not op by op

    def get_bind_params(self, params):
        return dict(params)

    def bind(self, *args, **_):
        return list(jax.tree.leaves(self._compiled(*args)))

    def __repr__(self) -> str:
        return self.name


def _abstract(atom):
    if isinstance(atom, ir.Var):
        return jax.ShapeDtypeStruct(atom.shape, atom.dtype)
    value = np.asarray(atom.value)
    return jax.ShapeDtypeStruct(value.shape, value.dtype)


def emit(fn: Callable, args, name: str, span) -> tuple[ir.Prim, tuple[ir.Var, ...]]:
    """The statement ``outs = fn(*args)`` and its output variables (shapes found by ``jax.eval_shape``).

    Literal arguments are passed to ``fn`` as the concrete values they are, never as traced ones, so
    what needs a number at trace time (a Binomial's count, to enumerate its support) has it."""
    args = tuple(args)
    fixed = {i: np.asarray(a.value) for i, a in enumerate(args) if isinstance(a, ir.Lit)}
    moving = tuple(a for a in args if not isinstance(a, ir.Lit))

    def call(*xs):
        rest = iter(xs)
        return fn(*[fixed[i] if i in fixed else next(rest) for i in range(len(args))])

    shapes = jax.tree.leaves(jax.eval_shape(call, *[_abstract(a) for a in moving]))
    outs = tuple(ir.Var(tuple(s.shape), s.dtype) for s in shapes)
    return ir.Prim(span, outs, Mechanism(call, name), {}, moving), outs


def lit(value, like: ir.Var | None = None) -> ir.Lit:
    """A literal, cast to the dtype and broadcast to the shape of ``like`` where given."""
    value = np.asarray(value)
    if like is not None:
        value = np.broadcast_to(value.astype(np.dtype(like.dtype)), like.shape)
    return ir.Lit(np.array(value))
