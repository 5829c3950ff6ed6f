"""Checked indexing where the tracer cannot reach: inside opaque loops, and in the eager engine.

``semantics.index_check`` says which index operations ppl checks and how. The tracer checks an
index operation of the model's own jaxpr when it becomes IR (``ppl.checked_index``). Two places
escape it:

- *Opaque loops*: a ``jax.lax.while_loop`` (or a ``fori_loop`` whose trip count is known only
  at run time) without random choices stays one JAX equation in the IR. :class:`CheckedOp`
  evaluates such an equation with every index operation the user wrote inside it checked
  (:func:`evaluate`: the loop carries, for each of them, the first index that fell outside its
  array), and one :data:`REPORT_OP` statement per operation turns that into the usual run-time
  check: a NaN log density in the compiled engine, an :class:`IndexRangeError` at the user's
  line in the eager one.
- *The eager engine* runs a dynamic Python model on concrete arrays, where ``y[5]`` is JAX's
  clamped read. :func:`eager_checks` applies every index operation the user's code makes there
  with its indices checked first, and opaque loops and ``jit`` calls through :func:`evaluate`.

An operation is the user's when the innermost frame outside JAX that made it is not ppl's
(nor another library's): ppl's own index operations, and a library's, are left alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import OrderedDict
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics import effects, index_check
from ppl.stdlib import jax_compat as jc
from ppl.stdlib.errors import Span

__all__ = ["Site", "is_jax_file", "eqn_user_span", "needs_check", "sites_of", "evaluate", "CheckedOp", "REPORT_OP",
           "report_params", "eager_checks"]


# --------------------------------------------------------------------------- whose operation


def is_jax_file(filename: str) -> bool:
    if filename.startswith("<") or filename.endswith("contextlib.py"):
        return True
    parts = os.path.abspath(filename).split(os.sep)
    return "jax" in parts or "jaxlib" in parts


def _user_frame(frames) -> Span | None:
    """The first of ``(file, line)`` frames (innermost first) outside JAX, when it is the user's."""
    for filename, line in frames:
        if is_jax_file(filename):
            continue
        if effects.is_internal(filename):
            return None
        return Span(filename, line)
    return None


def eqn_user_span(eqn) -> Span | None:
    """Where the user wrote the operation an equation came from, or None (ppl's or a library's own)."""
    names = jc.eqn_name_stack(eqn)
    span = index_check.span_of_scopes(names)
    if span is not None:
        return span
    if any(n.startswith("ppl.at.") for n in names):
        return None
    return _user_frame(jc.eqn_frames(eqn))


def needs_check(eqn) -> bool:
    """An index operation the user wrote (outside an unchecked scope)."""
    if not index_check.is_checked_op(eqn.primitive.name, eqn.params):
        return False
    if index_check.UNCHECKED_SCOPE in jc.eqn_name_stack(eqn):
        return False
    return eqn_user_span(eqn) is not None


# --------------------------------------------------------------------------- the checked operations


class Site(NamedTuple):
    """One index operation the user wrote inside an opaque equation."""

    span: Span
    items: tuple  # (axis, length, window) per index it reads (index_check.item_table)
    shape: tuple  # the indexed operand's shape


def report_params(site: Site) -> dict:
    """The parameters of the :data:`REPORT_OP` statement for ``site``."""
    return {"items": site.items, "shape": site.shape}


_SITES: OrderedDict[int, tuple] = OrderedDict()
_SITES_LIMIT = 4096


def sites_of(closed) -> tuple[Site, ...]:
    """The index operations the user wrote in a (closed) jaxpr that :func:`evaluate` checks, in the
    order of its reports: at any depth of loops, branches and ``jit`` calls."""
    key = id(closed)
    got = _SITES.get(key)
    if got is not None and got[0] is closed:
        return got[1]
    jaxpr, _ = jc.closed_to_parts(closed)
    found: list[Site] = []
    for eqn in jaxpr.eqns:
        if needs_check(eqn):
            shapes = [jc.aval_of(a)[0] for a in eqn.invars]
            items = index_check.item_table(eqn.primitive.name, dict(eqn.params), shapes)
            found.append(Site(eqn_user_span(eqn), items, tuple(shapes[0])))
        else:
            found.extend(params_sites(eqn.primitive.name, eqn.params))
    out = tuple(found)
    _SITES[key] = (closed, out)
    if len(_SITES) > _SITES_LIMIT:
        _SITES.popitem(last=False)
    return out


