"""Builtin forms that make random choices, or call a function that may: ``sample``,
``flip``, ``mem``, ``map`` and ``fold``.

They are *forms*: the implementation gets the evaluator, the call node and the
environment, because an anonymous draw is named by its place in the body
(``ev.site_name``, see ``ppl.evaluate``) and ``map``/``fold`` call a function value.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ppl.semantics import effects
from ppl.stdlib import distributions as D
from ppl.stdlib.errors import ModelError

from .arrays import length
from .registry import Builtin, table
from .types import BOOL, UNKNOWN, Ty, TypeProblem

__all__ = ["RANDOM_FUNCTIONS"]


# ----------------------------------------------------------------- type rules


def _sample_rule(args):
    d = args[0]
    if d.base == "dist" and d.improper:
        raise TypeProblem(
            "flat(...) is an improper prior: it has no draws",
            "Use flat only as the prior of a named random choice: x ~ flat(positive).",
        )
    if d.base == "dist" and d.elem is not None:
        return d.elem
    return UNKNOWN


def _flip_rule(args):
    if not args:
        return BOOL
    return Ty("bool", args[0].rank, args[0].shape)


def _map_rule(args):
    xs = args[1]
    return Ty("unknown", xs.rank if xs.rank is not None else None)


def _fold_rule(args):
    return Ty(args[1].base, args[1].rank, args[1].shape) if args[1].base != "bool" else UNKNOWN


# ------------------------------------------------------------ implementations


def _sample(ev, e, env):
    d = ev.distribution(e.args[0], env, e)
    return effects.sample(ev.site_name("sample", e), d, span=e.span)


def _flip(ev, e, env):
    p = ev.expr(e.args[0], env) if e.args else 0.5
    return effects.sample(ev.site_name("flip", e), D.Bernoulli(probs=p), span=e.span) == 1


def _mem(ev, e, env):
    return effects.mem(ev.expr(e.args[0], env))


def _items(xs) -> list:
    return list(xs) if isinstance(xs, (list, tuple)) else [xs[i] for i in range(length(xs))]


def _map(ev, e, env):
    fn, xs = ev.expr(e.args[0], env), ev.expr(e.args[1], env)
    out = [fn(x) for x in _items(xs)]
    if out and isinstance(out[0], str):
        return out
    for o in out:
        if not isinstance(o, (int, float, bool, np.ndarray, np.generic)) and not hasattr(o, "shape"):
            what = "a distribution" if hasattr(o, "log_density") else f"a {type(o).__name__}"
            raise ModelError(f"map's function returned {what}; map collects numbers and arrays",
                             span=e.span, hint="To draw from a distribution, return sample(d) (or x ~ d; "
                                               "return x)." if what == "a distribution" else None)
    return jnp.stack([jnp.asarray(o) for o in out])


def _fold(ev, e, env):
    fn, acc, xs = (ev.expr(a, env) for a in e.args)
    for x in _items(xs):
        acc = fn(acc, x)
    return acc


# ---------------------------------------------------------------- the entries


def _r(name, args, rule, doc, impl, **kw):
    return Builtin(name, tuple(args), rule, doc, impl, pure=False, form=True, random=True, **kw)


RANDOM_FUNCTIONS: dict[str, Builtin] = table([
    _r("sample", ["dist"], _sample_rule, "an anonymous random draw from a distribution (an expression)", _sample),
    _r("flip", ["num"], _flip_rule, "a random boolean that is true with probability p (default 0.5)", _flip,
       optional=1),
    _r("mem", ["fun"], lambda args: args[0],
       "stochastic memoisation: mem(f) returns the same value for the same arguments", _mem, elementwise=False),
    _r("map", ["fun", "any"], _map_rule, "map(f, xs): [f(xs[0]), f(xs[1]), ...]", _map, fun_arity=1,
       elementwise=False),
    _r("fold", ["fun", "any", "any"], _fold_rule, "fold(f, init, xs): f(...f(f(init, xs[0]), xs[1])..., xs[n-1])",
       _fold, fun_arity=2, elementwise=False),
])
