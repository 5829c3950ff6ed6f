"""The tracer's half of checked indexing (see ``ppl.semantics.index_check``).

While a jaxpr becomes IR, this follows the values that are known when the model
is traced (literals, closed-over constants and the integer arithmetic on them:
a Python index, a ``.ppl`` loop's index vector, JAX's wrapping of a negative
index). An index operation written by the user whose indices are all known is
checked there and then: an index outside its array raises at the user's line.
One whose indices are known only when the model runs (a loop variable inside a
scan, an index read from the data or drawn) is marked ``check_index``, and the
engines check it at run time.

The user's line of an equation is the ``.ppl`` span the evaluator put in its
name stack, or the innermost Python frame outside JAX; an index operation
made by ppl's own code (or another library) is not the user's and is left alone.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ppl import known_arithmetic
from ppl.stdlib import jax_compat as jc
from ppl.semantics import checked_eval, effects, index_check, ir
from ppl.stdlib.errors import Span

__all__ = ["IndexTracker", "eqn_user_span", "needs_check"]

#: integer and boolean arithmetic that JAX's indexing emits; evaluated on known values
_FOLD = frozenset({
    "lt", "le", "gt", "ge", "eq", "ne", "add", "sub", "mul", "neg", "abs", "sign", "max", "min", "rem",
    "div", "and", "or", "not", "select_n", "convert_element_type", "broadcast_in_dim", "reshape",
    "squeeze", "expand_dims", "concatenate", "iota", "clamp", "transpose", "slice", "copy", "copy_p",
})
_MAX_KNOWN = 100_000  # elements: larger constants are not followed
_NUMPY_STEP_BUDGET = 20_000  # steps x equations of a loop body evaluated step by step with NumPy


# whose operation an equation is: one rule, shared with the run-time checks (semantics.checked_eval)
_is_jax_file = checked_eval.is_jax_file
eqn_user_span = checked_eval.eqn_user_span
needs_check = checked_eval.needs_check


def eqn_span(eqn) -> Span | None:
    """Where the operation an equation came from was written: the user's index expression or
    statement (.ppl), else the innermost frame of the user's Python code that led to it."""
    span = eqn_user_span(eqn)
    if span is not None:
        return span
    span = index_check.statement_span_of_scopes(jc.eqn_name_stack(eqn))
    if span is not None:
        return span
    for filename, line in jc.eqn_frames(eqn):
        if not _is_jax_file(filename) and not effects.is_internal(filename):
            return Span(filename, line)
    return None


def contains_checked_index(closed, verified=frozenset()) -> bool:
    """Whether a (closed) jaxpr holds, at any depth, an index operation the user wrote that
    still needs a run-time check (``verified``: the ``id``s of those already checked)."""
    jaxpr, _ = jc.closed_to_parts(closed)
    for eqn in jaxpr.eqns:
        if needs_check(eqn) and id(eqn) not in verified:
            return True
        if any(contains_checked_index(sub, verified) for sub in jc.eqn_subjaxprs(eqn)):
            return True
    return False


def _literal_or(env, atom):
    if jc.is_literal(atom):
        return np.asarray(jc.literal_value(atom))
    return env.get(atom)


def verify_scan(eqn, outer: list) -> set[int]:
    """The index equations of a scan's body that are inside their arrays at every step.

    ``outer`` holds the known values of the scan's operands (None where unknown). An index
    computed from the loop's ``xs`` (a loop variable) and known constants only is evaluated
    for all steps at once (``vmap`` over ``xs``) and checked now: out of range at some step
    raises at the user's line; in range at every step needs no run-time check (returned by
    ``id`` of the equation). Indices that depend on the carried state, on draws or on data
    stay for the run-time check.
    """
    sp = jc.scan_params(eqn)
    body, body_consts = jc.closed_to_parts(sp["jaxpr"])
    c, k = sp["num_consts"], sp["num_carry"]
    xs = outer[c + k:]
    if not xs or any(v is None for v in xs) or sp["length"] > _MAX_KNOWN:
        return set()
    targets = [e for e in body.eqns if needs_check(e)]
    if not targets:
        return set()
    target_ids = {id(e) for e in targets}
    static = {v: np.asarray(x) for v, x in zip(body.constvars, body_consts)}
    static.update({v: np.asarray(x) for v, x in zip(body.invars[:c], outer[:c]) if x is not None})
    x_vars = body.invars[c + k:]

    def indices_at(x_step, apply):
        """The target equations' index operands at one step (None where unknown); ``apply(e, ins)``
        evaluates a followed equation (None: it cannot, and neither can this)."""
        env = dict(static)
        env.update(zip(x_vars, x_step))
        found = []
        for e in body.eqns:
            ins = [_literal_or(env, a) for a in e.invars]
            if id(e) in target_ids:
                where = index_check.index_positions(e.primitive.name, len(ins))
                found.append(tuple(ins[j] for j in where) if all(ins[j] is not None for j in where) else None)
                continue
            if e.primitive.name in _FOLD and all(v is not None for v in ins):
                got = apply(e, ins)
                if got is None:
                    return None
                env.update(zip(e.outvars, got))
        return found

    def by_jax(e, ins):
        return jc.bind(e.primitive, ins, e.params)

    def by_numpy(e, ins):
        return known_arithmetic.evaluate(e.primitive.name, ins, dict(e.params), [a.aval for a in e.invars],
                                         [v.aval for v in e.outvars])

    def numpy_steps():
        """``(keep, stacked)`` as below, step by step with NumPy (nothing compiled); None when a
        step needs an operation ``known_arithmetic`` cannot promise, or the loop is long."""
        length = sp["length"]
        if length < 1 or length * len(body.eqns) > _NUMPY_STEP_BUDGET:
            return None
        steps = [indices_at([np.asarray(x)[t] for x in xs], by_numpy) for t in range(length)]
        if any(step is None for step in steps):
            return None
        keep = [j for j, got in enumerate(steps[0]) if got is not None]
        stacked = [tuple(np.stack([step[j][m] for step in steps]) for m in range(len(steps[0][j]))) for j in keep]
        return keep, stacked

    try:
        by_numpy = numpy_steps()
        if by_numpy is not None:
            keep, stacked = by_numpy
        else:
            with jax.ensure_compile_time_eval():
                shape_only = jax.eval_shape(lambda *x: indices_at(x, by_jax), *[x[0] for x in xs])
                keep = [j for j, got in enumerate(shape_only) if got is not None]
                if keep:
                    stacked = jax.vmap(lambda *x: [indices_at(x, by_jax)[j] for j in keep])(*xs)
        if not keep:
            return set()
    except Exception:  # noqa: BLE001 - a loop we cannot follow is checked at run time
        return set()
    verified = set()
    for j, values in zip(keep, stacked):
        e = targets[j]
        where = index_check.index_positions(e.primitive.name, len(e.invars))
        values = dict(zip(where, (np.asarray(v) for v in values)))
        args = [values[m] if m in values else np.broadcast_to(np.zeros((), np.float32), jc.aval_of(a)[0])
                for m, a in enumerate(e.invars)]
        index_check.raise_if_out_of_range(e.primitive.name, dict(e.params), args, eqn_user_span(e))
        verified.add(id(e))
    return verified


