"""Static facts about a body, read from the tree before it runs: its anonymous sites' addresses,
the names it binds, whether it may make random choices, whether a loop over it can be one
vectorised plate (from the registry's ``elementwise`` and ``random`` flags)."""

from __future__ import annotations

from ppl.syntax import ast as A, builtins as B

__all__ = ["anonymous_names", "walk_stmts", "contains", "assigned", "may_sample", "vectorizable"]


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


def walk_stmts(block) -> list:
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


def contains(block, kinds) -> bool:
    return any(isinstance(n, kinds) for n in walk_stmts(block))


def assigned(block) -> list[str]:
    """Names a block (re)binds, in order, not looking inside nested functions."""
    names: list[str] = []
    for n in walk_stmts(block):
        if isinstance(n, (A.Assign, A.IndexAssign)):
            names.append(n.name)
        elif isinstance(n, A.Tilde) and not n.observed and n.name:
            names.append(n.name)
        elif isinstance(n, A.For):
            names.extend(n.collected)
    return list(dict.fromkeys(names))


def _builtin_use(f) -> B.Builtin | str | None:
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


def may_sample(body) -> bool:
    for n in walk_stmts(body):
        if isinstance(n, (A.Tilde, A.Observe, A.Factor, A.Condition)):
            return True
        if isinstance(n, A.Call):
            use = _builtin_use(n.func)
            if use is None or (isinstance(use, B.Builtin) and use.random):
                return True
    return False


def vectorizable(body: A.Block) -> bool:
    for s in body.stmts:
        if not isinstance(s, (A.Tilde, A.Assign, A.Observe, A.Factor, A.Condition)):
            return False
    for n in walk_stmts(body):
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
