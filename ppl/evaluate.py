"""Evaluating the ``.ppl`` AST: a checked module -> models, Python callables that perform ppl's effects.

This is an interpreter of the tree, not a compiler: evaluation gives every construct of the language its meaning in terms of the
effects of ``ppl.semantics.effects`` (``sample``, ``observe``, ``factor``,
``plate``, ``scan``, ``cond``, ``mem``, sub-model calls). The callable is then
traced by the same tracer as a decorated Python function, so a ``.ppl`` model
and its Python twin produce the same IR; when a program needs concrete values
(recursion on a random condition, a ``return`` inside an ``if`` on a random
value, a random loop bound), evaluation raises ``NeedsDynamic`` at the user's
text and the eager engine runs the same callable with concrete values.

No Python from the file is ever run: the evaluator below interprets the tree,
one rule per node kind.

Loops: a ``for`` with no carried state whose body is a straight line of
statements (no nested loops, branches, returns or calls of user functions)
runs as one vectorised ``plate`` (the loop variable is the whole index
vector); any other loop is a ``scan`` carrying the variables it rebinds, with
the names first drawn in it collected, one value per iteration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppl.model import Model
from ppl.stdlib import jax_compat as jc
from ppl.semantics import effects, index_check
from ppl.stdlib import constraints as cons
from ppl.stdlib import distributions as D
from ppl.stdlib.errors import ModelError, PPLError, ShapeError, Span
from ppl.syntax import ast as A
from ppl.syntax import builtins as B
from ppl.syntax.builtins.arrays import sizes as _sizes

__all__ = ["load", "loads", "PplModule", "evaluate_module"]


class _Return(Exception):
    def __init__(self, value):
        self.value = value


@dataclasses.dataclass
class _Collected:
    """Inside a scanned loop: the current iteration's value of a name drawn as ``x[i] ~ d``."""

    value: Any
    var: str


def _float():
    return jnp.result_type(float)


def _concrete(x) -> bool:
    return not jc.is_tracer(x)


def _endless_recursion(fn: "Closure", call: A.Call, depth: int) -> ModelError:
    """The error for a recursion that reached Python's limit, at the recursive call ``call``."""
    from ppl.semantics.recursion import BASE_CASE_HINT_PPL

    return ModelError(
        f"the function '{fn.name}' calls itself without end: {depth} nested calls deep when Python's "
        "recursion limit was reached",
        span=call.span, hint=BASE_CASE_HINT_PPL,
    )


def _tracing() -> bool:
    from ppl.trace import TraceHandler

    return isinstance(effects.current_handler(), TraceHandler)


def _dynamic(reason: str, span: Span):
    return effects.NeedsDynamic(reason, span)


def _anonymous_kind(node: A.Node) -> str | None:
    """The kind of anonymous site ``node`` makes, if it makes one."""
    if isinstance(node, A.Observe):
        named = isinstance(node.value, (A.Name, A.Index)) and A.root_name(node.value)
        return None if named else "observe"
    if isinstance(node, A.Factor):
        return "factor"
    if isinstance(node, A.Condition):
        return "condition"
    if isinstance(node, A.Call) and isinstance(node.func, A.Name) and node.func.id in ("sample", "flip"):
        return node.func.id
    return None


def anonymous_names(body: A.Node) -> dict[int, str]:
    """The addresses of the anonymous sites of one function or model body (by node identity): its
    first ``flip(...)`` is ``_flip``, the second ``_flip_2``, and so on per kind, in source order.
    Nested lambdas and definitions number their own. The names do not depend on lines or columns,
    so editing elsewhere in the file leaves them as they are."""
    counts: dict[str, int] = {}
    names: dict[int, str] = {}
    stack = [body]
    while stack:
        node = stack.pop()
        kind = _anonymous_kind(node)
        if kind is not None:
            n = counts[kind] = counts.get(kind, 0) + 1
            names[id(node)] = f"_{kind}" if n == 1 else f"_{kind}_{n}"
        stack.extend(reversed([c for c in A.children(node) if not isinstance(c, (A.Lambda, A.FunDef))]))
    return names


# ---------------------------------------------------------------------------
# Static facts about statements


def _walk_stmts(block) -> list:
    out = []
    stack = list(block.stmts) if isinstance(block, A.Block) else [block]
    while stack:
        s = stack.pop()
        out.append(s)
        for c in A.children(s):
            if isinstance(c, (A.Lambda,)):
                continue
            stack.append(c)
    return out


def _contains(block, kinds) -> bool:
    return any(isinstance(n, kinds) for n in _walk_stmts(block))


def _assigned(block) -> list[str]:
    """Names a block (re)binds, in order, not looking inside nested functions."""
    names: list[str] = []
    for n in _walk_stmts(block):
        if isinstance(n, (A.Assign, A.IndexAssign)):
            names.append(n.name)
        elif isinstance(n, A.Tilde) and not n.observed and n.name:
            names.append(n.name)
        elif isinstance(n, A.For):
            names.extend(n.collected)
    return list(dict.fromkeys(names))


def _builtin_use(f) -> "B.Builtin | str | None":
    """What a call of ``f`` calls: a registered builtin function, ``"other"`` for another builtin
    (a distribution, a support, ``flat``), None for anything else (a function of the program)."""
    if not isinstance(f, A.Name):
        return None
    spec = B.FUNCTIONS.get(f.id)
    if spec is not None:
        return spec
    if f.id in B.DISTRIBUTIONS or f.id in B.SUPPORTS or f.id == "flat":
        return "other"
    return None


