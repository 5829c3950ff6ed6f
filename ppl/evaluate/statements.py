"""The evaluator's rules for statements (``s_<kind>``), but loops: bindings, ``~``, observations,
factors, ``return``, and ``if`` (a ``cond`` when its condition is known only at run time)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ppl.semantics import effects
from ppl.stdlib.errors import ModelError, ShapeError
from ppl.syntax import ast as A

from .facts import contains, assigned
from .handlers import ShapeHandler
from .indexing import check_indices, index_scope
from .runtime import Returned, Collected, is_concrete, tracing, dynamic, plain
from .values import Closure, MemoDraw

__all__ = ["StatementRules"]


class StatementRules:
    """Rules for statements (a part of ``Evaluator``)."""

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
                return effects.mem(MemoDraw(name, lam, dict(env), self), name=name, nest=False)
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
            check_indices(base, idx, s.indices, f"'{s.name}'")
        value = self.expr(s.value, env)
        # the array takes the value's type where it is wider (an int array given a real becomes real,
        # as a Python list would hold 0.5; NumPy would truncate it to 0)
        base = base.astype(jnp.result_type(base, value))
        with index_scope(s.span, idx):
            env[s.name] = base.at[idx].set(value)

    def s_tilde(self, s: A.Tilde, env):
        d = self.distribution(s.dist, env, s)
        name = s.name
        if s.observed:
            effects.observe(name, d, self.expr(s.target, env), span=s.span)
            return
        estimator = s.estimator.value if s.estimator is not None else None
        value = effects.sample(name, d, span=s.span, estimator=estimator)
        if isinstance(s.target, A.Index) and isinstance(env.get(name), Collected):
            env[name] = Collected(value, env[name].var)
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
        raise Returned(None if s.value is None else self.expr(s.value, env))

    def s_expr(self, s: A.ExprStmt, env):
        self.expr(s.expr, env)

    def s_if(self, s: A.If, env):
        cond = self.expr(s.cond, env)
        if is_concrete(cond):
            branch = s.then if bool(cond) else s.orelse
            if branch is not None:
                self.block(branch, env)
            return
        if contains(s.then, A.Return) or (s.orelse is not None and contains(s.orelse, A.Return)):
            raise dynamic("a `return` inside an `if` on a value known only when the model runs", s.span)
        both = set(assigned(s.then)) & set(assigned(s.orelse) if s.orelse else [])
        # a loop's choice first drawn in one branch (not yet drawn this iteration) is that branch's
        # site, not a value the `if` gives back: reading it after the `if` is the clear "used before
        # it is drawn" error
        outs = [n for n in dict.fromkeys(assigned(s.then) + (assigned(s.orelse) if s.orelse else []))
                if (n in env and not _undrawn(env[n])) or n in both]

        def run(branch):
            def go():
                local = dict(env)
                if branch is not None:
                    self.block(branch, local)
                missing = [n for n in outs if n not in local]
                if missing:
                    raise ModelError(f"'{missing[0]}' is bound in one branch of this `if` only", span=s.span)
                return tuple(jnp.asarray(plain(local[n])) for n in outs)
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
        if not tracing():
            return None
        h = effects.current_handler()
        probe = ShapeHandler(h)
        with probe:
            return jax.eval_shape(fn)


def _undrawn(value) -> bool:
    """A loop's collected choice that this iteration has not drawn yet."""
    return isinstance(value, Collected) and value.value is None
