"""The driver's fast path: chains advanced one integration step at a time.

Used for a kernel family that offers ``stepwise()`` (``hmc.Stepwise``: HMC
and NUTS). Every chain is advanced *one leapfrog step at a time*, in an inner
loop that carries only the trajectories; when trajectories have ended, the
outer loop records their draws, adapts and starts their next transitions
while the others go on. A chain that has ended waits a little for others to
end too (a few steps in all, ``WAIT_STEPS_PER_CHAIN``), so that one round of
bookkeeping serves several chains: for a small model that bookkeeping costs
as much as a step or two, while the inner step is all the cost of a large
one. So vectorised chains never wait for the longest trajectory among them,
and the cost is about the longest chain's total work rather than the sum over
iterations of the longest trajectory.

Law: the same as the transition loop's (``driver``): each chain runs its own
Markov chain; running ``advance`` until ``is_done`` and then ``finish`` is
one transition of the family's kernel, whatever the other chains do.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.mcmc import progress as progress_mod
from ppl.inference.mcmc.counter_rng import derive_key
from ppl.inference.mcmc.driver import Plan, Setup, StatTable, counters
from ppl.inference.mcmc.hmc import FlatState
from ppl.inference.mcmc.kernel import standard_stats
from ppl.stdlib import jax_compat

__all__ = ["run", "WAIT_STEPS_PER_CHAIN", "SMALL_STEP_WORK"]

Array = Any

# How long chains whose trajectory has ended wait for the others before the driver records,
# adapts and restarts them: until the steps they have waited, summed over chains, reach this many
# per chain (ski rental: waiting costs integration steps of idle chains, not waiting costs a round
# of bookkeeping). A round of bookkeeping is worth a step or two of a small model, where both are
# dominated by the fixed cost of each compiled kernel, and little against a step of a large one:
# chains wait only when a step's work (elements computed by the log density and its gradient) is
# at most SMALL_STEP_WORK.
WAIT_STEPS_PER_CHAIN = 1
SMALL_STEP_WORK = 4096


def _step_work(value_and_grad: Callable, position: Array) -> int:
    """Elements computed by one evaluation of ``value_and_grad`` (a static proxy of its cost); the
    bodies of jitted calls (the log density is one) count, loop bodies count once."""

    def work(jaxpr) -> int:
        total = 0
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in jax_compat.JIT_NAMES:
                body = jax_compat.jit_body(eqn)
                total += work(getattr(body, "jaxpr", body))
            else:
                total += sum(int(np.prod(v.aval.shape)) for v in eqn.outvars)
        return total

    return work(jax.make_jaxpr(value_and_grad)(position).jaxpr)


def _select(mask: Array, on_true: Any, on_false: Any) -> Any:
    """Per-chain select: ``mask`` has shape (chains,), leaves (chains, ...)."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, on_true, on_false)


class Carry(NamedTuple):
    traj: Any
    fresh: Array  # per chain: its next trajectory starts at ``state`` (the loop body starts it)
    state: Any  # per chain: the state its last transition ended in (where a fresh trajectory starts)
    adapt: Any
    t: Array  # transitions finished, per chain
    started: Array  # transitions started, per chain (their keys derive from it)
    draws: Any  # leaves (C, S + 1, ...); row S takes the draws that are not kept
    stats: Array  # (C, S + 1, number of statistics), the same way
    divergences: Array  # after warm-up, per chain
    steps: Array  # integration steps, per chain


class _Machine(NamedTuple):
    """The family's machine, vectorised over chains, with keys derived per transition."""

    machine: Any
    value_and_grad: Callable
    adaptation: Any

    def begin(self, keys, started, state, adapt):
        p = self.adaptation.params(adapt)
        return jax.vmap(self.machine.start)(jax.vmap(derive_key)(keys, started), state, p.metric, p.step_size)

    def blank(self, keys, started, state, adapt):
        """A trajectory of every chain with the shapes ``begin`` gives, all zeros (started by the loop)."""
        shapes = jax.eval_shape(self.begin, keys, started, state, adapt)
        return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def begin_again(self, previous, keys, started, state, adapt):
        p = self.adaptation.params(adapt)
        transition_keys = jax.vmap(derive_key)(keys, started)
        return jax.vmap(self.machine.restart_from)(previous, transition_keys, state, p.metric, p.step_size)

    def advance(self, traj, m):
        return jax.vmap(lambda tr, mm: self.machine.advance(tr, self.value_and_grad, mm))(traj, m)

    def is_done(self, traj):
        return jax.vmap(self.machine.is_done)(traj)

    def finish(self, traj):
        return jax.vmap(self.machine.finish)(traj)


