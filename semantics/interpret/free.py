"""Programs as data: the free monad over the effects ``sample`` and ``score``.

A run of a model is a tree::

    Free = Pure(value, records)
         | SampleF(site, k)          k : value -> Free
         | ScoreF(site, weight, k)   k : ()    -> Free

Every representation (enumeration, sampler, weighted sampler, population,
sequential, traced) is a fold of this tree (:func:`run`), so each is defined
once for every program, static or dynamic. Two sources build the tree:

- :func:`reify_ir` interprets a static IR program eagerly, with concrete
  values, statement by statement (continuation-passing, so that a
  continuation can be resumed many times, as enumeration needs).
- :func:`reify_python` runs effectful Python (a dynamic model) by *replay*:
  to resume after the n-th effect with value ``x``, run the function again,
  answering the first n effects from the recorded prefix. This is valid
  because a model is a deterministic function of its random choices.

Laws (monad laws of every representation ``R`` with ``run``)::

    run(Pure(v), R)           == R.pure(v)
    run(SampleF(s, k), R)     == R.bind(R.sample(s), lambda x: run(k(x), R))
    run(ScoreF(s, w, k), R)   == R.bind(R.score(s, w), lambda _: run(k(), R))
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ppl.stdlib import jax_compat as jc
from ppl.semantics import effects, index_check, ir
from ppl.stdlib.errors import DensityError, ModelError, PPLError, SupportError

__all__ = ["Pure", "SampleF", "ScoreF", "run", "reify_ir", "reify_python", "site_score"]


@dataclass
class Pure:
    value: Any
    records: dict = field(default_factory=dict)  # deterministic sites of this path


@dataclass
class SampleF:
    site: effects.Site
    k: Callable[[Any], Any]


@dataclass
class ScoreF:
    site: effects.Site
    log_weight: float
    k: Callable[[], Any]


def run(free, rep):
    """Fold a program tree into representation ``rep`` (see the laws above)."""
    limit = sys.getrecursionlimit()
    if limit < 20000:
        sys.setrecursionlimit(20000)
    try:
        return _run(free, rep)
    finally:
        sys.setrecursionlimit(limit)


def _run(free, rep):
    if isinstance(free, Pure):
        return rep.pure(free.value, free.records)
    if isinstance(free, SampleF):
        return rep.bind(rep.sample(free.site), lambda x, k=free.k: _run(k(x), rep), free.site)
    if isinstance(free, ScoreF):
        return rep.bind(rep.score(free.site, free.log_weight), lambda _, k=free.k: _run(k(), rep), free.site)
    raise TypeError(f"not a program tree: {free!r}")  # pragma: no cover


# ---------------------------------------------------------------------------
# Scoring a site eagerly, with the checks that name the user's line


def _fixed_support(constraint) -> bool:
    return len(jax.tree.leaves(constraint)) == 0


def validate_site(site: effects.Site) -> None:
    """Check the site's distribution parameters (concrete values), naming the site."""
    check = getattr(site.dist, "validate_params", None)
    if check is None:
        return
    try:
        check()
    except PPLError as err:
        if not err.message.startswith("at '"):
            err.message = f"at '{site.address}': {err.message}"
        raise err.with_span(site.span) from None


def outside_support(site: effects.Site, plates: tuple = ()) -> SupportError | None:
    """The error to report when an observed value lies outside its distribution's support.

    ``plates`` (``(name, size, dim)`` each), given where the observed value is computed inside
    plates rather than being the data itself (a ``.ppl`` loop over ``y[-g]`` made into a plate):
    the index shown then counts the plates' elements, not positions in the data, and the message
    says so."""
    dist, value = site.dist, jnp.asarray(site.value)
    ok = np.asarray(dist.in_support(value)) if hasattr(dist, "in_support") else True
    if np.all(ok):
        return None
    counted = ""
    if plates and np.ndim(value) > 0:
        names = " and ".join(f"plate '{name}' ({size})" for name, size, _ in plates)
        counted = (f" (the index counts the elements of {names} in the order the model makes them, which "
                   "need not be positions in the data)")
    return SupportError(
        f"the observed value at '{site.address}' is outside the support of {type(dist).__name__} "
        f"({_describe(dist.support)}): {_show(value, ok)}{counted}",
        span=site.span,
        hint="Check the data, or choose a distribution whose support contains it.",
    )