class IndexTracker:
    """Known values of IR variables during one conversion, and the index checks they allow."""

    def __init__(self):
        self.known: dict[ir.Var, Any] = {}
        self.verified: set[int] = set()  # index equations checked for every step of their loop

    def scan(self, eqn, args: tuple) -> None:
        """Before a scan's body is converted: check the indices that are known at every step."""
        self.verified |= verify_scan(eqn, [self.value(a) for a in args])

    def value(self, atom):
        if isinstance(atom, ir.Lit):
            return atom.value
        return self.known.get(atom)

    def prim(self, eqn, outs: tuple, args: tuple) -> ir.Prim:
        """The IR statement for a plain equation, checked or marked when it indexes."""
        prim, params = eqn.primitive, dict(eqn.params)
        values = [self.value(a) for a in args]
        every_known = all(v is not None for v in values)
        if needs_check(eqn) and id(eqn) not in self.verified:
            span = eqn_user_span(eqn)
            where = index_check.index_positions(prim.name, len(args))
            if all(values[k] is not None for k in where):
                # the other operands lend only their shapes
                shaped = [v if k in where else np.broadcast_to(np.zeros((), np.float32), a.shape)
                          for k, (v, a) in enumerate(zip(values, args))]
                index_check.raise_if_out_of_range(prim.name, params, shaped, span)
                return ir.Prim(span, outs, prim, params, args)
            return ir.Prim(span, outs, prim, params, args, check_index=True)
        if every_known and prim.name in _FOLD and all(int(np.prod(v.shape)) <= _MAX_KNOWN for v in outs):
            self._fold(eqn, values, outs)
        return ir.Prim(eqn_span(eqn), outs, prim, params, args)

    def _fold(self, eqn, values, outs) -> None:
        got = _evaluate(eqn, values)
        if got is None:
            return  # a value we cannot follow is simply not known
        for v, g in zip(outs, got):
            self.known[v] = g


def _evaluate(eqn, values: list) -> list | None:
    """The outputs of ``eqn`` on known values: with NumPy where it is exact (no XLA compilation,
    ``known_arithmetic``), else with JAX; None when neither can."""
    prim, params = eqn.primitive, dict(eqn.params)
    got = known_arithmetic.evaluate(prim.name, values, params, [a.aval for a in eqn.invars],
                                    [v.aval for v in eqn.outvars])
    if got is not None:
        return got
    try:
        with jax.ensure_compile_time_eval():
            return [np.asarray(g) for g in jc.bind(prim, values, params)]
    except Exception:  # noqa: BLE001 - a value we cannot follow is simply not known
        return None


def opaque_stmts(eqn, outs: tuple, args: tuple) -> list[ir.Stmt]:
    """An opaque loop (``while_loop``, a ``fori_loop`` with a run-time trip count) with index
    operations the user wrote inside: the loop as a ``checked_eval.CheckedOp`` statement, then one
    run-time check per operation (``check_index``, at its user's line). Empty when it has none."""
    sites = checked_eval.params_sites(eqn.primitive.name, dict(eqn.params))
    if not sites:
        return []
    reports = tuple(ir.Var((), np.dtype(np.int32)) for _ in range(2 * len(sites)))
    stmts: list[ir.Stmt] = [ir.Prim(eqn_user_span(eqn), outs + reports,
                                    checked_eval.CheckedOp(eqn.primitive, eqn.params), {}, args)]
    for k, site in enumerate(sites):
        ok = ir.Var((), np.dtype(np.bool_))
        stmts.append(ir.Prim(site.span, (ok,), checked_eval.REPORT_OP, checked_eval.report_params(site),
                             reports[2 * k: 2 * k + 2], check_index=True))
    return stmts