def _may_sample(body) -> bool:
    for n in _walk_stmts(body):
        if isinstance(n, (A.Tilde, A.Observe, A.Factor, A.Condition)):
            return True
        if isinstance(n, A.Call):
            use = _builtin_use(n.func)
            if use is None or (isinstance(use, B.Builtin) and use.random):
                return True
    return False


def _vectorizable(body: A.Block) -> bool:
    for s in body.stmts:
        if not isinstance(s, (A.Tilde, A.Assign, A.Observe, A.Factor, A.Condition)):
            return False
    for n in _walk_stmts(body):
        if isinstance(n, (A.Lambda, A.IfExpr)):
            return False
        if isinstance(n, A.Call):
            use = _builtin_use(n.func)
            if use is None or (isinstance(use, B.Builtin) and not use.elementwise):
                return False
        if isinstance(n, A.Index) and any(isinstance(i, A.Slice) for i in n.indices):
            return False
        if isinstance(n, A.BinOp) and n.op == "@":
            return False
    return True


# ---------------------------------------------------------------------------
# Values


class Closure:
    """A function value: a ``def``, a lambda, or a builtin wrapped for first-class use."""

    def __init__(self, name: str, params, body, env: dict, evaluator: "Evaluator", node: A.Node):
        self.name = name
        self.params = tuple(p.name for p in params)
        self.body = body
        self.env = env
        self.evaluator = evaluator
        self.node = node
        self.samples = _may_sample(body)
        self.nested = True  # whether a call nests its addresses under the function's name
        self.__name__ = name

    def __repr__(self) -> str:
        return f"<function {self.name}>"

    def __call__(self, *args):
        if len(args) != len(self.params):
            raise ModelError(f"'{self.name}' takes {len(self.params)} argument(s) but was given {len(args)}",
                             span=self.node.span)
        ev = self.evaluator
        ev.depth += 1
        try:
            if ev.depth > 400 and _tracing():
                raise _dynamic(f"the function '{self.name}' recurses deeper than the compiler follows",
                               self.node.span)
            if self.samples and self.nested and effects.current_handler() is not None:
                return effects.call(self.name, self._run, *args)
            if effects.current_handler() is None:
                return run_deterministic(self._run, *args)
            return self._run(*args)
        finally:
            ev.depth -= 1

    def _run(self, *args):
        env = dict(self.env)
        env.update(zip(self.params, args))
        with self.evaluator.in_body(self.body):
            if isinstance(self.body, A.Block):
                try:
                    self.evaluator.block(self.body, env)
                except _Return as r:
                    return r.value
                return None
            return self.evaluator.expr(self.body, env)


class _MemoDraw:
    """``mem(fn(x) => sample(d))`` (or ``flip(p)``) bound to ``name``: the draw at arguments ``args``
    is the random choice ``name[args]`` itself (``strength[alice]``), not a site nested under it."""

    def __init__(self, name: str, lam: A.Lambda, env: dict, evaluator: "Evaluator"):
        self.name = self.__name__ = name
        self.params = tuple(p.name for p in lam.params)
        self.call = lam.body
        self.env = env
        self.evaluator = evaluator
        self.node = lam

    def __repr__(self) -> str:
        return f"<function {self.name}>"

    def __call__(self, *args):
        if len(args) != len(self.params):
            raise ModelError(f"'{self.name}' takes {len(self.params)} argument(s) but was given {len(args)}",
                             span=self.node.span)
        env = dict(self.env)
        env.update(zip(self.params, args))
        ev, e = self.evaluator, self.call
        address = effects.memo_label(self.name, args)
        if e.func.id == "sample":
            return effects.sample(address, ev.distribution(e.args[0], env, e), span=e.span)
        p = ev.expr(e.args[0], env) if e.args else 0.5
        return effects.sample(address, D.Bernoulli(probs=p), span=e.span) == 1


# ---------------------------------------------------------------------------
# The evaluator