def params_sites(name: str, params: dict) -> tuple[Site, ...]:
    """The checked sites inside a higher-order primitive with parameters ``params``."""
    if name == jc.WHILE:
        return sites_of(jc.while_params(params)["body"])
    if name == jc.SCAN:
        return sites_of(params["jaxpr"])
    if name == jc.COND:
        return tuple(s for b in params["branches"] for s in sites_of(b))
    if name in jc.JIT_NAMES:
        body = jc.params_body(params)
        return sites_of(body) if body is not None else ()
    return ()


_OK = (np.int32(-1), np.int32(0))


def _first(old, new):
    """The earlier of two reports: ``old`` when it already found an index outside its array."""
    (c0, v0), (c1, v1) = old, new
    seen = c0 >= 0
    return jnp.where(seen, c0, c1), jnp.where(seen, v0, v1)


def _merge(old: list, new: list) -> list:
    return [_first(o, n) for o, n in zip(old, new)]


def evaluate(closed, args) -> tuple[list, list]:
    """``closed`` applied to ``args`` (values or tracers), with the reports ``(code, value)`` of the
    index operations of :func:`sites_of` (``code`` -1: every index inside its array)."""
    jaxpr, consts = jc.closed_to_parts(closed)
    env: dict = {}

    def read(atom):
        return jc.literal_value(atom) if jc.is_literal(atom) else env[atom]

    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    reports: list = []
    for eqn in jaxpr.eqns:
        ins = [read(a) for a in eqn.invars]
        name, params = eqn.primitive.name, dict(eqn.params)
        if needs_check(eqn):
            reports.append(index_check.first_bad(jnp, name, params, ins))
            outs = jc.bind(eqn.primitive, ins, eqn.params)
        else:
            outs, got = apply(eqn.primitive, params, ins)
            reports.extend(got)
        for v, o in zip(eqn.outvars, outs):
            if not jc.is_dropvar(v):
                env[v] = o
    return [read(v) for v in jaxpr.outvars], reports


def apply(primitive, params: dict, ins: list) -> tuple[list, list]:
    """A primitive applied to ``ins`` (a list of results), with the reports of the checked sites
    inside it (none for a first-order primitive, or a loop without user index operations)."""
    name = primitive.name
    if not params_sites(name, params):
        return jc.bind(primitive, ins, params), []
    if name == jc.WHILE:
        return _while(params, ins)
    if name == jc.SCAN:
        return _scan(params, ins)
    if name == jc.COND:
        return _cond(params, ins)
    return evaluate(jc.params_body(params), ins)


def _while(params, ins):
    wp = jc.while_params(params)
    nc, nb = wp["cond_nconsts"], wp["body_nconsts"]
    cond_consts, body_consts, init = list(ins[:nc]), list(ins[nc:nc + nb]), list(ins[nc + nb:])
    start = [_OK] * len(sites_of(wp["body"]))

    def cond_fn(state):
        carry, _ = state
        return jc.bind_closed(wp["cond"], cond_consts + list(carry))[0]

    def body_fn(state):
        carry, reports = state
        outs, got = evaluate(wp["body"], body_consts + list(carry))
        outs = [jnp.asarray(o, jnp.result_type(c)) for o, c in zip(outs, carry)]
        return outs, _merge(reports, got)

    carry, reports = jax.lax.while_loop(cond_fn, body_fn, (init, start))
    return list(carry), list(reports)


