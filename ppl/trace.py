"""Decorated Python -> IR, by tracing.

The model function runs once under ``jax.make_jaxpr`` with a handler that
turns each random choice into an equation of one JAX primitive, ``ppl_site``.
The resulting jaxpr — JAX's own record of the deterministic code, with our
sites in place — is then converted statement by statement into the IR of
``ppl.semantics.ir``: site equations become Sample/Observe/Factor, scans and
conds that contain sites become For/If, and every other equation is a Prim.
Where the model opens a plate or calls a sub-model, the handler emits a pair of
``ppl_group`` marks (an opening one carrying a :class:`Group`: kind, name,
size, options and the user's span; a closing one), and the equations between
the two become that Plate/Call group.

When Python control flow asks for the value of a random choice (an ``if`` on
a sample, recursion until a coin comes up heads) tracing cannot proceed: the
model is *dynamic*. :func:`trace` then returns a :class:`Dynamic` program
naming the user's line, and the eager engine runs it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ppl import checked_index
from ppl.stdlib import jax_compat as jc
from ppl.semantics import effects, ir
from ppl.semantics.check import check_or_raise
from ppl.semantics.params import ParamOp
from ppl.semantics.program import WRAPPED_INTEGERS_HINT, Dynamic, split_args, wrapped_integers
from ppl.stdlib.errors import ModelError, PPLError, ShapeError, Span

__all__ = ["trace", "site_p", "group_p", "Group", "TraceHandler"]

# ---------------------------------------------------------------------------
# The site primitive

site_p = jc.Primitive("ppl_site")
site_p.multiple_results = True


def _site_abstract_eval(*args, kind, shape, dtype, **_):
    if kind in ("sample", "deterministic", "param"):
        return [jc.abstract(shape, dtype)]
    return []


def _site_impl(*args, kind, address, **_):
    raise ModelError(
        f"the random choice '{address}' was evaluated outside ppl's engines",
        hint="This is a bug in ppl: a traced model escaped its handler.",
    )


site_p.def_abstract_eval(_site_abstract_eval)
site_p.def_impl(_site_impl)

# ---------------------------------------------------------------------------
# The group marks: where a plate or sub-model call opens (edge="open") and closes (edge="close")

group_p = jc.marker_primitive("ppl_group")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per plate entered or call made
class Group:
    """A plate or sub-model call entered while tracing: what its IR node (Plate/Call) records."""

    kind: str  # "plate" | "call"
    name: str  # a call: its scope name ("sub", "sub_1" for the second call, ...)
    span: Span | None  # where the user opened the plate or called the sub-model
    size: int | None = None  # a plate's rows
    shard: bool | str | None = None
    subsampled_from: int | None = None


@contextlib.contextmanager
def _marked(group: Group):
    """The block's equations between an opening and a closing mark of ``group``."""
    group_p.bind(edge="open", group=group)
    try:
        yield
    finally:
        group_p.bind(edge="close", group=group)