class Evaluator:
    """Interprets a checked module's definitions; one rule per node kind."""

    def __init__(self, module: A.Module):
        self.module = module
        self.globals: dict[str, Any] = {}
        self.bodies: list[A.Node] = []  # the function and model bodies being run, innermost last
        self._anonymous: dict[int, dict[int, str]] = {}
        self.depth = 0
        self.unchecked = 0  # inside both branches of an if-expression on a vector or run-time value
        self.stmt_rules = {
            A.Block: self.s_block, A.Assign: self.s_assign, A.IndexAssign: self.s_index_assign,
            A.Tilde: self.s_tilde, A.Observe: self.s_observe, A.Factor: self.s_factor,
            A.Condition: self.s_condition, A.Return: self.s_return, A.If: self.s_if, A.For: self.s_for,
            A.ExprStmt: self.s_expr,
        }
        self.expr_rules = {
            A.Num: self.e_num, A.Bool: self.e_bool, A.Str: self.e_str, A.Name: self.e_name,
            A.Array: self.e_array, A.Index: self.e_index, A.Call: self.e_call, A.BinOp: self.e_binop,
            A.UnaryOp: self.e_unary, A.IfExpr: self.e_ifexpr, A.Lambda: self.e_lambda,
        }

    # -- anonymous sites ----------------------------------------------------------
    @contextlib.contextmanager
    def in_body(self, body: A.Node):
        self.bodies.append(body)
        try:
            yield
        finally:
            self.bodies.pop()

    def site_name(self, kind: str, node: A.Node) -> str:
        """The address of the anonymous site ``node`` (see :func:`anonymous_names`)."""
        body = self.bodies[-1] if self.bodies else self.module
        table = self._anonymous.get(id(body))
        if table is None:
            table = self._anonymous[id(body)] = anonymous_names(body)
        return table.get(id(node), f"_{kind}")

    # -- statements -------------------------------------------------------------
    def block(self, block: A.Block, env: dict) -> None:
        for s in block.stmts:
            self.stmt(s, env)

    def stmt(self, s, env: dict) -> None:
        try:
            with _statement_scope(s.span):
                self.stmt_rules[type(s)](s, env)
        except (_Return, PPLError, effects.NeedsDynamic, effects.MemoOnTracedValue, RecursionError):
            raise
        except jc.CONCRETIZATION_ERRORS:
            raise _dynamic("this statement needs a value that is only known when the model runs",
                           s.span) from None
        except (TypeError, ValueError, IndexError, ZeroDivisionError) as err:
            raise ModelError(f"this statement could not be evaluated: {_short(err)}", span=s.span) from None

    def s_block(self, s: A.Block, env):
        self.block(s, env)

    def s_assign(self, s: A.Assign, env):
        env[s.name] = self.named_value(s.value, s.name, env)

    def named_value(self, node, name: str, env):
        """The value of ``node``, bound to ``name``: a lambda takes the name (``pulling = fn(...) => ...``
        is the function 'pulling'), and so does a memoised lambda (``strength = mem(fn(p) => ...)``), so
        that the addresses of their random choices read ``pulling/...`` and ``strength[alice]/...``."""
        if isinstance(node, A.Lambda):
            return Closure(name, node.params, node.body, dict(env), self, node)
        if self._is_builtin_call(node, "param", env):  # m = param(init [, support]): the parameter 'm'
            args = [self.expr(a, env) for a in node.args]
            return effects.param(name, args[0], constraint=args[1] if len(args) > 1 else None, span=node.span)
        if (isinstance(node, A.Call) and isinstance(node.func, A.Name) and node.func.id == "mem"
                and node.func.id not in env and node.func.id not in self.globals
                and len(node.args) == 1 and isinstance(node.args[0], A.Lambda)):
            lam = node.args[0]
            body = lam.body
            if (isinstance(body, A.Call) and isinstance(body.func, A.Name) and body.func.id in ("sample", "flip")
                    and body.func.id not in env and body.func.id not in self.globals
                    and not ({p.name for p in lam.params} & {body.func.id})):
                # one anonymous draw: the draw itself is named strength[alice]
                return effects.mem(_MemoDraw(name, lam, dict(env), self), name=name, nest=False)
            fn = Closure(name, lam.params, lam.body, dict(env), self, lam)
            fn.nested = False  # its draws are nested under strength[alice] by mem itself
            return effects.mem(fn, name=name)
        return self.expr(node, env)

    def _is_builtin_call(self, node, fname: str, env) -> bool:
        return (isinstance(node, A.Call) and isinstance(node.func, A.Name) and node.func.id == fname
                and fname not in env and fname not in self.globals)

    def s_index_assign(self, s: A.IndexAssign, env):
        base = env.get(s.name)
        if base is None:
            raise ModelError(f"'{s.name}' must be bound before its entries are set", span=s.span)
        idx = self.indices(s.indices, env, s)
        base = jnp.asarray(base)
        if not self.unchecked:
            _check_indices(base, idx, s.indices, f"'{s.name}'")
        value = self.expr(s.value, env)
        with _index_scope(s.span, idx):
            env[s.name] = base.at[idx].set(value)

    def s_tilde(self, s: A.Tilde, env):
        d = self.distribution(s.dist, env, s)
        name = s.name
        if s.observed:
            effects.observe(name, d, self.expr(s.target, env), span=s.span)
            return
        estimator = s.estimator.value if s.estimator is not None else None
        value = effects.sample(name, d, span=s.span, estimator=estimator)
        if isinstance(s.target, A.Index) and isinstance(env.get(name), _Collected):
            env[name] = _Collected(value, env[name].var)
        else:
            env[name] = value

    def s_observe(self, s: A.Observe, env):
        d = self.distribution(s.dist, env, s)
        root = A.root_name(s.value) if isinstance(s.value, (A.Name, A.Index)) else None
        effects.observe(root or self.site_name("observe", s), d, self.expr(s.value, env), span=s.span)

    def s_factor(self, s: A.Factor, env):
        effects.factor(self.site_name("factor", s), self.expr(s.log_weight, env), span=s.span)

    def s_condition(self, s: A.Condition, env):
        pred = self.expr(s.pred, env)
        effects.factor(self.site_name("condition", s), jnp.where(jnp.asarray(pred), 0.0, -jnp.inf), span=s.span)

    def s_return(self, s: A.Return, env):
        raise _Return(None if s.value is None else self.expr(s.value, env))

    def s_expr(self, s: A.ExprStmt, env):
        self.expr(s.expr, env)

    def s_if(self, s: A.If, env):
        cond = self.expr(s.cond, env)
        if _concrete(cond):
            branch = s.then if bool(cond) else s.orelse
            if branch is not None:
                self.block(branch, env)
            return
        if _contains(s.then, A.Return) or (s.orelse is not None and _contains(s.orelse, A.Return)):
            raise _dynamic("a `return` inside an `if` on a value known only when the model runs", s.span)
        outs = [n for n in dict.fromkeys(_assigned(s.then) + (_assigned(s.orelse) if s.orelse else []))
                if n in env or (n in _assigned(s.then) and s.orelse is not None and n in _assigned(s.orelse))]

        def run(branch):
            def go():
                local = dict(env)
                if branch is not None:
                    self.block(branch, local)
                missing = [n for n in outs if n not in local]
                if missing:
                    raise ModelError(f"'{missing[0]}' is bound in one branch of this `if` only", span=s.span)
                return tuple(jnp.asarray(_plain(local[n])) for n in outs)
            return go

        result = self.branches(jnp.asarray(cond), run(s.then), run(s.orelse), s)
        env.update(zip(outs, result))

    def branches(self, pred, then_fn, else_fn, node):
        """``cond`` with the two branches' results promoted to common types."""
        shapes = self.dry_run(lambda: (then_fn(), else_fn()))
        if shapes is not None:
            (ta, tb) = shapes
            types = [jnp.result_type(a.dtype, b.dtype) for a, b in zip(ta, tb)]
            for a, b in zip(ta, tb):
                if a.shape != b.shape:
                    raise ShapeError(f"the branches of this `if` give values of shapes {a.shape} and {b.shape}",
                                     span=node.span)
        else:
            types = None

        def cast(fn):
            def go():
                out = fn()
                return out if types is None else tuple(jnp.asarray(o, t) for o, t in zip(out, types))
            return go

        if pred.shape != ():
            raise ShapeError(f"an `if` needs one boolean, but its condition has shape {pred.shape}",
                             span=node.span)
        return effects.cond(pred, cast(then_fn), cast(else_fn), span=node.span)

    def dry_run(self, fn):
        """The shapes and dtypes ``fn()`` would produce, without performing its effects."""
        if not _tracing():
            return None
        h = effects.current_handler()
        probe = _ShapeHandler(h)
        with probe:
            return jax.eval_shape(fn)

    def s_for(self, s: A.For, env):
        start, stop = self.expr(s.start, env), self.expr(s.stop, env)
        if not (_concrete(start) and _concrete(stop)):
            raise _dynamic("the bounds of this loop are known only when the model runs", s.span)
        start, stop = int(start), int(stop)
        n = max(0, stop - start)
        if n == 0:
            return
        if not s.carried and _vectorizable(s.body) and self.iterations_are_scalar(s, env, start):
            self.plate_loop(s, env, start, n)
        else:
            self.scan_loop(s, env, start, n)

    def iterations_are_scalar(self, s: A.For, env, start) -> bool:
        """Whether one iteration's random choices are scalars (batch-wise), so a plate can stack them.

        A plate puts the iterations on the rightmost batch axis (NumPyro's rule). An iteration
        whose sites have batch shape of their own (``y[g] ~ normal(theta[g], sigma)`` with
        ``y[g]`` a row of a matrix) would collide with it; such loops run as a scan, which gives
        every iteration its own shapes. One iteration is run for its shapes only, with no effect.
        """
        h = effects.current_handler()
        probe = _SiteShapes(h)
        local = dict(env)
        local[s.var] = jnp.int32(start)
        for name in s.collected:  # as in a scan step: `x[i]` is this iteration's draw of x
            local[name] = _Collected(None, s.var)
        with probe:
            jax.eval_shape(lambda: (self.block(s.body, dict(local)), 0)[1])
        return all(len(shape) <= probe.depth for shape in probe.batch_shapes)

    def plate_loop(self, s: A.For, env, start, n):
        h = effects.current_handler()
        depth = len(h.plates) if h is not None else 0
        local = dict(env)
        local[s.var] = (start + jnp.arange(n)).reshape((n,) + (1,) * depth)
        with effects.plate(s.var, n, span=s.span):
            self.block(s.body, local)
        for name in s.collected:
            if name in local:
                env[name] = local[name]

    def scan_loop(self, s: A.For, env, start, n):
        carried = [c for c in s.carried if c in env]
        collected = list(s.collected)

        def step(carry, i):
            local = dict(env)
            local.update(zip(carried, carry))
            local[s.var] = i
            for name in collected:
                local[name] = _Collected(None, s.var)
            self.block(s.body, local)
            ys = []
            for name in collected:
                v = local.get(name)
                v = v.value if isinstance(v, _Collected) else v
                if v is None:
                    raise ModelError(f"'{name}' is not drawn in every iteration of this loop", span=s.span)
                ys.append(jnp.asarray(v))
            return tuple(jnp.asarray(local[c]) for c in carried), tuple(ys)

        init = tuple(jnp.asarray(_plain(env[c])) for c in carried)
        xs = start + jnp.arange(n)
        if _tracing():
            for _ in range(3):  # promote the carry to the types the body produces
                shapes = self.dry_run(lambda: step(init, xs[0]))
                out = shapes[0]
                new = tuple(jnp.asarray(c, jnp.result_type(c.dtype, o.dtype)) for c, o in zip(init, out))
                if all(a.dtype == b.dtype for a, b in zip(new, init)) and all(not getattr(a, "weak_type", False)
                                                                           for a in new):
                    break
                init = tuple(jnp.array(c, dtype=c.dtype) for c in new)
            for c, o in zip(init, out):
                if c.shape != o.shape:
                    raise ShapeError(f"a variable carried by this loop changes shape from {c.shape} to {o.shape}",
                                     span=s.span)

        def typed_step(carry, i):
            new, ys = step(carry, i)
            return tuple(jnp.asarray(v, c.dtype) for v, c in zip(new, carry)), ys

        final, ys = effects.scan(typed_step, init, xs, span=s.span)
        env.update(zip(carried, final))
        env.update(zip(collected, ys if ys is not None else ()))

    # -- expressions ------------------------------------------------------------
    def expr(self, e, env):
        return self.expr_rules[type(e)](e, env)

    def e_num(self, e, env):
        return e.value

    def e_bool(self, e, env):
        return e.value

    def e_str(self, e, env):
        return e.value

    def e_name(self, e: A.Name, env):
        if e.id in env:
            v = env[e.id]
        elif e.id in self.globals:
            v = self.globals[e.id]
        elif e.id in B.CONSTANTS:
            return B.CONSTANTS[e.id].value
        elif e.id in B.SUPPORTS and not B.SUPPORTS[e.id].args:
            return B.SUPPORTS[e.id].impl
        elif e.id in B.FUNCTIONS and not B.FUNCTIONS[e.id].form:
            return B.FUNCTIONS[e.id].impl
        else:
            raise ModelError(f"the name '{e.id}' is not defined", span=e.span)
        if isinstance(v, _Collected):
            if v.value is None:
                raise ModelError(f"'{e.id}' is used before it is drawn in this iteration", span=e.span)
            return v.value
        return v

    def e_array(self, e: A.Array, env):
        items = [self.expr(i, env) for i in e.items]
        if items and all(isinstance(i, str) for i in items):
            return list(items)
        return jnp.stack([jnp.asarray(i) for i in items]) if items else jnp.zeros((0,))

    def indices(self, indices, env, node):
        out = []
        for i in indices:
            if isinstance(i, A.Slice):
                a = None if i.start is None else self.expr(i.start, env)
                b = None if i.stop is None else self.expr(i.stop, env)
                if (a is not None and not _concrete(a)) or (b is not None and not _concrete(b)):
                    raise _dynamic("a slice whose ends are known only when the model runs", i.span)
                out.append(slice(None if a is None else int(a), None if b is None else int(b)))
            else:
                v = self.expr(i, env)
                out.append(v if not isinstance(v, float) else int(v))
        return tuple(out)

    def e_index(self, e: A.Index, env):
        if isinstance(e.base, A.Name) and isinstance(env.get(e.base.id), _Collected):
            cur = env[e.base.id]
            if len(e.indices) == 1 and isinstance(e.indices[0], A.Name) and e.indices[0].id == cur.var:
                if cur.value is None:
                    raise ModelError(f"'{e.base.id}[{cur.var}]' is used before it is drawn", span=e.span)
                return cur.value
            raise ModelError(f"inside this loop only '{e.base.id}[{cur.var}]' (this iteration's value) is known",
                             span=e.span)
        base = self.expr(e.base, env)
        idx = self.indices(e.indices, env, e)
        if isinstance(base, (list, tuple)):
            if len(idx) != 1 or not _concrete(idx[0]):
                raise _dynamic("indexing a list of names with a value known only at run time", e.span)
            if not isinstance(idx[0], slice):
                _check_indices(np.empty((len(base), 0)), idx, e.indices, _node_text(e.base))
            return base[int(idx[0])] if not isinstance(idx[0], slice) else base[idx[0]]
        base = jnp.asarray(base)
        if len(idx) > base.ndim:
            raise ShapeError(f"{len(idx)} indices for an array with {base.ndim} dimension(s)", span=e.span)
        if not self.unchecked:
            _check_indices(base, idx, e.indices, _node_text(e.base))
        with _index_scope(e.span, idx):
            return base[idx]

    def e_binop(self, e: A.BinOp, env):
        a = self.expr(e.left, env)
        if e.op in ("and", "or"):
            if _concrete(a) and isinstance(a, (bool, np.bool_)) or (_concrete(a) and jnp.ndim(a) == 0):
                if e.op == "and" and not bool(a):
                    return False
                if e.op == "or" and bool(a):
                    return True
                return self.expr(e.right, env)
            b = self.expr(e.right, env)
            return jnp.logical_and(a, b) if e.op == "and" else jnp.logical_or(a, b)
        b = self.expr(e.right, env)
        if isinstance(a, str) or isinstance(b, str):
            if e.op == "==":
                return a == b
            if e.op == "!=":
                return a != b
            if e.op == "+" and isinstance(a, str) and isinstance(b, str):
                return a + b
            raise ModelError(f"'{e.op}' does not apply to strings", span=e.span)
        try:
            return _BINOPS[e.op](a, b)
        except (TypeError, ValueError) as err:
            raise ShapeError(f"cannot apply '{e.op}' to values of shapes {jnp.shape(a)} and {jnp.shape(b)}"
                             f" ({_short(err)})", span=e.span) from None

    def e_unary(self, e: A.UnaryOp, env):
        v = self.expr(e.operand, env)
        if e.op == "-":
            return -v if not isinstance(v, bool) else -int(v)
        if e.op == "+":
            return v
        return (not v) if isinstance(v, bool) else jnp.logical_not(v)

    def e_ifexpr(self, e: A.IfExpr, env):
        c = self.expr(e.cond, env)
        if _concrete(c) and jnp.ndim(c) == 0:
            return self.expr(e.then if bool(c) else e.orelse, env)
        # Both branches are evaluated and the result selected elementwise. Random choices in the
        # branch not taken are then drawn from their priors and unused, which leaves the meaning
        # unchanged (they integrate out); a weight (observe, factor) in a branch would not, so one
        # makes the model dynamic.
        c = jnp.asarray(c)
        # an index guarded by the condition is evaluated in both branches: not checked there
        self.unchecked += 1
        try:
            with _NoWeights(e), jax.named_scope(index_check.UNCHECKED_SCOPE):
                a, b = self.expr(e.then, env), self.expr(e.orelse, env)
        finally:
            self.unchecked -= 1
        for v in (a, b):
            if not isinstance(v, (int, float, bool, np.ndarray, jax.Array, np.generic)):
                raise _dynamic("a value that is not a number (a function, a name, ...) chosen by a value "
                               "known only when the model runs", e.span)
        return jnp.where(c, a, b)

    def e_lambda(self, e: A.Lambda, env):
        return Closure("fn", e.params, e.body, dict(env), self, e)

    # -- calls ------------------------------------------------------------------------
    def e_call(self, e: A.Call, env):
        f = e.func
        if isinstance(f, A.Name) and f.id not in env and f.id not in self.globals:
            name = f.id
            if name in B.DISTRIBUTIONS:
                return B.DISTRIBUTIONS[name].construct([self.expr(a, env) for a in e.args], e.span)
            if name == "flat":
                return self.make_flat(e, env)
            if name == "param":
                raise ModelError("param(...) must be the whole right side of an assignment, which names it",
                                 span=e.span, hint="Write m = param(0.0) on its own line, then use m.")
            if name in B.SUPPORTS:
                return B.SUPPORTS[name].impl(*[self.expr(a, env) for a in e.args])
            spec = B.FUNCTIONS.get(name)
            if spec is not None and spec.form:
                return spec.impl(self, e, env)
            if spec is not None:
                return spec.impl(*[self.expr(a, env) for a in e.args])
        fn = self.expr(f, env)
        args = [self.expr(a, env) for a in e.args]
        if isinstance(fn, Model):
            return fn(*args)
        if isinstance(fn, Closure):
            try:
                return fn(*args)
            except RecursionError:
                if _tracing():  # the tracer gives up on the static form and the eager engine runs it
                    raise
                raise _endless_recursion(fn, e, self.depth) from None
        if callable(fn):
            return fn(*args)
        raise ModelError(f"this is a {type(fn).__name__}, not a function, so it cannot be called", span=e.span)

    def distribution(self, node, env, site):
        d = self.expr(node, env)
        if not isinstance(d, D.Distribution):
            raise ModelError(f"the right side of `~` must be a distribution, but it is a {type(d).__name__}",
                             span=node.span)
        return d

    def make_flat(self, e: A.Call, env):
        support = self.expr(e.args[0], env)
        if not isinstance(support, cons.Constraint):
            raise ModelError("flat(...) needs a support such as positive or interval(0, 1) first", span=e.span)
        sizes = _sizes(*[self.expr(a, env) for a in e.args[1:]])
        return D.flat(support, shape=sizes)