def _scan(params, ins):
    sp = jc.scan_params_of(params)
    c, k = sp["num_consts"], sp["num_carry"]
    consts, init, xs = list(ins[:c]), list(ins[c:c + k]), list(ins[c + k:])
    start = [_OK] * len(sites_of(sp["jaxpr"]))

    def step(state, x):
        carry, reports = state
        outs, got = evaluate(sp["jaxpr"], consts + list(carry) + list(x))
        new = [jnp.asarray(o, jnp.result_type(c)) for o, c in zip(outs[:k], carry)]
        return (new, _merge(reports, got)), outs[k:]

    (carry, reports), ys = jax.lax.scan(step, (init, start), xs, length=sp["length"], reverse=sp["reverse"])
    return list(carry) + list(ys), list(reports)


def _cond(params, ins):
    branches = params["branches"]
    counts = [len(sites_of(b)) for b in branches]
    total = sum(counts)

    def branch(j):
        before = sum(counts[:j])

        def run(*ops):
            outs, got = evaluate(branches[j], list(ops))
            reports = [_OK] * total
            reports[before:before + counts[j]] = got
            return outs, [(jnp.asarray(c, np.int32), jnp.asarray(v, np.int32)) for c, v in reports]

        return run

    outs, reports = jax.lax.switch(ins[0], [branch(j) for j in range(len(branches))], *ins[1:])
    return list(outs), list(reports)


class CheckedOp:
    """An opaque equation (a ``while_loop`` with user index operations inside) as an IR operation
    (an object with ``bind``, as ``ir.Prim`` allows): its results, then ``(code, value)`` of each of
    its :func:`sites_of`, for the :data:`REPORT_OP` statements that follow it."""

    multiple_results = True

    def __init__(self, primitive, params: dict):
        self.primitive, self.params = primitive, dict(params)
        self.name = f"checked[{primitive.name}]"

    def get_bind_params(self, params):
        return dict(params)

    def bind(self, *args, **_):
        outs, reports = apply(self.primitive, self.params, list(args))
        return list(outs) + [x for pair in reports for x in pair]

    def __repr__(self):
        return self.name


class _Report:
    """``ok = report(code, value)``: whether the index operation it reports on stayed inside its
    array; a ``check_index`` statement (``index_check.REPORT``) that the engines check."""

    multiple_results = True
    name = index_check.REPORT

    def get_bind_params(self, params):
        return dict(params)

    def bind(self, code, value, **_):
        return [jnp.asarray(code) < 0]

    def __repr__(self):
        return self.name


REPORT_OP = _Report()


# --------------------------------------------------------------------------- the eager engine

_HERE = {os.path.abspath(__file__), os.path.abspath(jc.__file__)}


def _callers_span() -> Span | None:
    """The user's line that applied the primitive now being applied (None: ppl's or a library's)."""
    frame = sys._getframe(1)
    frames = []
    while frame is not None:
        filename = frame.f_code.co_filename
        if os.path.abspath(filename) not in _HERE:
            frames.append((filename, frame.f_lineno))
        frame = frame.f_back
    return _user_frame(frames)


def _raise(site_span: Span | None, violation) -> None:
    raise index_check.IndexRangeError(index_check.violation_message(violation), span=site_span,
                                      hint=index_check.HINT)


def _eager_hook(primitive, args, params):
    name = primitive.name
    if index_check.is_checked_op(name, params):
        violation = index_check.first_violation(name, params, list(args))
        if violation is not None:
            span = _callers_span()
            if span is not None:
                _raise(span, violation)
        return None
    sites = params_sites(name, params) if any(True for _ in jc.params_subjaxprs(params)) else ()
    if not sites:
        return None
    outs, reports = apply(primitive, params, list(args))
    for site, (code, value) in zip(sites, reports):
        violation = index_check.first_violation(index_check.REPORT, report_params(site), [code, value])
        if violation is not None:
            _raise(site.span, violation)
    return outs if primitive.multiple_results else outs[0]


_ACTIVE: list = []


@contextlib.contextmanager
def eager_checks():
    """Within: the index operations that the user's Python code applies eagerly are checked (an
    index outside its array raises :class:`IndexRangeError` at the user's line)."""
    if _ACTIVE:
        yield
        return
    _ACTIVE.append(True)
    try:
        with jc.eager_primitive_hook(_eager_hook):
            yield
    finally:
        _ACTIVE.pop()