def site_score(site: effects.Site, computed_in_plates: tuple = ()) -> float:
    """The log weight an observe or factor site contributes, checked (``computed_in_plates``: see
    ``outside_support``)."""
    if site.kind == "factor":
        lw = float(np.sum(np.asarray(site.value, dtype=np.float64)))
        if np.isnan(lw):
            raise DensityError(f"the factor at '{site.address}' is NaN", span=site.span)
        return lw
    validate_site(site)
    dist, value = site.dist, jnp.asarray(site.value)
    if _fixed_support(dist.support):
        err = outside_support(site, computed_in_plates)
        if err is not None:
            raise err
    ld = np.asarray(dist.log_density(value), dtype=np.float64)
    total = float(np.sum(ld))
    if np.isnan(total):
        raise DensityError(
            f"the log density of the observation at '{site.address}' is NaN "
            f"(distribution {type(dist).__name__})",
            span=site.span,
            hint="A parameter is probably NaN or infinite; check the values that flow into it.",
        )
    return total


def sample_log_density(site: effects.Site, value) -> float:
    validate_site(site)
    ld = float(np.sum(np.asarray(site.dist.log_density(jnp.asarray(value)), dtype=np.float64)))
    if np.isnan(ld):
        raise DensityError(f"the log density of the random choice '{site.address}' is NaN", span=site.span)
    return ld


def _describe(constraint) -> str:
    d = getattr(constraint, "describe", None)
    return d() if callable(d) else repr(constraint)


def _show(value, ok) -> str:
    v = np.asarray(value)
    if v.ndim == 0:
        return f"got {v.item()!r}"
    bad = np.argwhere(~np.broadcast_to(ok, v.shape))[:3]
    items = ", ".join(f"{tuple(int(i) for i in idx)}: {v[tuple(idx)].item()!r}" for idx in bad)
    return f"e.g. at index {items}"


# ---------------------------------------------------------------------------
# Effectful Python -> tree, by replay


class _Suspend(BaseException):
    """Raised inside a replayed run at the first effect past the recorded prefix."""

    def __init__(self, site):
        self.site = site


class _Replay(effects.Handler):
    def __init__(self, prefix):
        super().__init__()
        self.prefix = prefix
        self.pos = 0
        self.records = {}

    def site(self, site):
        if site.kind == "deterministic":
            self.records[site.address] = site.value
            return site.value
        if self.pos < len(self.prefix):
            value = self.prefix[self.pos]
            self.pos += 1
            return value if site.kind == "sample" else None
        raise _Suspend(site)


def reify_python(thunk: Callable[[], Any]):
    """The program tree of ``thunk()``, a call of effectful Python."""

    def resume(prefix):
        h = _Replay(prefix)
        try:
            with h:
                value = thunk()
        except _Suspend as s:
            site = s.site
            if site.kind == "sample":
                return SampleF(site, lambda x: resume(prefix + [x]))
            return ScoreF(site, site_score(site), lambda: resume(prefix + [None]))
        return Pure(value, h.records)

    return resume([])


# ---------------------------------------------------------------------------
# Static IR -> tree, by eager interpretation


def _plates_of(stmt):
    return tuple(effects.PlateFrame(n, s, d) for (n, s, d) in stmt.plates)


def reify_ir(program: ir.Program, args) -> Any:
    """The program tree of a static IR program applied to (flattened) arguments."""
    out_tree = program.out_tree

    def finish(env, returns, records):
        vals = [_read(env, r) for r in returns]
        return Pure(jax.tree.unflatten(out_tree, vals), dict(records))

    env = dict(zip(program.block.params, args))
    data = frozenset(program.block.params)  # an observed value that is one of these is the data itself
    return _stmts(program.block.stmts, 0, env, (), {}, lambda env2, rec: finish(env2, program.block.returns, rec), data)


def _read(env, atom):
    return atom.value if isinstance(atom, ir.Lit) else env[atom]


def _addr(address: str, indices) -> str:
    return address + "".join(f"[{i}]" for i in indices)