def _may_sample_expr(e) -> bool:
    return _may_sample(A.Block(stmts=(A.ExprStmt(expr=e),)))


def _plain(v):
    return v.value if isinstance(v, _Collected) else v


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _pow(a, b):
    return jnp.power(a, b)


_BINOPS = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: jnp.true_divide(a, b), "//": jnp.floor_divide, "%": jnp.mod, "^": _pow,
    "@": jnp.matmul, "==": lambda a, b: jnp.equal(a, b), "!=": lambda a, b: jnp.not_equal(a, b),
    "<": jnp.less, "<=": jnp.less_equal, ">": jnp.greater, ">=": jnp.greater_equal,
}


class _NoWeights:
    """While evaluating both arms of a traced ``if`` expression, a weight must not occur."""

    def __init__(self, node):
        self.node = node
        self.handler = None

    def __enter__(self):
        h = effects.current_handler()
        self.handler = h
        if h is None:
            return self
        inner = h.site
        node = self.node

        def site(s):
            if s.kind in ("observe", "factor"):
                raise _dynamic("an observation or factor inside an `if` expression on a value known only "
                               "when the model runs", node.span)
            return inner(s)

        self.inner = inner
        h.site = site
        return self

    def __exit__(self, *exc):
        if self.handler is not None:
            self.handler.site = self.inner
        return False


