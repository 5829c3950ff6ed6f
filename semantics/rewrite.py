"""Rewriting a program's sites: the IR -> IR plumbing that transformations share.

:func:`rewrite_sites` walks a program and hands each site statement named in
``values`` to a rule, with the atom that holds the site's given value where the
statement runs: a literal at the top level and in plates, and, inside a loop, a
new parameter of the loop's body that receives the value's step slice (the
stacked value becomes one more ``xs`` input of the loop). The rule returns the
replacement statement (or None to drop it) and, for a statement that binds a
variable, the atom its readers see instead. Every other statement is kept, with
its atoms substituted.

Law: the rewritten program reads each site's given value exactly where the
original read the site's variable; nothing else changes.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from ppl.semantics import ir

__all__ = ["rewrite_sites", "SiteRule"]

#: ``rule(stmt, value_atom) -> (replacement or None, atom the statement's readers see or None)``
SiteRule = Callable[[ir.Stmt, ir.Atom], tuple]

_SITES = (ir.Sample, ir.Observe, ir.Deterministic, ir.Factor)


def rewrite_sites(program: ir.Program, values: dict, rule: SiteRule) -> ir.Program:
    """``program`` with each site named in ``values`` (address -> stacked value) rewritten by ``rule``."""
    walker = _Walker(rule)
    block = walker.block(program.block, {a: ir.Lit(np.asarray(v)) for a, v in values.items()})
    return dataclasses.replace(program, block=block)


class _Walker:
    def __init__(self, rule: SiteRule):
        self.rule = rule
        self.env: dict = {}  # Var -> the atom that replaces it

    def atom(self, a):
        return self.env.get(a, a) if isinstance(a, ir.Var) else a

    def atoms(self, xs):
        return tuple(self.atom(a) for a in xs)

    def block(self, block: ir.Block, here: dict) -> ir.Block:
        return dataclasses.replace(block, stmts=self.stmts(block.stmts, here),
                                   returns=self.atoms(block.returns))

    def stmts(self, stmts, here):
        out = []
        for s in stmts:
            t = self.stmt(s, here)
            if t is not None:
                out.append(t)
        return tuple(out)

    def stmt(self, s, here):
        s = self.substitute(s, here)
        address = getattr(s, "address", None)
        if isinstance(s, _SITES) and address in here:
            new, seen_as = self.rule(s, here[address])
            if seen_as is not None and getattr(s, "out", None) is not None:
                self.env[s.out] = seen_as
            return new
        return s

    def substitute(self, s, here):
        if isinstance(s, (ir.Sample, ir.Prim)):
            return dataclasses.replace(s, args=self.atoms(s.args))
        if isinstance(s, ir.Observe):
            return dataclasses.replace(s, args=self.atoms(s.args), value=self.atom(s.value))
        if isinstance(s, ir.Deterministic):
            return dataclasses.replace(s, value=self.atom(s.value))
        if isinstance(s, ir.Factor):
            return dataclasses.replace(s, log_weight=self.atom(s.log_weight))
        if isinstance(s, (ir.Plate, ir.Call)):
            return dataclasses.replace(s, stmts=self.stmts(s.stmts, here))
        if isinstance(s, ir.If):
            return dataclasses.replace(s, index=self.atom(s.index), args=self.atoms(s.args),
                                       branches=tuple(self.block(b, here) for b in s.branches))
        if isinstance(s, ir.For):
            return self.loop(s, here)
        if isinstance(s, ir.Lambda):
            return dataclasses.replace(s, captured=self.atoms(s.captured), body=self.block(s.body, here))
        raise TypeError(f"unknown IR statement {type(s).__name__}")  # pragma: no cover

    def loop(self, s: ir.For, here):
        inside = sorted({t.address for t in ir.walk(s.body.stmts) if getattr(t, "address", None) in here})
        extra_args, extra_params = [], []
        step_here = dict(here)
        for a in inside:
            source = here[a]  # leading axis: this loop's steps (a literal, or an outer loop's slice)
            dtype = source.dtype if isinstance(source, ir.Var) else np.asarray(source.value).dtype
            param = ir.Var(tuple(source.shape[1:]), dtype)
            extra_args.append(source)
            extra_params.append(param)
            step_here[a] = param
        body = self.block(s.body, step_here)
        body = dataclasses.replace(body, params=body.params + tuple(extra_params))
        return dataclasses.replace(s, args=self.atoms(s.args) + tuple(extra_args), body=body)
