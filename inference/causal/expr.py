"""Estimand expressions: sums, products and ratios of observational conditionals.

An expression is built from ``Prob(head, given)`` — the observational
conditional ``P(head | given)`` of the observed sites — with ``Sum`` (over
bound variables), ``Prod`` and ``Frac``. Variables are site names; a ``Sum``
binds its variables, so the same name may be free outside and bound inside
(the printer primes the inner one: ``Σ_x' P(x') P(y|x',m)``).

The smart constructors :func:`summed`, :func:`product` and :func:`ratio`
simplify as they build, each step an identity of probability:

- ``Σ_B P(A|C) = P(A\\B | C)`` for ``B ⊆ A`` (marginalising heads);
- a factor that does not mention a summed variable moves out of the sum;
- a variable that only one factor mentions, as its head, sums that factor's
  head away (a conditional sums to one over its head).

:func:`evaluate` computes an expression on a joint probability table of the
observed sites (named axes), with ``0/0`` taken as ``0`` (a stratum the data
never show contributes nothing; :mod:`identify` checks the result is a
distribution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Prob", "Sum", "Prod", "Frac", "free", "summed", "product", "ratio", "format_expr", "evaluate"]


@dataclass(frozen=True)
class Prob:
    head: frozenset
    given: frozenset = frozenset()


@dataclass(frozen=True)
class Sum:
    over: frozenset
    body: object


@dataclass(frozen=True)
class Prod:
    factors: tuple


@dataclass(frozen=True)
class Frac:
    num: object
    den: object


ONE = Prob(frozenset())


def free(e) -> frozenset:
    """The free variables of an expression."""
    if isinstance(e, Prob):
        return e.head | e.given
    if isinstance(e, Sum):
        return free(e.body) - e.over
    if isinstance(e, Prod):
        out = frozenset()
        for f in e.factors:
            out |= free(f)
        return out
    if isinstance(e, Frac):
        return free(e.num) | free(e.den)
    raise TypeError(e)


def _is_one(e) -> bool:
    return isinstance(e, Prob) and not e.head


def product(factors) -> object:
    flat = []
    for f in factors:
        if isinstance(f, Prod):
            flat.extend(f.factors)
        elif not _is_one(f):
            flat.append(f)
    if not flat:
        return ONE
    if len(flat) == 1:
        return flat[0]
    return Prod(tuple(flat))


def ratio(num, den) -> object:
    if _is_one(den):
        return num
    if isinstance(num, Prob) and isinstance(den, Prob) and num.given == den.given and den.head < num.head:
        # P(A|C) / P(B|C) = P(A\B | B, C) for B ⊂ A
        return Prob(num.head - den.head, num.given | den.head)
    return Frac(num, den)


def summed(over, body) -> object:
    """``Σ_over body``, simplified."""
    over = frozenset(over) & free(body)
    if not over:
        return body
    if isinstance(body, Sum):
        return summed(over | body.over, body.body)
    if isinstance(body, Prob):
        if over <= body.head - body.given:
            return Prob(body.head - over, body.given) if body.head - over else ONE
        return Sum(over, body)
    if not isinstance(body, Prod):
        return Sum(over, body)
    inside = list(body.factors)
    changed = True
    while changed:
        changed = False
        for w in sorted(over):
            users = [i for i, f in enumerate(inside) if w in free(f)]
            if len(users) == 1:
                f = inside[users[0]]
                if isinstance(f, Prob) and w in f.head:
                    inside[users[0]] = Prob(f.head - {w}, f.given)
                    over = over - {w}
                    changed = True
            elif not users:
                over = over - {w}
                changed = True
        inside = [f for f in inside if not _is_one(f)]
    outside = [f for f in inside if not (free(f) & over)]
    inside = [f for f in inside if free(f) & over]
    if not over or not inside:
        return product(outside + inside)
    return product(outside + [Sum(over, product(inside))])


# ---------------------------------------------------------------------------
# Printing


def format_expr(e, order) -> str:
    """Readable text; ``order`` lists variables in the diagram's topological order."""
    rank = {v: i for i, v in enumerate(order)}

    def ordered(vs):
        return sorted(vs, key=lambda v: (rank.get(v, len(rank)), v))

    def fmt(e, names, used):
        if isinstance(e, Prob):
            head = ",".join(names[v] for v in ordered(e.head))
            if not e.head:
                return "1"
            if e.given:
                return f"P({head}|{','.join(names[v] for v in ordered(e.given))})"
            return f"P({head})"
        if isinstance(e, Sum):
            names, used = dict(names), set(used)
            bound = []
            for v in ordered(e.over):
                name = v
                while name in used:
                    name += "'"
                names[v] = name
                used.add(name)
                bound.append(name)
            sub = ",".join(bound)
            head = f"Σ_{sub}" if len(bound) == 1 else f"Σ_{{{sub}}}"
            return f"{head} {fmt(e.body, names, used)}"
        if isinstance(e, Prod):
            parts = []
            for i, f in enumerate(e.factors):
                text = fmt(f, names, used)
                if isinstance(f, Frac) or (isinstance(f, Sum) and i < len(e.factors) - 1):
                    text = f"[{text}]"
                parts.append(text)
            return " ".join(parts)
        if isinstance(e, Frac):
            return f"{_wrap(e.num, fmt(e.num, names, used))} / {_wrap(e.den, fmt(e.den, names, used))}"
        raise TypeError(e)

    names = {v: v for v in free(e)}
    return fmt(e, names, set(free(e)))