class _ShapeHandler(effects.Handler):
    """A probe: draws zeros of the right shape and records nothing (for type inference)."""

    index_loops = False

    def __init__(self, outer):
        super().__init__()
        self.scope = list(getattr(outer, "scope", []))
        self.plates = list(getattr(outer, "plates", []))

    def site(self, site):
        if site.kind == "sample":
            d = site.dist
            shape = tuple(d.batch_shape) + tuple(d.event_shape)
            return jnp.zeros(shape, jnp.int32 if getattr(d, "is_discrete", False) else _float())
        if site.kind == "deterministic":
            return site.value
        return None

    def claim(self, address, span):
        return None

    def run_scan(self, step, init, xs, length, reverse, span):
        return jax.lax.scan(step, init, xs, length=length, reverse=reverse)

    def run_cond(self, pred, true_fn, false_fn, operands, span):
        if not jc.is_tracer(pred):
            return super().run_cond(pred, true_fn, false_fn, operands, span)
        return jax.lax.cond(pred, true_fn, false_fn, *operands)


class _Deterministic(_ShapeHandler):
    """Runs a deterministic function outside a model run (an ODE right-hand side, a ``def`` called
    from Python): control flow becomes ``lax.cond``/``lax.scan``; a random choice is an error."""

    def __init__(self):
        super().__init__(None)

    def site(self, site):
        if site.kind == "deterministic":
            return site.value
        raise ModelError(
            f"a {site.kind} statement ran inside a function called outside the model "
            "(an ODE right-hand side must be deterministic)",
            span=site.span,
            hint="Draw the random values in the model and pass them to the function as arguments.",
        )


