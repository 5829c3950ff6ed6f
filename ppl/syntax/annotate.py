"""Resolution facts an evaluator needs, computed from the tree once after parsing.

``annotate(module)`` returns the same tree with:

* ``Tilde.observed``: whether the variable on the left of ``~`` is data. Data
  are the parameters of the enclosing model, function or lambda, the
  top-level constants, and the names the body binds with ``=`` to a value
  computed from data only (Stan's transformed data: ``log_y = log(y)``; the
  value mentions data, loop variables, numbers and pure builtins, and no
  random choice, user function or branch on a random value). Anything else
  on the left is a random choice.
* A ``~`` whose left is an expression of data only (``log(y) ~ d``) becomes
  ``Observe(log(y), d)``, an observation at an anonymous address. An
  expression of random values is left as it is, for the checker to reject.
* ``For.carried``: the variables, bound before the loop, that the body rebinds
  (by ``=``, ``x[i] = ...`` or a random ``~``), in order of first assignment.
  Non-empty means iteration t+1 reads what iteration t wrote: a ``scan``.
* ``For.collected``: the names first drawn inside the loop (``z ~ d`` or
  ``z[i] ~ d`` with ``z`` not bound before it, also through nested loops);
  after the loop each is the array of its per-iteration values.
* ``FunDef.recursive`` / ``ModelDef.recursive``: the definition reaches itself
  through the top-level definitions it names (a conservative, name-based test:
  calls through function values passed at run time are not seen).

Names bound in a loop body by ``=`` are local to one iteration.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from . import ast
from .builtins import CONSTANTS, FUNCTIONS

__all__ = ["annotate", "recursive_definitions"]


def annotate(module: ast.Module, constants: Iterable[str] = ()) -> ast.Module:
    """``module`` with the facts above filled in; ``constants`` are extra
    top-level data names (the constants of imported modules)."""
    consts = set(constants) | {i.name for i in module.items if isinstance(i, ast.Assign)}
    defs = frozenset(i.name for i in module.items if isinstance(i, (ast.ModelDef, ast.FunDef)))
    recursive = recursive_definitions(module)
    items = []
    for item in module.items:
        if isinstance(item, (ast.ModelDef, ast.FunDef)):
            params = {p.name for p in item.params}
            body = _Walker(defs).block(item.body, bound=params | consts, data=params | consts)
            item = dataclasses.replace(item, body=body, recursive=item.name in recursive)
        elif isinstance(item, ast.Node) and not isinstance(item, ast.Import):
            item = _Walker(defs).stmt(item, bound=set(consts), data=set(consts))
        items.append(item)
    return dataclasses.replace(module, items=tuple(items))


def recursive_definitions(module: ast.Module) -> set[str]:
    """Names of the top-level ``def``s and models that can reach themselves by name."""
    defs = {i.name: i for i in module.items if isinstance(i, (ast.FunDef, ast.ModelDef))}
    graph: dict[str, set[str]] = {}
    for name, d in defs.items():
        params = {p.name for p in d.params}
        graph[name] = {
            n.id for n in ast.walk(d.body) if isinstance(n, ast.Name) and n.id in defs and n.id not in params
        }
    out = set()
    for start in defs:
        seen: set[str] = set()
        stack = list(graph[start])
        while stack:
            n = stack.pop()
            if n == start:
                out.add(start)
                break
            if n not in seen:
                seen.add(n)
                stack.extend(graph[n])
    return out


class _Walker:
    """Walks one function body in order, tracking which names are bound and which are data."""

    def __init__(self, defs: frozenset = frozenset(), loop_vars: frozenset = frozenset()):
        self.assigned: dict[str, None] = {}  # names this body (re)binds, ordered
        self.drawn_new: dict[str, None] = {}  # names first bound here by a random choice
        self.defs = defs  # the module's def and model names (they shadow builtins)
        self.loop_vars = loop_vars  # the enclosing loops' variables (known, not random)

    def data_only(self, e, bound: set[str], data: set[str]) -> bool | None:
        """True: ``e`` is computed from data and mentions some; None: from numbers only; False: otherwise."""
        return data_only(e, data | self.loop_vars, bound | self.defs)

    # -- statements
    def block(self, block: ast.Block, bound: set[str], data: set[str]) -> ast.Block:
        stmts = tuple(self.stmt(s, bound, data) for s in block.stmts)
        return dataclasses.replace(block, stmts=stmts)

    def stmt(self, s, bound: set[str], data: set[str]):
        rule = getattr(self, "_" + type(s).__name__, None)
        return rule(s, bound, data) if rule else _map_exprs(s, lambda e: self.expr(e, bound, data))

    def _bind(self, name: str, bound: set[str], data: set[str], drawn: bool = False) -> None:
        if drawn and name not in bound:
            self.drawn_new.setdefault(name, None)
        self.assigned.setdefault(name, None)
        bound.add(name)

    def _Assign(self, s: ast.Assign, bound, data):
        s = dataclasses.replace(s, value=self.expr(s.value, bound, data))
        derived = self.data_only(s.value, bound, data) is True
        self._bind(s.name, bound, data)
        if derived:
            data.add(s.name)
        else:
            data.discard(s.name)
        return s

    def _IndexAssign(self, s: ast.IndexAssign, bound, data):
        s = _map_exprs(s, lambda e: self.expr(e, bound, data))
        derived = s.name in data and all(
            self.data_only(e, bound, data) is not False for e in (s.value, *s.indices))
        self._bind(s.name, bound, data)
        if not derived:
            data.discard(s.name)
        return s

    def _Tilde(self, s: ast.Tilde, bound, data):
        s = _map_exprs(s, lambda e: self.expr(e, bound, data))
        name = s.name
        if name is None and self.data_only(s.target, bound, data) is True:
            return ast.Observe(s.target, s.dist, span=s.span)
        observed = name is not None and name in data
        if name is not None and not observed:
            self._bind(name, bound, data, drawn=True)
        return dataclasses.replace(s, observed=observed)

    def _If(self, s: ast.If, bound, data):
        cond = self.expr(s.cond, bound, data)
        b1, d1 = set(bound), set(data)
        then = self.block(s.then, b1, d1)
        b2, d2 = set(bound), set(data)
        orelse = self.block(s.orelse, b2, d2) if s.orelse is not None else None
        bound |= b1 | b2
        after = d1 & d2
        if self.data_only(cond, bound, data) is False:  # a branch on a random value: its results are random
            after -= _assigned_names(s.then) | (_assigned_names(s.orelse) if s.orelse is not None else set())
        data.clear()
        data.update(after)
        return dataclasses.replace(s, cond=cond, then=then, orelse=orelse)

    def _For(self, s: ast.For, bound, data):
        start = self.expr(s.start, bound, data)
        stop = self.expr(s.stop, bound, data)
        inner = _Walker(self.defs, self.loop_vars | {s.var})
        body = inner.block(s.body, set(bound) | {s.var}, set(data) - {s.var})
        carried = tuple(n for n in inner.assigned if n in bound and n != s.var)
        collected = tuple(n for n in inner.drawn_new if n not in bound and n != s.var)
        for n in carried:
            self._bind(n, bound, data)
            data.discard(n)
        for n in collected:
            self._bind(n, bound, data, drawn=True)
        return dataclasses.replace(s, start=start, stop=stop, body=body, carried=carried, collected=collected)

    # -- expressions: only lambdas (whose bodies may hold statements) change
    def expr(self, e, bound, data):
        if e is None or not any(isinstance(n, ast.Lambda) for n in ast.walk(e)):
            return e
        if isinstance(e, ast.Lambda):
            params = {p.name for p in e.params}
            b, d = set(bound) | params, (set(data) - params) | params
            if isinstance(e.body, ast.Block):
                body = _Walker(self.defs).block(e.body, b, d)
            else:
                body = _Walker(self.defs).expr(e.body, b, d)
            return dataclasses.replace(e, body=body)
        return _map_exprs(e, lambda c: self.expr(c, bound, data))


def data_only(e, fixed: set[str], shadowed: set[str]) -> bool | None:
    """Whether the value of expression ``e`` is known from the data alone.

    ``fixed``: the names that are data (parameters, constants, names computed
    from data, loop variables); ``shadowed``: names bound otherwise (which hide
    builtins of the same name). True when ``e`` uses only fixed names, numbers,
    constants and pure builtins and mentions at least one fixed name; None when
    it uses numbers and constants only; False otherwise (a random choice, a
    call of a user function or of a random builtin, a lambda, a distribution).
    """
    nodes = list(ast.walk(e))
    funcs = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    mentions = False
    for n in nodes:
        if isinstance(n, ast.Lambda):
            return False
        if isinstance(n, ast.Call):
            f = n.func
            if not (isinstance(f, ast.Name) and f.id in FUNCTIONS and FUNCTIONS[f.id].pure
                    and f.id not in fixed and f.id not in shadowed):
                return False
        elif isinstance(n, ast.Name) and id(n) not in funcs:
            if n.id in fixed:
                mentions = True
            elif n.id in shadowed or n.id not in CONSTANTS:
                return False
    return True if mentions else None


def _assigned_names(block) -> set[str]:
    return {n.name for n in ast.walk(block) if isinstance(n, (ast.Assign, ast.IndexAssign))}


def _map_exprs(node, fn):
    """``node`` with ``fn`` applied to each child that is a node (not to statement blocks)."""
    changes = {}
    for f in dataclasses.fields(node):
        if f.name == "span":
            continue
        value = getattr(node, f.name)
        if isinstance(value, ast.Node) and not isinstance(value, ast.Block):
            new = fn(value)
            if new is not value:
                changes[f.name] = new
        elif isinstance(value, tuple) and any(isinstance(v, ast.Node) for v in value):
            new_t = tuple(fn(v) if isinstance(v, ast.Node) else v for v in value)
            if any(a is not b for a, b in zip(new_t, value)):
                changes[f.name] = new_t
    return dataclasses.replace(node, **changes) if changes else node