def _wrap(e, text):
    return text if isinstance(e, Prob) else f"[{text}]"


# ---------------------------------------------------------------------------
# Evaluation on a joint table with named axes


def _align(table, names, target, xp=np):
    """``table`` (axes ``names``) transposed and broadcast to the axes ``target``."""
    arr = xp.transpose(table, [names.index(v) for v in target if v in names])
    shape = [arr.shape[[v for v in target if v in names].index(v)] if v in names else 1 for v in target]
    return arr.reshape(shape)


def _union(order, *groups):
    want = set().union(*groups)
    return tuple(v for v in order if v in want)


def _divide(a, b, xp=np):
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.where(b > 0, a / xp.where(b > 0, b, 1.0), 0.0)


def evaluate(e, joint, order: tuple, xp=np) -> tuple[tuple, object]:
    """The value of ``e`` as a table: ``(axes, array)``; ``joint`` has one axis per name in ``order``.

    ``xp`` is the array module (``numpy``, or ``jax.numpy`` to trace the formula into a model).
    """

    def marginal(keep):
        axes = tuple(i for i, v in enumerate(order) if v not in keep)
        return tuple(v for v in order if v in keep), joint.sum(axis=axes)

    def ev(e):
        if isinstance(e, Prob):
            names, num = marginal(e.head | e.given)
            if not e.given:
                return names, num
            gnames, den = marginal(e.given)
            return names, _divide(num, _align(den, gnames, names, xp), xp)
        if isinstance(e, Sum):
            names, arr = ev(e.body)
            axes = tuple(i for i, v in enumerate(names) if v in e.over)
            return tuple(v for v in names if v not in e.over), arr.sum(axis=axes)
        if isinstance(e, Prod):
            parts = [ev(f) for f in e.factors]
            names = _union(order, *[set(n) for n, _ in parts])
            out = xp.ones([1] * len(names))
            for n, arr in parts:
                out = out * _align(arr, n, names, xp)
            return names, out
        if isinstance(e, Frac):
            (nn, na), (dn, da) = ev(e.num), ev(e.den)
            names = _union(order, set(nn), set(dn))
            return names, _divide(_align(na, nn, names, xp), _align(da, dn, names, xp), xp)
        raise TypeError(e)

    return ev(e)