def run_deterministic(fn, *args):
    """``fn(*args)`` under a handler that gives ``if`` and ``for`` their plain JAX meaning."""
    with _Deterministic():
        return fn(*args)


class _SiteShapes(_ShapeHandler):
    """A probe that also records each site's batch shape (value or distribution, without event axes)."""

    def __init__(self, outer):
        super().__init__(outer)
        self.depth = len(self.plates)
        self.batch_shapes: list[tuple] = []

    def site(self, site):
        d = site.dist
        if d is not None:
            event = tuple(getattr(d, "event_shape", ()))
            self.batch_shapes.append(tuple(getattr(d, "batch_shape", ())))
            if site.kind == "observe" and site.value is not None:
                shape = tuple(jnp.shape(site.value))
                self.batch_shapes.append(shape[: len(shape) - len(event)] if event else shape)
        return super().site(site)


# ---------------------------------------------------------------------------
# Checked indexing (see ppl.semantics.index_check)


def _node_text(node) -> str:
    """The source text of ``node`` when it lies on one line (else a neutral word)."""
    sp = node.span
    line = sp.source_line(sp.line) if sp is not None else None
    if line is None or sp.end_line not in (None, sp.line) or sp.end_column is None:
        return "the array"
    return f"'{line[sp.column - 1: sp.end_column]}'"