def _stmts(stmts, i, env, indices, records, k, data=frozenset()):
    """Interpret ``stmts[i:]`` then call ``k(env, records)``; returns a tree. ``data``: the program's
    parameters (an observation of one of them is an observation of the data itself)."""
    while i < len(stmts):
        s = stmts[i]
        if isinstance(s, ir.Prim):
            args = [_read(env, a) for a in s.args]
            if s.check_index:
                index_check.raise_if_out_of_range(s.op.name, s.params, args, s.span)
            outs = jc.bind(s.op, args, s.params)
            env = {**env, **dict(zip(s.outs, outs))}
            i += 1
            continue
        if isinstance(s, ir.Deterministic):
            value = _read(env, s.value)
            env = {**env, s.out: value}
            records = {**records, _addr(s.address, indices): value}
            i += 1
            continue
        if isinstance(s, ir.Sample):
            dist = jax.tree.unflatten(s.treedef, [_read(env, a) for a in s.args])
            site = effects.Site("sample", _addr(s.address, indices), dist, None, s.span, _plates_of(s))

            def after_sample(x, s=s, i=i, env=env, records=records):
                return _stmts(stmts, i + 1, {**env, s.out: jnp.asarray(x)}, indices, records, k, data)

            return SampleF(site, after_sample)
        if isinstance(s, (ir.Observe, ir.Factor)):
            if isinstance(s, ir.Observe):
                dist = jax.tree.unflatten(s.treedef, [_read(env, a) for a in s.args])
                site = effects.Site("observe", _addr(s.address, indices), dist, _read(env, s.value), s.span,
                                    _plates_of(s))
            else:
                site = effects.Site("factor", _addr(s.address, indices), None, _read(env, s.log_weight), s.span,
                                    _plates_of(s))
            computed = isinstance(s, ir.Observe) and not (isinstance(s.value, ir.Var) and s.value in data)
            return ScoreF(site, site_score(site, s.plates if computed else ()),
                          lambda i=i, env=env, records=records: _stmts(stmts, i + 1, env, indices, records, k, data))
        if isinstance(s, (ir.Plate, ir.Call)):
            return _stmts(s.stmts, 0, env, indices, records,
                          lambda env2, rec, i=i: _stmts(stmts, i + 1, env2, indices, rec, k, data), data)
        if isinstance(s, ir.If):
            index = int(np.asarray(_read(env, s.index)))
            index = min(max(index, 0), len(s.branches) - 1)
            branch = s.branches[index]
            benv = {**env, **dict(zip(branch.params, [_read(env, a) for a in s.args]))}

            def after_if(env2, rec, s=s, i=i, env=env, branch=branch):
                outs = [_read(env2, r) for r in branch.returns]
                return _stmts(stmts, i + 1, {**env, **dict(zip(s.outs, outs))}, indices, rec, k, data)

            return _stmts(branch.stmts, 0, benv, indices, records, after_if, data)
        if isinstance(s, ir.For):
            return _loop(s, env, indices, records,
                         lambda env2, rec, i=i: _stmts(stmts, i + 1, env2, indices, rec, k, data), data)
        raise ModelError(f"the eager engine cannot run {type(s).__name__}")  # pragma: no cover
    return k(env, records)


def _loop(s: ir.For, env, indices, records, k, data=frozenset()):
    args = [_read(env, a) for a in s.args]
    c, n = s.num_consts, s.num_carry
    consts, carry0, xs = args[:c], args[c:c + n], args[c + n:]
    order = list(range(s.length - 1, -1, -1)) if s.reverse else list(range(s.length))

    def step(j, carry, ys, records):
        if j == len(order):
            if s.reverse:
                ys = ys[::-1]
            stacked = [jnp.stack([y[m] for y in ys]) for m in range(len(s.outs) - n)] if ys else \
                [jnp.zeros((0,) + v.shape[1:], v.dtype) for v in s.outs[n:]]
            return k({**env, **dict(zip(s.outs, list(carry) + stacked))}, records)
        t = order[j]
        x = [a[t] for a in xs]
        benv = {**env, **dict(zip(s.body.params, list(consts) + list(carry) + x))}

        def after_body(env2, rec):
            out = [_read(env2, r) for r in s.body.returns]
            return step(j + 1, out[:n], ys + [out[n:]], rec)

        return _stmts(s.body.stmts, 0, benv, indices + (t,), records, after_body, data)

    return step(0, carry0, [], records)
