"""The No-U-Turn Sampler (multinomial, iterative), as Stan runs it.

One transition draws a momentum and doubles a trajectory in random
directions. Inside each new subtree a state is drawn by uniform progressive
multinomial sampling; a complete subtree replaces the trajectory's draw with
probability ``min(1, w_subtree / w_trajectory)`` (biased progressive
sampling). Doubling stops at a U-turn (the generalised criterion on
``M^{-1} p`` and the sum of momenta, checked on every aligned sub-subtree and,
as in Stan since 2.21, across the two halves of every merge), at a divergence,
or at ``max_tree_depth`` doublings. A subtree that turns or diverges is
discarded.

The recursion of the original algorithm is replaced by bookkeeping on the
index of the leaf inside its subtree: the aligned sub-subtrees that *end* at
leaf ``n`` have ``k`` = (number of trailing ones of ``n``) sizes, and their
first leaves carry checkpoints in slots ``popcount(n >> 1) - k + 1 ..
popcount(n >> 1)`` — each even leaf ``m`` writes slot ``popcount(m)``. So a
transition is a state machine over single leapfrog steps (``stepwise``),
which the chain driver advances for all chains at once without making any
chain wait for another's trajectory.

Law: for any fixed step size and metric the transition is reversible with
respect to ``exp(logdensity_fn)`` and so leaves it invariant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from ppl.inference.mcmc.hmc import (
    FlatState,
    Leaf,
    Metric,
    State,
    Stepwise,
    _select,
    _start_leaf,
    init,
    kernel_from_stepwise,
    kinetic_energy,
    leapfrog,
)

__all__ = ["State", "Info", "Trajectory", "Builder", "init", "stepwise", "build_kernel"]

Array = Any


class Info(NamedTuple):
    """What one NUTS transition did.

    ``accept_prob`` is Stan's ``accept_stat``: the mean over every leapfrog
    step of ``min(1, exp(H0 - H))``; ``num_steps`` the leapfrog steps taken;
    ``tree_depth`` the number of doublings begun; ``energy`` the Hamiltonian
    at the returned state; ``turning`` whether it stopped at a U-turn.
    """

    diverging: Array
    accept_prob: Array
    num_steps: Array
    tree_depth: Array
    energy: Array
    turning: Array


class Proposal(NamedTuple):
    position: Array
    log_density: Array
    log_density_grad: Array
    energy: Array


class Checkpoints(NamedTuple):
    """Per slot: velocity and momentum of a subtree's first leaf, the momentum sum
    before it, and the momentum and velocity of the leaf just before it."""

    velocity: Array
    momentum: Array
    rho_before: Array
    prev_momentum: Array
    prev_velocity: Array


class Trajectory(NamedTuple):
    """The state of a NUTS transition in progress (one chain)."""

    left: Leaf
    right: Leaf
    proposal: Proposal
    sub_proposal: Proposal
    log_weight: Array
    sub_log_weight: Array
    rho: Array
    sub_rho: Array
    checkpoints: Checkpoints
    initial_energy: Array
    step_size: Array
    directions: Array
    depth: Array
    leaf_index: Array
    num_steps: Array
    sum_accept: Array
    diverging: Array
    turning: Array
    done: Array
    key: Array


def _dot(a: Array, b: Array) -> Array:
    return jnp.sum(a * b, axis=-1)


def _turns(velocity_a: Array, velocity_b: Array, rho: Array) -> Array:
    """The generalised no-U-turn criterion fails: the ends no longer move apart along ``rho``."""
    return (_dot(velocity_a, rho) <= 0) | (_dot(velocity_b, rho) <= 0)


def stepwise(
    max_tree_depth: int = 10,
    divergence_threshold: float = 1000.0,
    extra_uturn_checks: bool = True,
) -> Stepwise:
    """NUTS as a ``Stepwise`` machine (see the module docstring)."""
    if not 1 <= max_tree_depth <= 30:
        raise ValueError("max_tree_depth must lie in 1..30")
    slots = max_tree_depth

    def start(key, state: FlatState, m: Metric, step_size) -> Trajectory:
        key_momentum, key_directions, key_rest = jax.random.split(key, 3)
        leaf = _start_leaf(key_momentum, state, m)
        dtype = state.position.dtype
        energy = -leaf.log_density + kinetic_energy(leaf)
        proposal = Proposal(state.position, state.log_density, state.log_density_grad, energy)
        d = state.position.shape[0]
        zeros = jnp.zeros((slots, d), dtype)
        extra = jnp.zeros((slots, d if extra_uturn_checks else 0), dtype)
        return Trajectory(
            left=leaf,
            right=leaf,
            proposal=proposal,
            sub_proposal=proposal,
            log_weight=jnp.zeros((), dtype),
            sub_log_weight=jnp.full((), -jnp.inf, dtype),
            rho=leaf.momentum,
            sub_rho=jnp.zeros_like(leaf.momentum),
            checkpoints=Checkpoints(zeros, zeros, zeros, extra, extra),
            initial_energy=energy,
            step_size=jnp.asarray(step_size, dtype),
            directions=jax.random.bits(key_directions, (), jnp.uint32),
            depth=jnp.int32(0),
            leaf_index=jnp.int32(0),
            num_steps=jnp.int32(0),
            sum_accept=jnp.zeros((), dtype),
            diverging=jnp.bool_(False),
            turning=jnp.bool_(False),
            done=jnp.bool_(False),
            key=key_rest,
        )

    def advance(traj: Trajectory, value_and_grad: Callable, m: Metric) -> Trajectory:
        dtype = traj.rho.dtype
        forward = ((traj.directions >> traj.depth.astype(jnp.uint32)) & 1) == 1
        edge = _select(forward, traj.right, traj.left)
        leaf = leapfrog(edge, jnp.where(forward, traj.step_size, -traj.step_size), m, value_and_grad)

        # Energy error, weight and acceptance statistic of the new leaf.
        energy = -leaf.log_density + kinetic_energy(leaf)
        delta = energy - traj.initial_energy
        delta = jnp.where(jnp.isnan(delta), jnp.inf, delta)
        diverging = delta > divergence_threshold
        log_w = -delta
        sum_accept = traj.sum_accept + jnp.exp(jnp.minimum(log_w, 0.0))
        num_steps = traj.num_steps + 1

        # Uniform progressive sampling inside the subtree.
        u_leaf, u_merge = jax.random.uniform(jax.random.fold_in(traj.key, num_steps), (2,), dtype)
        sub_log_weight = jnp.logaddexp(traj.sub_log_weight, log_w)
        take_leaf = jnp.log(u_leaf) < log_w - sub_log_weight
        new_proposal = Proposal(leaf.position, leaf.log_density, leaf.log_density_grad, energy)
        sub_proposal = _select(take_leaf, new_proposal, traj.sub_proposal)
        sub_rho = traj.sub_rho + leaf.momentum

        # Checkpoints: an even leaf n opens aligned sub-subtrees; it writes slot popcount(n).
        n = traj.leaf_index
        slot = jnp.arange(slots, dtype=jnp.int32)
        even = (n & 1) == 0
        write = (even & (slot == jax.lax.population_count(n)))[:, None]
        ck = traj.checkpoints
        ck = Checkpoints(
            jnp.where(write, leaf.velocity, ck.velocity),
            jnp.where(write, leaf.momentum, ck.momentum),
            jnp.where(write, traj.sub_rho, ck.rho_before),
            jnp.where(write, edge.momentum, ck.prev_momentum) if extra_uturn_checks else ck.prev_momentum,
            jnp.where(write, edge.velocity, ck.prev_velocity) if extra_uturn_checks else ck.prev_velocity,
        )

        # An odd leaf n closes k aligned sub-subtrees (k = trailing ones of n).
        idx_max = jax.lax.population_count(n >> 1)
        k = jax.lax.population_count(((n + 1) & ~n) - 1)
        idx_min = idx_max - k + 1
        closes = ~even & (slot >= idx_min) & (slot <= idx_max)
        rho_blocks = sub_rho - ck.rho_before
        turns = _turns(ck.velocity, leaf.velocity, rho_blocks)
        if extra_uturn_checks:
            # Across the halves of each block of size >= 4 (its middle opens slot i + 1).
            nxt = jax.tree.map(lambda a: jnp.roll(a, -1, axis=0), ck)
            across = _turns(ck.velocity, nxt.velocity, nxt.rho_before - ck.rho_before + nxt.momentum)
            across |= _turns(nxt.prev_velocity, leaf.velocity, sub_rho - nxt.rho_before + nxt.prev_momentum)
            turns |= across & (slot < idx_max)
        sub_turning = jnp.any(closes & turns)

        left = _select(forward, traj.left, leaf)
        right = _select(forward, leaf, traj.right)

        # A complete subtree merges into the trajectory (biased progressive sampling).
        complete = (n == (1 << traj.depth) - 1) & ~diverging & ~sub_turning
        take_subtree = jnp.log(u_merge) < sub_log_weight - traj.log_weight
        proposal = _select(complete & take_subtree, sub_proposal, traj.proposal)
        rho = traj.rho + sub_rho
        top_turning = _turns(left.velocity, right.velocity, rho)
        if extra_uturn_checks:
            far = _select(forward, left, right)
            top_turning |= _turns(far.velocity, ck.velocity[0], traj.rho + ck.momentum[0])
            top_turning |= _turns(ck.prev_velocity[0], leaf.velocity, sub_rho + ck.prev_momentum[0])
        depth = traj.depth + 1
        stop_at_merge = complete & (top_turning | (depth >= max_tree_depth))
        done = diverging | sub_turning | stop_at_merge

        neg_inf = jnp.full((), -jnp.inf, dtype)
        return traj._replace(
            left=left,
            right=right,
            proposal=proposal,
            sub_proposal=sub_proposal,
            log_weight=jnp.where(complete, jnp.logaddexp(traj.log_weight, sub_log_weight), traj.log_weight),
            sub_log_weight=jnp.where(complete, neg_inf, sub_log_weight),
            rho=jnp.where(complete, rho, traj.rho),
            sub_rho=jnp.where(complete, jnp.zeros_like(sub_rho), sub_rho),
            checkpoints=ck,
            depth=jnp.where(complete | done, depth, traj.depth),
            leaf_index=jnp.where(complete, 0, n + 1),
            num_steps=num_steps,
            sum_accept=sum_accept,
            diverging=diverging,
            turning=sub_turning | (complete & top_turning),
            done=done,
        )

    def is_done(traj: Trajectory) -> Array:
        return traj.done

    def finish(traj: Trajectory) -> tuple[FlatState, Info]:
        p = traj.proposal
        info = Info(
            diverging=traj.diverging,
            accept_prob=traj.sum_accept / jnp.maximum(traj.num_steps, 1).astype(traj.sum_accept.dtype),
            num_steps=traj.num_steps,
            tree_depth=traj.depth,
            energy=p.energy,
            turning=traj.turning,
        )
        return FlatState(p.position, p.log_density, p.log_density_grad), info

    return Stepwise(start, advance, is_done, finish)


def build_kernel(
    max_tree_depth: int = 10,
    divergence_threshold: float = 1000.0,
    extra_uturn_checks: bool = True,
) -> Callable:
    """A NUTS transition ``kernel(key, state, logdensity_fn, step_size, inverse_mass_matrix) -> (State, Info)``."""
    return kernel_from_stepwise(stepwise(max_tree_depth, divergence_threshold, extra_uturn_checks))


@dataclass(frozen=True)
class Builder:
    """NUTS options, hashable, as ``run_chains`` takes them: ``nuts.Builder(max_tree_depth=12)``."""

    max_tree_depth: int = 10
    divergence_threshold: float = 1000.0
    extra_uturn_checks: bool = True

    def init(self, position: Any, logdensity_fn: Callable) -> State:
        return init(position, logdensity_fn)

    def stepwise(self) -> Stepwise:
        return stepwise(self.max_tree_depth, self.divergence_threshold, self.extra_uturn_checks)

    def build_kernel(self) -> Callable:
        return kernel_from_stepwise(self.stepwise())