class _Hashable:
    """Wraps an unhashable parameter (a span with source text) for primitive params."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


def _value_shape_dtype(dist) -> tuple[tuple[int, ...], Any]:
    shape = tuple(dist.batch_shape) + tuple(dist.event_shape)
    dtype = jnp.int32 if getattr(dist, "is_discrete", False) else jnp.result_type(float)
    return shape, dtype


class TraceHandler(effects.Handler):
    """Handles effects by emitting ``ppl_site`` equations into the jaxpr being traced."""

    index_loops = False
    branch_depth = 0  # > 0 while tracing a branch of a cond on a traced value

    def site(self, site: effects.Site):
        span = _Hashable(site.span)
        plates = tuple((f.name, f.size, f.dim) for f in site.plates)
        if site.kind == "sample":
            leaves, treedef = jax.tree.flatten(site.dist)
            shape, dtype = _value_shape_dtype(site.dist)
            (out,) = site_p.bind(*leaves, kind="sample", address=site.address, treedef=treedef, span=span,
                                 plates=plates, shape=shape, dtype=dtype, dist_type=type(site.dist),
                                 estimator=site.estimator)
            return out
        if site.kind == "observe":
            leaves, treedef = jax.tree.flatten(site.dist)
            value = _as_data(site.value, site.address, site.span)
            shape, dtype = _value_shape_dtype(site.dist)
            _check_observed_shape(value, shape, site.address, site.span)
            site_p.bind(*leaves, value, kind="observe", address=site.address, treedef=treedef, span=span,
                        plates=plates, shape=shape, dtype=dtype, dist_type=type(site.dist))
            return value
        if site.kind == "factor":
            lw = jnp.asarray(site.value, dtype=jnp.result_type(float))
            site_p.bind(lw, kind="factor", address=site.address, treedef=None, span=span, plates=plates,
                        shape=(), dtype=None, dist_type=None)
            return None
        if site.kind == "deterministic":
            value = jnp.asarray(site.value)
            (out,) = site_p.bind(value, kind="deterministic", address=site.address, treedef=None, span=span,
                                 plates=plates, shape=value.shape, dtype=value.dtype, dist_type=None)
            return out
        raise ModelError(f"unknown site kind {site.kind}")  # pragma: no cover

    def param_site(self, address, init, constraint, span):
        """``ppl.param``: one ``ppl_site`` equation of kind "param" (a ``ParamOp`` in the IR)."""
        init = jnp.asarray(init)
        (out,) = site_p.bind(init, kind="param", address=address, treedef=None, span=_Hashable(span), plates=(),
                             shape=init.shape, dtype=init.dtype, dist_type=None, estimator=None,
                             constraint=_Hashable(constraint))
        return out

    def run_scan(self, step, init, xs, length, reverse, span):
        before = dict(self.seen)

        def body(carry, x):
            # JAX traces the body again when the carry's type changes in it (an int start, a real
            # result): each trace is the same step, not a second use of its addresses
            self.seen = dict(before)
            return step(carry, x)

        return jax.lax.scan(body, init, xs, length=length, reverse=reverse)

    def run_cond(self, pred, true_fn, false_fn, operands, span):
        if not jc.is_tracer(pred):
            return super().run_cond(pred, true_fn, false_fn, operands, span)
        pred = jnp.asarray(pred)
        if pred.shape != ():
            raise ShapeError(f"ppl.cond needs a scalar condition, but got shape {pred.shape}", span=span)
        before = dict(self.seen)
        claimed = {}

        def branch(fn, tag):
            def run(*ops):
                self.seen = dict(before)
                self.branch_depth += 1
                try:
                    out = fn(*ops)
                finally:
                    self.branch_depth -= 1
                claimed[tag] = self.seen
                return out

            return run

        out = jax.lax.cond(pred, branch(true_fn, "t"), branch(false_fn, "f"), *operands)
        merged = dict(before)
        for d in claimed.values():
            merged.update(d)
        self.seen = merged
        return out

    @contextlib.contextmanager
    def enter_call(self, name):
        with super().enter_call(name):
            with _marked(Group("call", self.scope[-1], effects.caller_span())):
                yield

    @contextlib.contextmanager
    def enter_plate(self, name, size, span, *, shard=None, subsampled_from=None):
        with super().enter_plate(name, size, span, shard=shard, subsampled_from=subsampled_from) as frame:
            with _marked(Group("plate", name, span, int(size), shard, subsampled_from)):
                yield frame


def _as_data(value, address, span):
    if jc.is_tracer(value):
        return value
    problem = wrapped_integers(value) if isinstance(value, (np.ndarray, list, tuple)) else None
    if problem is not None:
        raise ModelError(f"the observed value at '{address}' holds {problem}", span=span,
                         hint=WRAPPED_INTEGERS_HINT)
    try:
        return jnp.asarray(value)
    except (TypeError, ValueError):
        raise ShapeError(
            f"the observed value at '{address}' is not numeric data: {type(value).__name__}", span=span
        ) from None


def _check_observed_shape(value, shape, address, span):
    try:
        np.broadcast_shapes(tuple(value.shape), tuple(shape))
    except ValueError:
        raise ShapeError(
            f"the observed value at '{address}' has shape {tuple(value.shape)}, but its distribution "
            f"has shape {tuple(shape)}",
            span=span,
            hint="Check the data's length, or vectorise the distribution to match it.",
        ) from None


# ---------------------------------------------------------------------------
# Tracing


def _at_user_line(err: Exception) -> Exception:
    """An error that the model's own code raised while it was traced (JAX's indexing, shapes, types),
    as a ModelError at the model's line; one raised outside the model's code, unchanged."""
    span = effects.user_span_of(err)
    if span is None:
        return err
    hint = None
    if "Indexer must have integer or boolean type" in str(err):
        hint = "An index must hold integers: give the index data as integers (np.asarray(g, dtype=int)), or " \
               "convert it in the model with .astype(int)."
    return ModelError(f"the model's code raised {type(err).__name__}: {err}", span=span, hint=hint)


def _own(c):
    """A constant of the traced code as the program's own copy. A NumPy array the model read from
    outside (a global) reaches the jaxpr as JAX's canonical form of it, which JAX caches while
    anything holds it, keyed by the array object: holding it would make the next trace, after the
    user changed the array in place, read the old values from that cache."""
    return np.array(c) if isinstance(c, np.ndarray) else c


def trace(fn: Callable, args: tuple, kwargs: dict, name: str) -> "ir.Program | Dynamic":
    """Trace ``fn(*args, **kwargs)`` into a static IR program, or report it dynamic."""
    dyn_leaves, rebuild = split_args(args, kwargs, fn)
    out_tree_box = {}

    def flat_fn(*leaves):
        a, k = rebuild(leaves)
        with TraceHandler():
            out = fn(*a, **k)
        flat, tree = jax.tree.flatten(out)
        out_tree_box["tree"] = tree
        return [jnp.asarray(x) for x in flat]

    try:
        closed, _ = jc.make_jaxpr(flat_fn, *dyn_leaves)
    except jc.CONCRETIZATION_ERRORS as err:
        span = effects.user_span_of(err)
        return Dynamic(fn, args, kwargs, name, _dynamic_reason(err, span), span)
    except effects.NeedsDynamic as err:
        return Dynamic(fn, args, kwargs, name, err.reason, err.span)
    except effects.MemoOnTracedValue as err:
        span = effects.user_span_of(err)
        return Dynamic(fn, args, kwargs, name,
                       "a memoised random function is called on a value that is only known at run time", span)
    except RecursionError as err:
        span = effects.user_span_of(err)
        return Dynamic(fn, args, kwargs, name, "the model recurses without a bound it can know in advance", span)
    except TypeError as err:
        if "Tracer" in str(err) or "abstract" in str(err):
            span = effects.user_span_of(err)
            return Dynamic(fn, args, kwargs, name, "Python code needs the value of a random choice", span)
        raise _at_user_line(err) from err
    except (ValueError, IndexError) as err:
        raise _at_user_line(err) from err
    block = _Converter().block(closed)
    program = ir.Program(name, block, rebuild, out_tree_box["tree"], span=effects.caller_span(),
                         sharded_plates=_sharded_plates(block))
    check_or_raise(program)
    return program


def _sharded_plates(block: ir.Block) -> tuple:
    """``(name, rows, shard, span)`` of each plate marked ``shard=`` (by name; the last one's options),
    for placing its data on devices (``inference.sharding``); rows are the data's, before subsampling."""
    found = {}
    for s in ir.walk(block.stmts):
        if isinstance(s, ir.Plate) and s.shard is not None:
            rows = s.size if s.subsampled_from is None else s.subsampled_from
            found[s.name] = (s.name, rows, s.shard, s.span)
    return tuple(found.values())


def _dynamic_reason(err, span: Span | None) -> str:
    text = ""
    if span is not None:
        line = span.source_line(span.line)
        if line:
            text = f": `{line.strip()}`"
    return f"Python control flow depends on a random value{text}"


# ---------------------------------------------------------------------------
# jaxpr -> IR


def _has_sites(jaxpr) -> bool:
    jaxpr, _ = jc.closed_to_parts(jaxpr)
    for eqn in jaxpr.eqns:
        if eqn.primitive is site_p:
            return True
        if any(_has_sites(sub) for sub in jc.eqn_subjaxprs(eqn)):
            return True
    return False


class _Converter:
    """A jaxpr of a traced model -> IR."""

    def __init__(self):
        self.env: dict[Any, ir.Atom] = {}
        self.indices = checked_index.IndexTracker()

    def read(self, atom) -> ir.Atom:
        if jc.is_literal(atom):
            return ir.Lit(jc.literal_value(atom))
        return self.env[atom]

    def new_var(self, jvar) -> ir.Var:
        shape, dtype = jc.aval_of(jvar)
        v = ir.Var(shape, dtype)
        if not jc.is_dropvar(jvar):
            self.env[jvar] = v
        return v

    def block(self, closed) -> ir.Block:
        jaxpr, consts = jc.closed_to_parts(closed)
        for cv, c in zip(jaxpr.constvars, consts):
            self.env[cv] = ir.Lit(_own(c))
        params = tuple(self.new_var(v) for v in jaxpr.invars)
        stmts = self.stmts(jaxpr.eqns)
        returns = tuple(self.read(v) for v in jaxpr.outvars)
        return ir.Block(params, tuple(stmts), returns)

    def stmts(self, eqns) -> list[ir.Stmt]:
        """The statements of ``eqns``; those between a group's marks go into its Plate/Call node."""
        root: list = []
        stack: list[tuple[Group | None, list]] = [(None, root)]
        for eqn in eqns:
            if eqn.primitive is group_p:
                group = eqn.params["group"]
                if eqn.params["edge"] == "open":
                    stack.append((group, []))
                    continue
                if stack[-1][0] is not group:  # marks nest as the with-blocks that emit them do
                    raise ModelError(f"the {group.kind} '{group.name}' closes out of order while tracing",
                                     span=group.span, hint="This is a bug in ppl.")
                _, body = stack.pop()
                stack[-1][1].append(_group_node(group, body))
                continue
            stmt = self.stmt(eqn)
            stack[-1][1].extend(stmt if isinstance(stmt, list) else [stmt])
        if len(stack) > 1:
            group = stack[-1][0]
            raise ModelError(f"the {group.kind} '{group.name}' is never closed while tracing",
                             span=group.span, hint="This is a bug in ppl.")
        return root

    def stmt(self, eqn) -> ir.Stmt:
        prim = eqn.primitive
        if prim is site_p:
            return self.site(eqn)
        name = prim.name
        subs = list(jc.eqn_subjaxprs(eqn))
        if name == jc.SCAN:  # indices known at every step: checked now, not when the model runs
            self.indices.scan(eqn, tuple(self.read(a) for a in eqn.invars))
        verified = self.indices.verified
        if subs and (any(_has_sites(s) for s in subs)
                     or (name in (jc.SCAN, jc.COND, *jc.JIT_NAMES)
                         and any(checked_index.contains_checked_index(s, verified) for s in subs))):
            if name == jc.SCAN:
                return self.scan(eqn)
            if name == jc.COND:
                return self.cond(eqn)
            if name in jc.JIT_NAMES:
                return self.inline(eqn)
            raise ModelError(
                f"random choices inside `{name}` are not supported",
                hint="Use ppl.scan for loops and ppl.cond for branches around random choices.",
            )
        args = tuple(self.read(a) for a in eqn.invars)
        outs = tuple(self.new_var(v) for v in eqn.outvars)
        if subs and name not in (jc.SCAN, jc.COND, *jc.JIT_NAMES):  # a while_loop: checked inside
            checked = checked_index.opaque_stmts(eqn, outs, args)
            if checked:
                return checked
        return self.indices.prim(eqn, outs, args)

    def site(self, eqn) -> ir.Stmt:
        p = eqn.params
        span = p["span"].value
        args = tuple(self.read(a) for a in eqn.invars)
        kind = p["kind"]
        if kind == "sample":
            out = self.new_var(eqn.outvars[0])
            return ir.Sample(span, out, p["address"], p["dist_type"], p["treedef"], args, p["plates"],
                             p.get("estimator"))
        if kind == "param":
            out = self.new_var(eqn.outvars[0])
            return ir.Prim(span, (out,), ParamOp(p["address"], p["constraint"].value), {}, args)
        if kind == "observe":
            return ir.Observe(span, p["address"], p["dist_type"], p["treedef"], args[:-1], args[-1], p["plates"])
        if kind == "factor":
            return ir.Factor(span, p["address"], args[0], p["plates"])
        out = self.new_var(eqn.outvars[0])
        return ir.Deterministic(span, out, p["address"], args[0])

    def scan(self, eqn) -> ir.Stmt:
        sp = jc.scan_params(eqn)
        body = self.block(sp["jaxpr"])
        args = tuple(self.read(a) for a in eqn.invars)
        outs = tuple(self.new_var(v) for v in eqn.outvars)
        span = _first_span(body.stmts)
        return ir.For(span, outs, body, sp["length"], sp["reverse"], sp["num_consts"], sp["num_carry"], args)

    def cond(self, eqn) -> ir.Stmt:
        branches = tuple(self.block(b) for b in jc.cond_branches(eqn))
        index, *ops = (self.read(a) for a in eqn.invars)
        outs = tuple(self.new_var(v) for v in eqn.outvars)
        span = next((s for b in branches for s in [_first_span(b.stmts)] if s), None)
        return ir.If(span, outs, index, branches, tuple(ops))

    def inline(self, eqn) -> ir.Stmt:
        body = jc.jit_body(eqn)
        jaxpr, consts = jc.closed_to_parts(body)
        for cv, c in zip(jaxpr.constvars, consts):
            self.env[cv] = ir.Lit(_own(c))
        for inner, outer in zip(jaxpr.invars, eqn.invars):
            self.env[inner] = self.read(outer)
        stmts = self.stmts(jaxpr.eqns)
        for inner, outer in zip(jaxpr.outvars, eqn.outvars):
            if not jc.is_dropvar(outer):
                self.env[outer] = self.read(inner)
        return ir.Call(_first_span(stmts), getattr(eqn.params.get("name"), "__str__", lambda: "jit")(), tuple(stmts))


def _group_node(group: Group, body: list) -> ir.Stmt:
    """The Plate or Call node of ``group`` around the statements ``body`` traced inside it."""
    span = group.span or _first_span(body)  # where the user opened it; else where its first site is
    if group.kind == "plate":
        return ir.Plate(span, group.name, group.size, tuple(body), group.shard, group.subsampled_from)
    return ir.Call(span, group.name, tuple(body))


def _first_span(stmts):
    """The span of the first site among ``stmts`` (else of the first statement that has one)."""
    sites = (ir.Sample, ir.Observe, ir.Factor, ir.Deterministic)
    for s in ir.walk(stmts):
        if isinstance(s, sites) and s.span is not None:
            return s.span
    return next((s.span for s in ir.walk(stmts) if s.span is not None), None)