def run(plan: Plan, setup: Setup, adapt: Any, keys: Array, first: Any = None):
    """Warm-up and sampling of every chain: ``(records, stats, adapt, integration steps)``.

    ``first``: the index of the first of these chains among all (a device's share; for progress)."""
    C, W, S = plan.num_chains, plan.num_warmup, plan.num_samples
    total = W + S * plan.thin
    family = setup.family
    mach = _Machine(family.stepwise(), family.value_and_grad, setup.adaptation)
    state = FlatState(*setup.states)
    dtype = setup.dtype
    small = _step_work(family.value_and_grad, state.position[0]) <= SMALL_STEP_WORK
    wait_budget = WAIT_STEPS_PER_CHAIN * C if small else 0
    zeros = jnp.zeros((C,), jnp.int32)
    # Every trajectory, the first one too, starts inside the loop body (one copy of the start in the
    # program): the loop begins with blank trajectories that are all due to start.
    traj = mach.blank(keys, zeros, state, adapt)
    _, info0 = jax.eval_shape(mach.finish, traj)
    table = StatTable.of(dict(standard_stats(info0), step_size=setup.adaptation.params(adapt).step_size,
                              log_density=state.log_density))
    record0 = jax.vmap(setup.record)(state)
    carry = Carry(traj, jnp.ones((C,), bool), state, adapt, zeros, zeros,
                  jax.tree.map(lambda x: jnp.zeros((C, S + 1) + x.shape[1:], x.dtype), record0),
                  jnp.zeros((C, S + 1, len(table.names)), dtype), zeros, zeros)
    body = _body(plan, setup, mach, table, keys, wait_budget, first)

    def more(c: Carry) -> Array:
        return setup.ok & jnp.any(c.t < total)

    out = jax.lax.while_loop(more, body, carry)
    return jax.tree.map(lambda x: x[:, :S], out.draws), table.split(out.stats, S), out.adapt, out.steps


def _inner(plan: Plan, mach: _Machine, wait_budget: int):
    """The inner loop: integration steps of every active chain until trajectories have ended (and
    the ended ones have waited their budget)."""

    def round_of_steps(traj, m):
        for _ in range(plan.steps_per_round):
            # A trajectory that has ended (so every chain with nothing left to do) waits: the
            # machine's ``advance`` leaves it as it is.
            traj = mach.advance(traj, m)
        return traj

    def steps(traj, m, active):
        def go_on(inner):
            traj, waited = inner
            done = mach.is_done(traj)
            return ~jnp.all(done | ~active) & ~(jnp.any(done & active) & (waited >= wait_budget))

        def step_all(inner):
            traj, waited = inner
            traj = round_of_steps(traj, m)
            return traj, waited + jnp.sum(mach.is_done(traj) & active).astype(jnp.int32)

        traj, _ = jax.lax.while_loop(go_on, step_all, (traj, jnp.int32(0)))
        return traj

    return steps


def _body(plan: Plan, setup: Setup, mach: _Machine, table: StatTable, keys: Array, wait_budget: int, first: Any):
    C, W, S, K = plan.num_chains, plan.num_warmup, plan.num_samples, plan.thin
    total = W + S * K
    every = progress_mod.interval(C, total)
    chains = jnp.arange(C)
    inner = _inner(plan, mach, wait_budget)
    dtype = setup.dtype

    def body(c: Carry) -> Carry:
        # The inner loop carries only the trajectories, so an iteration is the integration step
        # alone; the draws, statistics and adaptation (the larger buffers) are touched once per
        # round of ended trajectories, below.
        # Chains due to start a trajectory start it (the select fuses with the step's own writes);
        # a chain with nothing left to do keeps its ended trajectory, so its steps are no-ops.
        start = c.fresh & (c.t < total)
        traj = _select(start, mach.begin_again(c.traj, keys, c.started, c.state, c.adapt), c.traj)
        started = c.started + start.astype(jnp.int32)
        m = setup.adaptation.params(c.adapt).metric
        traj = inner(traj, m, c.t < total)
        done = mach.is_done(traj)
        new_state, info = mach.finish(traj)
        values = dict(standard_stats(info), step_size=traj.step_size, log_density=new_state.log_density)
        # Record in place: a kept draw goes to its row, anything else to the scratch row S.
        finished = done & (c.t < total)
        keep = finished & (c.t >= W) & ((c.t - W + 1) % K == 0)
        row = jnp.where(keep, (c.t - W) // K, S)
        record = jax.vmap(setup.record)(new_state)
        draws = jax.tree.map(lambda buf, x: buf.at[chains, row].set(x), c.draws, record)
        stats = c.stats.at[chains, row].set(table.row(values, dtype))
        diverging, num_steps = counters(values, (C,))
        divergences = c.divergences + (keep & diverging).astype(jnp.int32)
        steps = c.steps + jnp.where(finished, num_steps, 0).astype(jnp.int32)
        adapt = c.adapt
        if W > 0:
            adapt = setup.adaptation.update(adapt, c.t, finished & (c.t < W), new_state, info)
        t = c.t + finished.astype(jnp.int32)
        if plan.progress:
            before, after = jnp.sum(c.t) // every, jnp.sum(t) // every
            jax.lax.cond(after != before, lambda: progress_mod.report(t, divergences, first), lambda: None)
        # A chain whose trajectory ended starts its next one from new_state in the next iteration.
        return Carry(traj, done, new_state, adapt, t, started, draws, stats, divergences, steps)

    return body
