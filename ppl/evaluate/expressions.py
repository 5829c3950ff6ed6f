"""The evaluator's rules for expressions (``e_<kind>``), but calls: names, arrays, indexing,
operators, if-expressions and lambdas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics import index_check
from ppl.stdlib.errors import ModelError, ShapeError
from ppl.syntax import ast as A, builtins as B
from ppl.syntax.builtins.arrays import as_number

from .handlers import NoWeights
from .indexing import node_text, check_indices, index_scope
from .runtime import Collected, is_concrete, dynamic, short_message
from .values import Closure

__all__ = ["ExpressionRules", "BINOPS"]


class ExpressionRules:
    """Rules for expressions (a part of ``Evaluator``)."""

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
        if isinstance(v, Collected):
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
                if (a is not None and not is_concrete(a)) or (b is not None and not is_concrete(b)):
                    raise dynamic("a slice whose ends are known only when the model runs", i.span)
                out.append(slice(None if a is None else int(a), None if b is None else int(b)))
            else:
                v = self.expr(i, env)
                if isinstance(v, (bool, np.bool_)) or getattr(v, "dtype", None) == np.bool_:
                    # NumPy reads a boolean index as a mask: x[true] is all of x, x[false] none of it
                    raise ModelError(f"an index must be an integer, but {node_text(i)} is a boolean",
                                     span=i.span, hint=B.BOOL_INDEX_HINT)
                out.append(v if not isinstance(v, float) else int(v))
        return tuple(out)

    def e_index(self, e: A.Index, env):
        if isinstance(e.base, A.Name) and isinstance(env.get(e.base.id), Collected):
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
            if len(idx) != 1 or not is_concrete(idx[0]):
                raise dynamic("indexing a list of names with a value known only at run time", e.span)
            if not isinstance(idx[0], slice):
                check_indices(np.empty((len(base), 0)), idx, e.indices, node_text(e.base))
            return base[int(idx[0])] if not isinstance(idx[0], slice) else base[idx[0]]
        base = jnp.asarray(base)
        if len(idx) > base.ndim:
            raise ShapeError(f"{len(idx)} indices for an array with {base.ndim} dimension(s)", span=e.span)
        if not self.unchecked:
            check_indices(base, idx, e.indices, node_text(e.base))
        with index_scope(e.span, idx):
            return base[idx]

    def e_binop(self, e: A.BinOp, env):
        a = self.expr(e.left, env)
        if e.op in ("and", "or"):
            if is_concrete(a) and isinstance(a, (bool, np.bool_)) or (is_concrete(a) and jnp.ndim(a) == 0):
                if e.op == "and" and not bool(a):
                    return False
                if e.op == "or" and bool(a):
                    return True
                return _truth(self.expr(e.right, env))  # a boolean, never the operand itself
            b = self.expr(e.right, env)
            return jnp.logical_and(a, b) if e.op == "and" else jnp.logical_or(a, b)
        b = self.expr(e.right, env)
        if e.op in ARITHMETIC:  # booleans count as 0 and 1 (true + true is 2, not true)
            a, b = as_number(a), as_number(b)
        if isinstance(a, str) or isinstance(b, str):
            if e.op == "==":
                return a == b
            if e.op == "!=":
                return a != b
            if e.op == "+" and isinstance(a, str) and isinstance(b, str):
                return a + b
            raise ModelError(f"'{e.op}' does not apply to strings", span=e.span)
        exact = _exact_integer_result(e, a, b)
        try:
            out = BINOPS[e.op](a, b)
        except (TypeError, ValueError) as err:
            raise ShapeError(f"cannot apply '{e.op}' to values of shapes {jnp.shape(a)} and {jnp.shape(b)}"
                             f" ({short_message(err)})", span=e.span) from None
        except OverflowError:  # a Python integer JAX cannot hold
            out = None
        if exact is not None:
            _check_fits(e, exact, out)
        return out

    def e_unary(self, e: A.UnaryOp, env):
        v = self.expr(e.operand, env)
        if e.op == "-":
            return -as_number(v)
        if e.op == "+":
            return v
        return (not v) if isinstance(v, bool) else jnp.logical_not(v)

    def e_ifexpr(self, e: A.IfExpr, env):
        c = self.expr(e.cond, env)
        if is_concrete(c) and jnp.ndim(c) == 0:
            return self.expr(e.then if bool(c) else e.orelse, env)
        # Both branches are evaluated and the result selected elementwise. Random choices in the
        # branch not taken are then drawn from their priors and unused, which leaves the meaning
        # unchanged (they integrate out); a weight (observe, factor) in a branch would not, so one
        # makes the model dynamic.
        c = jnp.asarray(c)
        # an index guarded by the condition is evaluated in both branches: not checked there
        self.unchecked += 1
        try:
            with NoWeights(e), jax.named_scope(index_check.UNCHECKED_SCOPE):
                a, b = self.expr(e.then, env), self.expr(e.orelse, env)
        finally:
            self.unchecked -= 1
        for v in (a, b):
            if not isinstance(v, (int, float, bool, np.ndarray, jax.Array, np.generic)):
                raise dynamic("a value that is not a number (a function, a name, ...) chosen by a value "
                               "known only when the model runs", e.span)
        return jnp.where(c, a, b)

    def e_lambda(self, e: A.Lambda, env):
        return Closure("fn", e.params, e.body, dict(env), self, e)


ARITHMETIC = frozenset({"+", "-", "*", "/", "//", "%", "^", "@"})


def _truth(x):
    """The truth value of ``x`` as a boolean (elementwise on arrays), as the result of and/or."""
    if isinstance(x, (bool, int, float, np.generic)):
        return bool(x)
    if isinstance(x, np.ndarray):
        return x.astype(bool)
    return jnp.asarray(x).astype(bool)


def _integral(x) -> bool:
    """An integer value (a Python int or an integer array), read without dtype promotion rules: this
    runs at every operator the eager engine evaluates."""
    if isinstance(x, (bool, float)):
        return False
    if isinstance(x, int):
        return True
    dtype = getattr(x, "dtype", None)
    return dtype is not None and np.dtype(dtype).kind in "iu"


def _pow(a, b):
    """``a ^ b``; integers to an integer power stay integers only when the power is known not to be
    negative (``2 ^ -1`` is 0.5, as in Python and Stan, not the 0 of integer arithmetic)."""
    if _integral(a) and _integral(b) and not (is_concrete(b) and bool(np.all(np.asarray(b) >= 0))):
        return jnp.power(jnp.asarray(a, jnp.result_type(float)), b)
    return jnp.power(a, b)


def _exact_integer_result(e, a, b):
    """For integers known now (literals, data): the exact result in 64 bits, to catch what 32-bit
    arithmetic would wrap (``2000 ^ 3``) and division by zero (which JAX answers with garbage)."""
    if e.op not in ("+", "-", "*", "^", "//", "%") or not (_integral(a) and _integral(b)):
        return None
    if not (is_concrete(a) and is_concrete(b)):
        return None
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)  # magnitudes: exact to 2^53, never wrapping
    if e.op in ("//", "%"):
        if np.any(y == 0):
            raise ModelError(f"integer {'division' if e.op == '//' else 'remainder'} by zero in "
                             f"{node_text(e)}", span=e.span,
                             hint="Guard the divisor (if d == 0 then ... else n // d), or divide reals with '/'.")
        return None
    if e.op == "^":
        if np.any(y < 0):
            return None  # a real result
        with np.errstate(over="ignore"):
            return np.power(x, y)
    with np.errstate(over="ignore"):
        return {"+": np.add, "-": np.subtract, "*": np.multiply}[e.op](x, y)


def _check_fits(e, exact, out) -> None:
    """Refuse an integer result that the integers JAX computes in (32 bits, or 64 under x64) cannot hold."""
    dtype = np.dtype(jnp.result_type(int)) if out is None else np.dtype(jnp.result_type(out))
    if not np.issubdtype(dtype, np.integer):
        return
    info = np.iinfo(dtype)
    big = (exact > info.max) | (exact < info.min)
    if np.any(big):
        first = float(np.asarray(exact).reshape(-1)[int(np.argmax(np.asarray(big).reshape(-1)))])
        raise ModelError(
            f"{node_text(e)} is {first:.6g}, which does not fit in a {dtype.itemsize * 8}-bit integer "
            f"(the largest is {info.max}); integer arithmetic would wrap around to a wrong value",
            span=e.span, hint="Compute it with reals (1.0 * n ^ 3 instead of n ^ 3, or 2000.0 for 2000), or "
                              "enable 64-bit integers (jax.config.update('jax_enable_x64', True)).")


BINOPS = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: jnp.true_divide(a, b), "//": jnp.floor_divide, "%": jnp.mod, "^": _pow,
    "@": jnp.matmul, "==": lambda a, b: jnp.equal(a, b), "!=": lambda a, b: jnp.not_equal(a, b),
    "<": jnp.less, "<=": jnp.less_equal, ">": jnp.greater, ">=": jnp.greater_equal,
}
