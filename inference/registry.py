"""Which method ``ppl.infer`` (and ``ppl run``, and the REPL's ``:infer``) picks when none is given.

The rule, in order (documented once, in ``docs/api.md``, "The default method"):

1. a static model whose latent sites are all discrete with finite support:
   exact enumeration;
2. a static model with a *hard wall*: a ``condition(...)`` (a factor that
   can be ``-inf``) that depends on a continuous latent site. The density
   jumps to zero across the wall, and gradient methods cannot cross it
   (NUTS diverges at it and keeps to the region where it started), so:
   SMC with 1000 particles when the model observes inside a loop, else
   importance sampling with 10,000 particles;
3. a static model whose latent sites are continuous, or whose discrete
   sites can be summed out exactly: NUTS;
4. another static model that observes inside a loop: SMC with 1000 particles;
5. otherwise, and for dynamic models: importance sampling with 1000 particles.

A factor "can be ``-inf``" when its weight is computed from a literal
``-inf`` (what ``condition(pred)`` lowers to: ``where(pred, 0, -inf)``), a
closed-over constant holding ``-inf``, or a value derived from one.
"""

from __future__ import annotations

import numpy as np

from ppl.semantics import ir

__all__ = ["default_method", "default_continuous", "hard_walls", "WALL_PARTICLES", "PARTICLES"]

#: particles for importance sampling and SMC chosen by default
PARTICLES = 1000
#: importance particles when a hard condition rejects part of every batch of prior draws
WALL_PARTICLES = 10_000


def default_continuous():
    """NUTS when the MCMC family is available, else None (importance sampling is used)."""
    try:
        from ppl.inference.mcmc.methods import NUTS
    except ImportError:
        return None
    return NUTS()


# --------------------------------------------------------------------------- hard walls


def _has_neg_inf(value) -> bool:
    try:
        arr = np.asarray(value)
        return arr.dtype.kind == "f" and bool(np.any(np.isneginf(arr)))
    except (TypeError, ValueError):
        return False


def _may_be_neg_inf(atom, inf: set) -> bool:
    if isinstance(atom, ir.Lit):
        return _has_neg_inf(atom.value)
    return isinstance(atom, ir.Var) and atom.id in inf


def _block(block: ir.Block, args, inf: set, found: list) -> bool:
    """Walk a block whose params take ``args``; True when a returned value may be -inf."""
    for p, a in zip(block.params, args):
        if _may_be_neg_inf(a, inf):
            inf.add(p.id)
    _stmts(block.stmts, inf, found)
    return any(_may_be_neg_inf(r, inf) for r in block.returns)


def _stmts(stmts, inf: set, found: list) -> None:
    for s in stmts:
        if isinstance(s, ir.Prim):
            if any(_may_be_neg_inf(a, inf) for a in s.args):
                inf.update(o.id for o in s.outs)
        elif isinstance(s, ir.Deterministic):
            if _may_be_neg_inf(s.value, inf):
                inf.add(s.out.id)
        elif isinstance(s, ir.Factor):
            if _may_be_neg_inf(s.log_weight, inf):
                found.append(s)
        elif isinstance(s, ir.If):
            out = False
            for b in s.branches:
                out |= _block(b, s.args, inf, found)
            if out:
                inf.update(o.id for o in s.outs)
        elif isinstance(s, ir.For):
            # twice: a carry that becomes -inf in one step is -inf at the next step's start
            out = _block(s.body, s.args, inf, found)
            carry = s.body.params[s.num_consts:s.num_consts + s.num_carry]
            for p, r in zip(carry, s.body.returns[:s.num_carry]):
                if _may_be_neg_inf(r, inf):
                    inf.add(p.id)
            out |= _block(s.body, s.args, inf, [])
            if out:
                inf.update(o.id for o in s.outs)
        elif isinstance(s, (ir.Plate, ir.Call)):
            _stmts(s.stmts, inf, found)
        elif isinstance(s, ir.Lambda):
            if _block(s.body, s.captured, inf, found):
                inf.add(s.out.id)


def hard_walls(program: ir.Program) -> list[str]:
    """Addresses of the factors that can be ``-inf`` and depend on a continuous latent site."""
    from ppl.semantics.graph import dependency_graph

    inf: set = set()
    found: list = []
    consts = tuple(program.consts)
    for p, c in zip(program.block.params, consts):
        if _has_neg_inf(c):
            inf.add(p.id)
    _stmts(program.block.stmts, inf, found)
    if not found:
        return []
    latent = program.latent_sites()
    graph = dependency_graph(program)
    walls = []
    for f in found:
        parents = graph.parents(f.address)
        if any(a in latent and not latent[a].is_discrete for a in parents):
            walls.append(f.address)
    return walls


# --------------------------------------------------------------------------- the rule


def default_method(program, args=None) -> object:
    """The default method for ``program`` (an ``ir.Program``, or a dynamic program); see the module
    docstring. ``args`` are the model's array arguments (to decide whether discrete sites can be
    summed out exactly)."""
    from ppl.inference.enumerate import Enumerate
    from ppl.inference.importance import Importance

    if not isinstance(program, ir.Program):
        return Importance(num_particles=PARTICLES)
    latent = program.latent_sites().values()
    if all(s.is_discrete and getattr(s.dist_type, "has_enumerate_support", False) is True for s in latent):
        return Enumerate()
    from ppl.inference.smc import SMC, sequential_cut

    def sequential() -> bool:
        return sequential_cut(program).loop is not None

    if hard_walls(program):
        return SMC(num_particles=PARTICLES) if sequential() else Importance(num_particles=WALL_PARTICLES)
    continuous = default_continuous()
    discrete = any(s.is_discrete for s in latent)
    if continuous is not None and (not discrete or _can_marginalize(program, args)):
        return continuous
    if sequential():
        return SMC(num_particles=PARTICLES)
    return Importance(num_particles=PARTICLES)


def _can_marginalize(program, args) -> bool:
    if args is None:
        return False
    from ppl.inference import marginalize

    return bool(marginalize.can_marginalize(program, args))
