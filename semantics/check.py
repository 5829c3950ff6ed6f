"""The IR checker: scopes, addresses and shapes, reported at the user's text.

``check(program)`` returns a list of errors (empty when the program is well
formed); ``check_or_raise`` raises the first. It is run on every program a
front end produces, before any inference:

- every variable is defined before it is read (no unbound names);
- no two random choices share an address on one path (the branches of an
  ``If`` are alternative paths, so the same address may appear in each);
- an observed value has a shape that broadcasts with its distribution's, and that the distribution does
  not broadcast to a larger one (``effects.observed_shape_error``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ppl.semantics import effects, ir
from ppl.stdlib.errors import AddressError, CheckError, PPLError

__all__ = ["check", "check_or_raise"]


def check(program: ir.Program) -> list[PPLError]:
    errors: list[PPLError] = []
    _Checker(errors).block(program.block, set(), {})
    return errors


def check_or_raise(program: ir.Program) -> None:
    errors = check(program)
    if errors:
        raise errors[0]


class _Checker:
    def __init__(self, errors):
        self.errors = errors

    def block(self, block: ir.Block, defined: set, addresses: dict) -> None:
        defined = set(defined) | set(block.params)
        self.stmts(block.stmts, defined, addresses)
        for r in block.returns:
            self.read(r, defined, None)

    def read(self, atom, defined, span):
        if isinstance(atom, ir.Var) and atom not in defined:
            self.errors.append(CheckError(f"the variable {atom!r} is used before it is defined", span=span))

    def claim(self, address, span, addresses):
        if address in addresses:
            first = addresses[address]
            where = f" (first used at {first.describe()})" if first is not None else ""
            self.errors.append(AddressError(f"the address '{address}' is used twice{where}", span=span))
        else:
            addresses[address] = span

    def stmts(self, stmts, defined: set, addresses: dict) -> None:
        for s in stmts:
            if isinstance(s, ir.Prim):
                for a in s.args:
                    self.read(a, defined, s.span)
                defined.update(s.outs)
            elif isinstance(s, ir.Sample):
                for a in s.args:
                    self.read(a, defined, s.span)
                self.claim(s.address, s.span, addresses)
                defined.add(s.out)
            elif isinstance(s, ir.Observe):
                for a in (*s.args, s.value):
                    self.read(a, defined, s.span)
                self.claim(s.address, s.span, addresses)
                self.observed_shape(s)
            elif isinstance(s, ir.Factor):
                self.read(s.log_weight, defined, s.span)
                self.claim(s.address, s.span, addresses)
            elif isinstance(s, ir.Deterministic):
                self.read(s.value, defined, s.span)
                self.claim(s.address, s.span, addresses)
                defined.add(s.out)
            elif isinstance(s, (ir.Plate, ir.Call)):
                self.stmts(s.stmts, defined, addresses)
            elif isinstance(s, ir.If):
                for a in (s.index, *s.args):
                    self.read(a, defined, s.span)
                merged = dict(addresses)
                for b in s.branches:
                    branch_addresses = dict(addresses)
                    self.block(b, defined, branch_addresses)
                    merged.update(branch_addresses)
                addresses.update(merged)
                defined.update(s.outs)
            elif isinstance(s, ir.For):
                for a in s.args:
                    self.read(a, defined, s.span)
                self.block(s.body, defined, addresses)
                defined.update(s.outs)
            elif isinstance(s, ir.Lambda):
                for a in s.captured:
                    self.read(a, defined, s.span)
                self.block(s.body, defined, {})
                defined.add(s.out)

    def observed_shape(self, s: ir.Observe) -> None:
        structs = [jax.ShapeDtypeStruct(a.shape, getattr(a, "dtype", None) or jnp.result_type(a.value))
                   for a in s.args]

        def dist_shape(*args):
            d = jax.tree.unflatten(s.treedef, list(args))
            return jnp.zeros(tuple(d.batch_shape) + tuple(d.event_shape))

        try:
            shape = jax.eval_shape(dist_shape, *structs).shape
        except Exception:  # a distribution that cannot be built abstractly: nothing to check here
            return
        err = effects.observed_shape_error(s.address, s.value.shape, shape, s.span)
        if err is not None:
            self.errors.append(err)
