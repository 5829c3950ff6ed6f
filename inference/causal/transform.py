"""``do`` as a program transformation: IR -> IR surgery on a static program.

``do_program(program, {address: spec})`` returns the program after the
interventions, or ``None`` when one of them needs the model's own code (a
new mechanism given as a Python function, one step of a loop site, a name
the program does not make): ``Model.do`` then traces the model with the
surgery applied at run time (:mod:`.surgery`), which gives the same program.

What each intervention does to the statements (law, tested in
tests/test_surgery.py: the transformed program equals the traced one, and
both equal the truncated factorisation under exact enumeration):

- ``Sample x`` set to a value: the statement is removed and every use of
  its variable reads the value instead (a literal; inside a loop, the
  value's step slice, passed to the loop as one more ``xs`` input). No
  density term, no latent.
- ``Sample x`` given a distribution: the statement draws from the new
  distribution (its parameters are literals): the old parents are cut.
- ``Observe y`` set to a value: the statement is removed (no likelihood).
- ``Deterministic s`` set to a value: it records the value, and its
  readers see it.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ppl.inference.causal import surgery as S
from ppl.semantics import ir
from ppl.stdlib.errors import SupportError

__all__ = ["do_program"]


def do_program(program: ir.Program, table: dict) -> ir.Program | None:
    """``program`` after the interventions in ``table`` (address -> value or distribution), or None."""
    sites = program.sites
    specs = {}
    for address, spec in table.items():
        iv = S.parse(address, spec)
        info = sites.get(address)
        if iv.kind == "function" or info is None or info.kind not in ("sample", "observe", "deterministic"):
            return None
        if iv.kind == "dist" and info.kind != "sample":
            return None
        if iv.kind == "value":
            value = np.asarray(spec)
            if value.shape != tuple(info.stacked_shape):
                if info.loop_lengths:
                    return None  # the traced path reports the shape problem
                try:
                    value = np.broadcast_to(value, info.stacked_shape)
                except ValueError:
                    return None
            if info.kind == "sample":
                _check_static_support(info, value)
            dtype = info.dtype if info.dtype is not None else value.dtype
            specs[address] = ("value", np.asarray(value, dtype=dtype))
        else:
            specs[address] = ("dist", iv.payload)
    rewrite = _Rewrite(specs)
    block = rewrite.block(program.block, {a: ir.Lit(v) for a, (k, v) in specs.items() if k == "value"})
    return dataclasses.replace(program, block=block)


def _check_static_support(info: ir.SiteInfo, value):
    """The support check where the support does not depend on the parameters (Bernoulli, Poisson, ...)."""
    support = getattr(info.dist_type, "__dict__", {}).get("support")
    if support is None or isinstance(support, property) or not hasattr(support, "check_now"):
        return
    try:
        ok = support.check_now(value)
    except Exception:
        return
    if not np.all(ok):
        raise SupportError(
            f"do() sets '{info.address}' to {value.tolist()!r}, which is outside the support of its distribution "
            f"{info.dist_type.__name__} ({support})", span=info.span, hint="Intervene with a value the site could take.")


class _Rewrite:
    def __init__(self, specs):
        self.specs = specs
        self.env: dict = {}  # Var -> the atom that replaces it

    def atom(self, a):
        return self.env.get(a, a) if isinstance(a, ir.Var) else a

    def atoms(self, xs):
        return tuple(self.atom(a) for a in xs)

    def block(self, block: ir.Block, values: dict) -> ir.Block:
        stmts = []
        for s in block.stmts:
            out = self.stmt(s, values)
            if out is not None:
                stmts.append(out)
        return dataclasses.replace(block, stmts=tuple(stmts), returns=self.atoms(block.returns))

    def stmts(self, stmts, values):
        return tuple(t for t in (self.stmt(s, values) for s in stmts) if t is not None)

    def stmt(self, s, values):
        spec = self.specs.get(getattr(s, "address", None)) if isinstance(
            s, (ir.Sample, ir.Observe, ir.Deterministic)) else None
        if isinstance(s, ir.Sample):
            if spec is not None and spec[0] == "value":
                self.env[s.out] = values[s.address]
                return None
            if spec is not None:  # a new distribution
                new = spec[1]
                event = tuple(new.event_shape)
                batch = tuple(s.out.shape[: len(s.out.shape) - len(event)])
                if tuple(new.batch_shape) != batch:
                    new = new.expand(batch)
                leaves, treedef = jax.tree.flatten(new)
                return dataclasses.replace(s, dist_type=type(new), treedef=treedef,
                                           args=tuple(ir.Lit(np.asarray(x)) for x in leaves))
            return dataclasses.replace(s, args=self.atoms(s.args))
        if isinstance(s, ir.Observe):
            if spec is not None:
                return None
            return dataclasses.replace(s, args=self.atoms(s.args), value=self.atom(s.value))
        if isinstance(s, ir.Deterministic):
            if spec is not None:
                return dataclasses.replace(s, value=values[s.address])
            return dataclasses.replace(s, value=self.atom(s.value))
        if isinstance(s, ir.Factor):
            return dataclasses.replace(s, log_weight=self.atom(s.log_weight))
        if isinstance(s, ir.Prim):
            return dataclasses.replace(s, args=self.atoms(s.args))
        if isinstance(s, (ir.Plate, ir.Call)):
            return dataclasses.replace(s, stmts=self.stmts(s.stmts, values))
        if isinstance(s, ir.If):
            return dataclasses.replace(s, index=self.atom(s.index), args=self.atoms(s.args),
                                       branches=tuple(self.block(b, values) for b in s.branches))
        if isinstance(s, ir.For):
            return self.for_(s, values)
        if isinstance(s, ir.Lambda):
            return dataclasses.replace(s, captured=self.atoms(s.captured), body=self.block(s.body, values))
        raise TypeError(f"unknown IR statement {type(s).__name__}")  # pragma: no cover

    def for_(self, s: ir.For, values):
        inside = {t.address for t in ir.walk(s.body.stmts) if getattr(t, "address", None) in values}
        extra_args, extra_params, step_values = [], [], dict(values)
        for a in sorted(inside):
            stacked = values[a]  # leading axis: this loop's steps
            param = ir.Var(tuple(stacked.shape[1:]), _dtype(stacked))
            extra_args.append(stacked)
            extra_params.append(param)
            step_values[a] = param
        body = self.block(s.body, step_values)
        body = dataclasses.replace(body, params=body.params + tuple(extra_params))
        return dataclasses.replace(s, args=self.atoms(s.args) + tuple(extra_args), body=body)


def _dtype(atom):
    return atom.dtype if isinstance(atom, ir.Var) else np.asarray(atom.value).dtype
