"""The evaluator's rule for calls: builtins through the registry (``ppl.syntax.builtins``: a form
gets the evaluator, a function the argument values), distributions, ``flat``, supports, and
function values and models of the program."""

from __future__ import annotations

from ppl.model import Model
from ppl.stdlib import constraints as cons, distributions as D
from ppl.stdlib.errors import ModelError
from ppl.syntax import ast as A, builtins as B
from ppl.syntax.builtins.arrays import sizes

from .runtime import endless_recursion, tracing
from .values import Closure

__all__ = ["CallRules"]


class CallRules:
    """Rules for calls (a part of ``Evaluator``)."""

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
                if tracing():  # the tracer gives up on the static form and the eager engine runs it
                    raise
                raise endless_recursion(fn, e, self.depth) from None
        if callable(fn):
            return fn(*args)
        raise ModelError(f"this is {_value_words(fn)}, not a function, so it cannot be called", span=e.span)

    def distribution(self, node, env, site):
        d = self.expr(node, env)
        if not isinstance(d, D.Distribution):
            raise ModelError(f"the right side of `~` must be a distribution, but it is {_value_words(d)}",
                             span=node.span)
        return d

    def make_flat(self, e: A.Call, env):
        support = self.expr(e.args[0], env)
        if not isinstance(support, cons.Constraint):
            raise ModelError("flat(...) needs a support such as positive or interval(0, 1) first", span=e.span)
        shape = sizes(*[self.expr(a, env) for a in e.args[1:]])
        return D.flat(support, shape=shape)


def _value_words(v) -> str:
    """A value as a user would name it (never a JAX tracer's class name)."""
    shape = getattr(v, "shape", None)
    if shape is not None:
        return "a number" if shape == () else f"an array of shape {tuple(shape)}"
    if isinstance(v, (bool, int, float)):
        return "a number"
    if isinstance(v, (list, tuple)):
        return "a list"
    if isinstance(v, str):
        return "a string"
    return f"a {type(v).__name__}"