def _check_indices(base, idx, nodes, what: str) -> None:
    """An index known now (a number, a plate's index vector) must lie inside its axis."""
    shape = jnp.shape(base)
    for k, (i, node) in enumerate(zip(idx, nodes)):
        if isinstance(i, slice) or i is None or not _concrete(i) or k >= len(shape):
            continue
        v = np.asarray(i)
        if v.dtype == np.bool_ or not np.issubdtype(v.dtype, np.integer) or v.size == 0:
            continue
        n = int(shape[k])
        bad = (v < -n) | (v >= n)
        if bad.any():
            first = int(v.reshape(-1)[int(np.argmax(bad.reshape(-1)))])
            viol = index_check.Violation(first, k, n, 1, tuple(shape))
            where = "" if v.ndim == 0 else " (one of the values this index takes)"
            raise index_check.IndexRangeError(index_check.violation_message(viol, what) + where,
                                              span=node.span, hint=index_check.HINT)


def _statement_scope(span):
    """Carries the statement's span into the jaxpr, so every IR operation it makes has its span."""
    if span is None or not _tracing():
        return contextlib.nullcontext()
    return jax.named_scope(index_check.statement_scope(span))


def _index_scope(span, idx):
    """Carries the user's span into the jaxpr of an index known only when the model runs."""
    if span is None or not _tracing() or all(isinstance(i, slice) or _concrete(i) for i in idx):
        return contextlib.nullcontext()
    return jax.named_scope(index_check.span_scope(span))


# ---------------------------------------------------------------------------
# Modules


def _convert_param(value, ann: A.TypeAnn | None):
    if ann is None or value is None:
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if ann.rank == 0:
        if ann.base == "int" and _concrete(value) and np.ndim(value) == 0:
            return int(value)
        if ann.base == "bool" and _concrete(value) and np.ndim(value) == 0:
            return bool(value)
        return jnp.asarray(value, jnp.int32 if ann.base == "int" else _float())
    dtype = {"int": jnp.int32, "real": _float(), "bool": jnp.bool_}[ann.base]
    return jnp.asarray(value, dtype)


class PplModule:
    """What ``ppl.load`` returns: the file's models, functions and constants as attributes."""

    def __init__(self, file: str, models: dict, functions: dict, constants: dict, ast_module: A.Module):
        self.file = file
        self.models = models
        self.functions = functions
        self.constants = constants
        self.ast = ast_module

    def __getattr__(self, name):
        for table in ("models", "functions", "constants"):
            d = self.__dict__.get(table, {})
            if name in d:
                return d[name]
        raise AttributeError(f"'{self.__dict__.get('file', '?')}' defines no model, function or constant "
                             f"named '{name}'")

    def __dir__(self):
        return sorted(set(self.models) | set(self.functions) | set(self.constants))

    def __repr__(self):
        return f"<ppl module {self.file}: models {list(self.models)}>"


def _all_items(module: A.Module, seen=None) -> list:
    """Items of a module, imported modules' definitions first (each file once)."""
    seen = set() if seen is None else seen
    items = []
    for it in module.items:
        if isinstance(it, A.Import) and it.module is not None:
            key = it.module.file
            if key not in seen:
                seen.add(key)
                items.extend(_all_items(it.module, seen))
        elif not isinstance(it, A.Import):
            items.append(it)
    return items


def evaluate_module(module: A.Module) -> PplModule:
    """Evaluate a checked module's constants and build its models and functions."""
    ev = Evaluator(module)
    models, functions, constants = {}, {}, {}
    for item in _all_items(module):
        if isinstance(item, A.Assign):
            with effects_free(item):
                value = ev.expr(item.value, dict(ev.globals))
            ev.globals[item.name] = value
            constants[item.name] = value
        elif isinstance(item, A.FunDef):
            fn = Closure(item.name, item.params, item.body, ev.globals, ev, item)
            ev.globals[item.name] = fn
            functions[item.name] = fn
        elif isinstance(item, A.ModelDef):
            m = _make_model(item, ev)
            ev.globals[item.name] = m
            models[item.name] = m
        elif isinstance(item, A.ModelDo):
            m = _make_intervened(item, ev)
            ev.globals[item.name] = m
            models[item.name] = m
    return PplModule(module.file, models, functions, constants, module)


