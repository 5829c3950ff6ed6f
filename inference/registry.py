"""Which method ``ppl.infer`` (and ``ppl run``, and the REPL's ``:infer``) picks when none is given.

The rule, in order (documented once, in ``docs/api.md``, "The default method"):

1. a static model whose latent sites are all discrete with finite support:
   exact enumeration;
2. a static model with a *hard wall*: a ``condition(...)`` (a factor that
   can be ``-inf``) that depends on a continuous latent site, or an
   observation whose distribution's support depends on one (a *support
   wall*: ``y ~ uniform(0, theta)`` with ``y`` observed is impossible for
   ``theta < y``). The density
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
closed-over constant holding ``-inf``, or a value derived from one. An
observation's support depends on a latent site when the bounds of its
distribution's ``support`` are computed from an argument that is computed from
that site.
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


class _Flow:
    """Which IR variables a property flows to: ``seed(s, flow)`` marks the outputs of random
    choices that have it, ``lit`` says which literals have it, and every statement that reads a
    marked value passes it on; ``visit(s, flow)`` sees each site once (with the marks so far)."""

    def __init__(self, lit, seed=None, visit=None):
        self.marked: set = set()
        self.lit, self.seed, self.visit = lit, seed, visit

    def has(self, atom) -> bool:
        if isinstance(atom, ir.Lit):
            return self.lit(atom.value)
        return isinstance(atom, ir.Var) and atom.id in self.marked

    def block(self, block: ir.Block, args, report: bool = True) -> bool:
        """Walk a block whose params take ``args``; True when a returned value is marked."""
        for p, a in zip(block.params, args):
            if self.has(a):
                self.marked.add(p.id)
        self.stmts(block.stmts, report)
        return any(self.has(r) for r in block.returns)

    def stmts(self, stmts, report: bool = True) -> None:
        for s in stmts:
            if isinstance(s, (ir.Sample, ir.Observe, ir.Factor)):
                if self.seed is not None and isinstance(s, ir.Sample) and self.seed(s):
                    self.marked.add(s.out.id)
                if report and self.visit is not None:
                    self.visit(s, self)
            elif isinstance(s, ir.Prim):
                if any(self.has(a) for a in s.args):
                    self.marked.update(o.id for o in s.outs)
            elif isinstance(s, ir.Deterministic):
                if self.has(s.value):
                    self.marked.add(s.out.id)
            elif isinstance(s, ir.If):
                out = False
                for b in s.branches:
                    out |= self.block(b, s.args, report)
                if out or self.has(s.index):
                    self.marked.update(o.id for o in s.outs)
            elif isinstance(s, ir.For):
                # twice: a carry marked in one step is marked at the next step's start
                out = self.block(s.body, s.args, report)
                carry = s.body.params[s.num_consts:s.num_consts + s.num_carry]
                for p, r in zip(carry, s.body.returns[:s.num_carry]):
                    if self.has(r):
                        self.marked.add(p.id)
                out |= self.block(s.body, s.args, False)
                if out:
                    self.marked.update(o.id for o in s.outs)
            elif isinstance(s, (ir.Plate, ir.Call)):
                self.stmts(s.stmts, report)
            elif isinstance(s, ir.Lambda):
                if self.block(s.body, s.captured, report):
                    self.marked.add(s.out.id)


def _factor_walls(program: ir.Program) -> list:
    """The factors whose weight can be -inf."""
    found: list = []

    def visit(s, flow):
        if isinstance(s, ir.Factor) and flow.has(s.log_weight):
            found.append(s)

    flow = _Flow(_has_neg_inf, visit=visit)
    for p, c in zip(program.block.params, program.consts):
        if _has_neg_inf(c):
            flow.marked.add(p.id)
    flow.stmts(program.block.stmts)
    return found


def _support_inputs(s: ir.Observe) -> set[int]:
    """Which of an observation's distribution arguments its support's bounds are computed from
    (``uniform(0, theta)``: the second; ``normal(mu, sigma)``: none)."""
    import jax

    def bounds(*leaves):
        return jax.tree.leaves(jax.tree.unflatten(s.treedef, list(leaves)).support)

    specs = [jax.ShapeDtypeStruct(np.shape(a.value), np.asarray(a.value).dtype) if isinstance(a, ir.Lit)
             else jax.ShapeDtypeStruct(a.shape, a.dtype) for a in s.args]
    try:
        closed = jax.make_jaxpr(bounds)(*specs)
    except Exception:  # noqa: BLE001 - a distribution that cannot be built abstractly: no support wall known
        return set()
    jaxpr = closed.jaxpr
    reach: dict = {v: {i} for i, v in enumerate(jaxpr.invars)}

    def of(atom) -> set:
        try:
            return reach.get(atom, set())
        except TypeError:  # an unhashable literal
            return set()

    for eqn in jaxpr.eqns:  # an equation's outputs are computed from all of its inputs
        got = set().union(*(of(a) for a in eqn.invars)) if eqn.invars else set()
        for v in eqn.outvars:
            reach[v] = got
    return set().union(*(of(v) for v in jaxpr.outvars)) if jaxpr.outvars else set()


def _support_walls(program: ir.Program) -> list:
    """Observations whose support's bounds depend on a continuous latent site (``y ~ uniform(0,
    theta)`` with ``y`` observed): the density is zero on one side of ``theta = max(y)``."""
    latent = program.latent_sites()
    found: list = []

    def continuous(s: ir.Sample) -> bool:
        site = latent.get(s.address)
        return site is not None and not site.is_discrete

    def visit(s, flow):
        if isinstance(s, ir.Observe) and any(flow.has(s.args[i]) for i in _support_inputs(s)):
            found.append(s)

    _Flow(lambda value: False, seed=continuous, visit=visit).stmts(program.block.stmts)
    return found


def hard_walls(program: ir.Program) -> list[str]:
    """Addresses of the factors that can be ``-inf`` and depend on a continuous latent site, and of
    the observations whose support depends on one (support walls)."""
    from ppl.semantics.graph import dependency_graph

    walls = [s.address for s in _support_walls(program)]
    found = _factor_walls(program)
    if not found:
        return walls
    latent = program.latent_sites()
    graph = dependency_graph(program)
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
    if all(s.is_discrete for s in latent) and _all_finite(program, args):
        return Enumerate()
    from ppl.inference.smc import SMC, sequential_cut

    def sequential() -> bool:
        return sequential_cut(program).loop is not None

    if hard_walls(program):
        return SMC(num_particles=PARTICLES) if sequential() else Importance(num_particles=WALL_PARTICLES)
    continuous = default_continuous()
    discrete = any(s.is_discrete for s in latent)
    partial = any(not s.is_discrete for s in ir.partial_sites(program).values())  # NUTS refuses these
    if continuous is not None and not partial and (not discrete or _can_marginalize(program, args)):
        return continuous
    if sequential():
        return SMC(num_particles=PARTICLES)
    return Importance(num_particles=PARTICLES)


def _all_finite(program, args) -> bool:
    """Whether every latent site of an all-discrete ``program`` has finitely many values: by its
    class (Bernoulli, Categorical, Binomial), else, for a support that depends on the instance (a
    truncated Poisson), by probing the program on ``args``."""
    latent = program.latent_sites()
    if all(getattr(s.dist_type, "has_enumerate_support", False) is True for s in latent.values()):
        return True
    if args is None:
        return False
    from ppl.inference.marginalize import site_supports

    try:
        return set(site_supports(program, args, raise_errors=False)) == set(latent)
    except Exception:  # noqa: BLE001 - a program the probe cannot run: let the other rules choose
        return False


def _can_marginalize(program, args) -> bool:
    if args is None:
        return False
    from ppl.inference import marginalize

    return bool(marginalize.can_marginalize(program, args))
