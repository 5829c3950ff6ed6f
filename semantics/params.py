"""Learnable parameters (``ppl.param``) in the IR.

A parameter is a :class:`~ppl.semantics.ir.Prim` whose operation is a
:class:`ParamOp`: ``value = param[address](init)``. Its law::

    param[a](init) == values[a]   inside ``with bound(values)`` when ``a in values``
                   == init        otherwise

so every engine that evaluates primitives (compiled or eager) gives a
parameter its initial value, and an optimiser (variational inference) binds
the current values for one run with :func:`bound`. Values are in the
parameter's own (constrained) space; ``constraint`` says which set that is.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ppl.semantics import ir

__all__ = ["ParamOp", "bound", "recording_inits", "params_of", "ParamInfo"]

_VALUES: ContextVar[dict | None] = ContextVar("ppl_param_values", default=None)
_INITS: ContextVar[dict | None] = ContextVar("ppl_param_inits", default=None)


class ParamOp:
    """The operation of a parameter site (an object with ``bind``, as ``ir.Prim`` allows)."""

    multiple_results = True

    def __init__(self, address: str, constraint: Any):
        self.address = address
        self.constraint = constraint
        self.name = f"param[{address}]"

    def get_bind_params(self, params):
        return dict(params)

    def bind(self, init, **_):
        inits = _INITS.get()
        if inits is not None:
            inits[self.address] = init
        values = _VALUES.get()
        if values is not None and self.address in values:
            return [values[self.address]]
        return [init]

    def __repr__(self):
        return self.name


@contextlib.contextmanager
def bound(values: dict):
    """Run with the parameters in ``values`` (address -> constrained value) bound."""
    token = _VALUES.set(dict(values))
    try:
        yield
    finally:
        _VALUES.reset(token)


@contextlib.contextmanager
def recording_inits():
    """Within: each parameter evaluated records its initial value in the yielded dict."""
    table: dict = {}
    token = _INITS.set(table)
    try:
        yield table
    finally:
        _INITS.reset(token)


@dataclass(frozen=True)
class ParamInfo:
    address: str
    constraint: Any  # None: the real numbers
    init: Any  # the initial (constrained) value, where it is a literal; else None
    shape: tuple
    span: Any
    in_loop: bool


def params_of(program: ir.Program) -> dict[str, ParamInfo]:
    """The parameters of a program, by address."""
    out: dict[str, ParamInfo] = {}
    _collect(program.block.stmts, out, False, program)
    return out


def _collect(stmts, out, in_loop, program):
    consts = dict(zip(program.block.params, program.consts))
    for s in stmts:
        if isinstance(s, ir.Prim) and isinstance(s.op, ParamOp):
            arg = s.args[0]
            init = arg.value if isinstance(arg, ir.Lit) else consts.get(arg)
            out[s.op.address] = ParamInfo(s.op.address, s.op.constraint, init, tuple(s.outs[0].shape), s.span,
                                          in_loop)
        elif isinstance(s, (ir.Plate, ir.Call)):
            _collect(s.stmts, out, in_loop, program)
        elif isinstance(s, ir.If):
            for b in s.branches:
                _collect(b.stmts, out, in_loop, program)
        elif isinstance(s, ir.For):
            _collect(s.body.stmts, out, True, program)
