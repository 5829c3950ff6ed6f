"""Function values of a program: ``Closure`` (a ``def`` or a lambda) and ``MemoDraw`` (a memoised
anonymous draw, ``strength = mem(fn(p) => sample(d))``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ppl.semantics import effects
from ppl.stdlib import distributions as D
from ppl.stdlib.errors import ModelError
from ppl.syntax import ast as A

from .facts import may_sample
from .handlers import run_deterministic
from .runtime import Returned, tracing, dynamic

if TYPE_CHECKING:
    from .evaluator import Evaluator

__all__ = ["Closure", "MemoDraw"]


class _FunctionValue:
    """What every function value of a program has: a name, parameters and the node it comes from."""

    name: str
    params: tuple[str, ...]
    node: A.Node

    def __repr__(self) -> str:
        return f"<function {self.name}>"

    def _check_arity(self, args) -> None:
        if len(args) != len(self.params):
            raise ModelError(f"'{self.name}' takes {len(self.params)} argument(s) but was given {len(args)}",
                             span=self.node.span)


class Closure(_FunctionValue):
    """A function value: a ``def``, a lambda, or a builtin wrapped for first-class use."""

    def __init__(self, name: str, params, body, env: dict, evaluator: Evaluator, node: A.Node):
        self.name = name
        self.params = tuple(p.name for p in params)
        self.body = body
        self.env = env
        self.evaluator = evaluator
        self.node = node
        self.samples = may_sample(body)
        self.nested = True  # whether a call nests its addresses under the function's name
        self.__name__ = name

    def __call__(self, *args):
        self._check_arity(args)
        ev = self.evaluator
        ev.depth += 1
        try:
            if ev.depth > 400 and tracing():
                raise dynamic(f"the function '{self.name}' recurses deeper than the compiler follows",
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
                except Returned as r:
                    return r.value
                return None
            return self.evaluator.expr(self.body, env)


class MemoDraw(_FunctionValue):
    """``mem(fn(x) => sample(d))`` (or ``flip(p)``) bound to ``name``: the draw at arguments ``args``
    is the random choice ``name[args]`` itself (``strength[alice]``), not a site nested under it."""

    def __init__(self, name: str, lam: A.Lambda, env: dict, evaluator: Evaluator):
        self.name = self.__name__ = name
        self.params = tuple(p.name for p in lam.params)
        self.call = lam.body
        self.env = env
        self.evaluator = evaluator
        self.node = lam

    def __call__(self, *args):
        self._check_arity(args)
        env = dict(self.env)
        env.update(zip(self.params, args))
        ev, e = self.evaluator, self.call
        address = effects.memo_label(self.name, args)
        if e.func.id == "sample":
            return effects.sample(address, ev.distribution(e.args[0], env, e), span=e.span)
        p = ev.expr(e.args[0], env) if e.args else 0.5
        return effects.sample(address, D.Bernoulli(probs=p), span=e.span) == 1