def _make_intervened(item: A.ModelDo, ev: "Evaluator") -> Model:
    """``model m2 = m.do(...)`` (``m.do({...})``), ``m.condition(...)`` (``m.condition({...})``) or
    ``m.counterfactual(...).do(...)`` (``ppl.counterfactual(m, observed={...}, do={...})``), named ``m2``."""
    base = ev.globals.get(item.base)
    if not isinstance(base, Model):
        raise ModelError(f"'{item.base}' is not a model: .{item.kind}(...) needs a model", span=item.span)
    table = _derived_table(item.items, ev, item.kind == "do")
    if item.kind == "condition":
        m = base.condition(table)
    elif item.kind == "counterfactual":
        from ppl.counterfactual import counterfactual

        m = counterfactual(base, observed=_derived_table(item.given, ev, False), do=table)
    else:
        m = base.do(table)
    m.name = item.name
    m.source = item
    return m


def _derived_table(items, ev: "Evaluator", mechanisms: bool) -> dict:
    """The values (and, in ``.do``, new distributions) of a derived model's items, by site."""
    from ppl.stdlib.distributions.base import Distribution

    table = {}
    for it in items:
        with effects_free(it):
            value = ev.expr(it.value, dict(ev.globals))
        if it.draw and not isinstance(value, Distribution):
            raise ModelError(f"'{it.site} ~ ...' in .do(...) needs a distribution", span=it.span)
        if isinstance(value, Distribution) and not (mechanisms and it.draw):
            raise ModelError(f"'{it.site} = ...' needs a value, not a distribution", span=it.span)
        table[it.site] = value
    return table


class effects_free:
    """Top-level constants must not make random choices."""

    def __init__(self, node):
        self.node = node

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if isinstance(err, ModelError) and "outside a model run" in err.message:
            raise ModelError("a top-level binding cannot make random choices; move it into a model",
                             span=self.node.span) from None
        return False


def _make_model(item: A.ModelDef, ev: Evaluator) -> Model:
    params = item.params

    def run(*args, **kwargs):
        if len(args) + len(kwargs) != len(params):
            raise ModelError(f"the model '{item.name}' takes {len(params)} argument(s) "
                             f"({', '.join(p.name for p in params)}), but was given {len(args) + len(kwargs)}",
                             span=item.span)
        env = dict(zip([p.name for p in params], args))
        env.update(kwargs)
        for p in params:
            env[p.name] = _convert_param(env[p.name], p.annotation)
        try:
            ev.block(item.body, env)
        except _Return as r:
            return r.value
        return None

    run.__name__ = item.name
    model = Model(run, item.name, source=item)
    model.param_names = [p.name for p in params]
    model.coerce = functools.partial(_coerce_data, params)
    return model


def _coerce_data(params, args, kwargs):
    """Array data as the declared element type, before tracing (``real[]`` given ``[28, 8]`` is float).

    The data are checked against the annotations first (``ppl.syntax.data_check``): ``0.5`` for an
    ``int[]`` is an error at the parameter, never truncated to 0."""
    from ppl.syntax import data_check

    given = dict(zip([p.name for p in params], args))
    given.update({k: v for k, v in kwargs.items() if k in {p.name for p in params}})
    data_check.raise_for_data(params, given)

    def one(value, ann):
        if ann is None or ann.rank == 0 or value is None or _is_tracer_like(value):
            return value
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return value
        dtype = {"int": np.int32, "real": np.dtype(_float()), "bool": np.bool_}[ann.base]
        try:
            return np.asarray(value, dtype)
        except (TypeError, ValueError):
            return value  # left for the checks inside the model, which name the argument
    names = [p.name for p in params]
    anns = {p.name: p.annotation for p in params}
    args = tuple(one(v, anns[n]) for v, n in zip(args, names)) + tuple(args[len(names):])
    kwargs = {k: one(v, anns.get(k)) for k, v in kwargs.items()}
    return args, kwargs


def _is_tracer_like(value) -> bool:
    return jc.is_tracer(value)


def _check(module: A.Module, data_shapes=None) -> None:
    from ppl.syntax.check import CheckErrors, check

    errors = check(module, data_shapes)
    if errors:
        raise CheckErrors(errors)


def loads(source: str, file: str = "<string>") -> PplModule:
    """Parse, check and evaluate ``.ppl`` source text (imports resolve against the working folder)."""
    from ppl.syntax import parser as P
    from ppl.syntax.imports import resolve_imports

    module = P.parse(source, file)
    base = pathlib.Path(file).resolve().parent if file != "<string>" else pathlib.Path.cwd()
    # the standard library is found through the package (ppl.stdlib), installed or editable
    module = resolve_imports(module, base)
    _check(module)
    return evaluate_module(module)


def load(path) -> PplModule:
    """Load a ``.ppl`` file: its models (``ppl.Model``s), functions and constants."""
    path = pathlib.Path(path)
    if path.suffix != ".ppl":
        raise ModelError(f"{path} is not a .ppl file")
    text = path.read_text()
    return loads(text, str(path))
