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
index ``n`` of the leaf inside its subtree: the aligned sub-subtrees that
*end* at leaf ``n`` are ``k`` = (trailing ones of ``n``) in number, and their
first leaves hold checkpoints in slots ``popcount(n >> 1) - k + 1 ..
popcount(n >> 1)`` — each even leaf ``m`` writes slot ``popcount(m)``. So a
transition is a state machine over single leapfrog steps (``stepwise``),
which the chain driver advances for all chains at once, without making any
chain wait for another's trajectory.

The trajectory keeps related quantities in a few stacked arrays (both edges
in one, both proposals in one, ...), each updated by one expression per step:
a compiled step is then a handful of fused kernels rather than one per
quantity, which is most of its cost for small models.

Law: for any fixed step size and metric the transition is reversible with
respect to ``exp(logdensity_fn)`` and so leaves it invariant.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from ppl.inference.mcmc.hmc import (
    FlatState,
    Metric,
    State,
    Stepwise,
    _Options,
    _velocity,
    assemble,
    init,
    kernel_from_stepwise,
    sample_momentum,
)
from ppl.inference.mcmc.counter_rng import other_words, uniforms

__all__ = ["State", "Info", "Trajectory", "Builder", "init", "stepwise", "build_kernel"]

Array = Any

# Axis labels of the stacked arrays.
LEFT, RIGHT = 0, 1  # edges
POSITION, MOMENTUM, VELOCITY, GRAD = 0, 1, 2, 3  # rows of an edge
TREE, SUBTREE = 0, 1  # proposals, weights, momentum sums
PROPOSAL_POSITION, PROPOSAL_GRAD = 0, 1  # rows of a proposal
LOG_DENSITY, ENERGY = 0, 1  # proposal statistics
CK_VELOCITY, CK_MOMENTUM, CK_RHO_BEFORE, CK_PREV_MOMENTUM, CK_PREV_VELOCITY = range(5)
DEPTH, LEAF, STEPS = 0, 1, 2  # counters
DIVERGING, TURNING, DONE, NONFINITE = 0, 1, 2, 3  # flags


class Info(NamedTuple):
    """What one NUTS transition did.

    ``accept_prob`` is Stan's ``accept_stat``: the mean over every leapfrog
    step of ``min(1, exp(H0 - H))``; ``num_steps`` the leapfrog steps taken;
    ``tree_depth`` the number of doublings begun; ``energy`` the Hamiltonian
    at the returned state; ``turning`` whether it stopped at a U-turn;
    ``nonfinite`` whether a leapfrog step met a NaN log density or a
    non-finite gradient (a divergence then has that cause, not the geometry).
    """

    diverging: Array
    accept_prob: Array
    num_steps: Array
    tree_depth: Array
    energy: Array
    turning: Array
    nonfinite: Array


class Trajectory(NamedTuple):
    """A NUTS transition in progress (one chain); see the axis labels above.

    ``edges`` (2, 4, d): left and right end (position, momentum, velocity,
    gradient); ``edge_log_density`` (2,); ``proposals`` (2, 2, d): the draw of
    the trajectory and of the subtree being built (position, gradient), with
    ``proposal_stats`` (2, 2) (log density, energy); ``log_weights`` (2,):
    log of the summed ``exp(H0 - H)`` of trajectory and subtree; ``rho``
    (2, d): their momentum sums; ``checkpoints`` (5, max_tree_depth + 1, d), the last slot scratch;
    ``counters`` (depth, leaf index in the subtree, steps); ``flags``
    (diverging, turning, done).
    """

    edges: Array
    edge_log_density: Array
    proposals: Array
    proposal_stats: Array
    log_weights: Array
    rho: Array
    checkpoints: Array
    sum_accept: Array
    counters: Array
    flags: Array
    initial_energy: Array
    step_size: Array
    directions: Array
    key: Array


def _dot(a: Array, b: Array) -> Array:
    return jnp.sum(a * b, axis=-1)


class _Config(NamedTuple):
    max_tree_depth: int
    divergence_threshold: float
    extra_uturn_checks: bool


def stepwise(
    max_tree_depth: int = 10,
    divergence_threshold: float = 1000.0,
    extra_uturn_checks: bool = True,
) -> Stepwise:
    """NUTS as a ``Stepwise`` machine (see the module docstring)."""
    if not 1 <= max_tree_depth <= 30:
        raise ValueError("max_tree_depth must lie in 1..30")
    config = _Config(max_tree_depth, divergence_threshold, extra_uturn_checks)
    return Stepwise(
        partial(_start, config),
        partial(_advance, config),
        _is_done,
        _finish,
        partial(_restart, config),
    )


def _start(config: _Config, key, state: FlatState, m: Metric, step_size) -> Trajectory:
    x, g = state.position, state.log_density_grad
    dtype = x.dtype
    p = sample_momentum(key, m, x)
    v = _velocity(m, p)
    energy = -state.log_density + 0.5 * jnp.dot(p, v)
    edge = assemble([x, p, v, g])
    proposal = assemble([x, g])
    return Trajectory(
        edges=jnp.broadcast_to(edge, (2,) + edge.shape),
        edge_log_density=jnp.broadcast_to(state.log_density, (2,)),
        proposals=jnp.broadcast_to(proposal, (2,) + proposal.shape),
        proposal_stats=jnp.broadcast_to(assemble([state.log_density, energy]), (2, 2)),
        log_weights=assemble([jnp.zeros((), dtype), jnp.full((), -jnp.inf, dtype)]),
        rho=assemble([p, jnp.zeros_like(p)]),
        checkpoints=jnp.zeros((5, config.max_tree_depth + 1) + x.shape, dtype),
        sum_accept=jnp.zeros((), dtype),
        counters=jnp.zeros((3,), jnp.int32),
        flags=jnp.zeros((4,), bool),
        initial_energy=energy,
        step_size=jnp.asarray(step_size, dtype),
        directions=other_words(key)[0],
        key=key,
    )


def _restart(config: _Config, previous: Trajectory, key, state: FlatState, m: Metric, step_size) -> Trajectory:
    # Every checkpoint slot is written before it is read, so the old ones can stay.
    return _start(config, key, state, m, step_size)._replace(checkpoints=previous.checkpoints)


def _is_done(traj: Trajectory) -> Array:
    return traj.flags[DONE]


class _Leaf(NamedTuple):
    """The new leaf of one leapfrog step outwards, with its energy error's consequences."""

    x: Array
    p: Array
    v: Array
    g: Array
    log_density: Array
    energy: Array
    log_w: Array
    diverging: Array


def _step_out(config: _Config, traj: Trajectory, edge: Array, forward: Array, value_and_grad: Callable,
              m: Metric) -> _Leaf:
    """One leapfrog step outwards from ``edge`` in the chosen direction."""
    eps = jnp.where(forward, traj.step_size, -traj.step_size)
    p_half = edge[MOMENTUM] + 0.5 * eps * edge[GRAD]
    x = edge[POSITION] + eps * _velocity(m, p_half)
    log_density, g = value_and_grad(x)
    p = p_half + 0.5 * eps * g
    v = _velocity(m, p)
    # Energy error, weight and acceptance statistic of the new leaf.
    energy = -log_density + 0.5 * jnp.dot(p, v)
    delta = energy - traj.initial_energy
    delta = jnp.where(jnp.isnan(delta), jnp.inf, delta)
    return _Leaf(x, p, v, g, log_density, energy, -delta, delta > config.divergence_threshold)


def _subtree_turning(config: _Config, ck: Array, n: Array, rho_sub: Array, v: Array) -> Array:
    """Whether an aligned sub-subtree that ends at leaf ``n`` turns (checkpoints ``ck`` written)."""
    slots = config.max_tree_depth
    slot = jnp.arange(slots, dtype=jnp.int32)
    even = (n & 1) == 0
    # An odd leaf n closes k aligned sub-subtrees (k = trailing ones of n), in slots idx_min..idx_max.
    idx_max = jax.lax.population_count(n >> 1)
    k = jax.lax.population_count(((n + 1) & ~n) - 1)
    closes = ~even & (slot >= idx_max - k + 1) & (slot <= idx_max)
    ck_used = ck[:, :slots]
    rho_blocks = rho_sub - ck_used[CK_RHO_BEFORE]
    turns = (_dot(ck_used[CK_VELOCITY], rho_blocks) <= 0) | (_dot(v, rho_blocks) <= 0)
    sub_turning = jnp.any(closes & turns)
    if config.extra_uturn_checks and slots > 1:
        # Across the halves of each block of size >= 4 in slot i (its middle leaf opened slot i + 1).
        this, nxt = ck[:, : slots - 1], ck[:, 1:slots]
        rho_a = nxt[CK_RHO_BEFORE] - this[CK_RHO_BEFORE] + nxt[CK_MOMENTUM]
        rho_b = rho_sub - nxt[CK_RHO_BEFORE] + nxt[CK_PREV_MOMENTUM]
        across = (_dot(this[CK_VELOCITY], rho_a) <= 0) | (_dot(nxt[CK_VELOCITY], rho_a) <= 0)
        across |= (_dot(nxt[CK_PREV_VELOCITY], rho_b) <= 0) | (_dot(v, rho_b) <= 0)
        sub_turning |= jnp.any(closes[:-1] & (slot[:-1] < idx_max) & across)
    return sub_turning


def _top_turning(config: _Config, traj: Trajectory, ck: Array, far: Array, forward: Array, v: Array,
                 rho_sub: Array, rho_tree: Array) -> Array:
    """Whether the trajectory turns once the subtree (momentum sum ``rho_sub``) merges into it."""
    left_v = jnp.where(forward, far[VELOCITY], v)
    right_v = jnp.where(forward, v, far[VELOCITY])
    top_turning = (_dot(left_v, rho_tree) <= 0) | (_dot(right_v, rho_tree) <= 0)
    if config.extra_uturn_checks:
        rho_a = traj.rho[TREE] + ck[CK_MOMENTUM, 0]
        rho_b = rho_sub + ck[CK_PREV_MOMENTUM, 0]
        top_turning |= (_dot(far[VELOCITY], rho_a) <= 0) | (_dot(ck[CK_VELOCITY, 0], rho_a) <= 0)
        top_turning |= (_dot(ck[CK_PREV_VELOCITY, 0], rho_b) <= 0) | (_dot(v, rho_b) <= 0)
    return top_turning


def _advance(config: _Config, traj: Trajectory, value_and_grad: Callable, m: Metric) -> Trajectory:
    slots = config.max_tree_depth
    depth, n, steps = traj.counters[DEPTH], traj.counters[LEAF], traj.counters[STEPS]
    forward = ((traj.directions >> depth.astype(jnp.uint32)) & 1) == 1
    side = jnp.where(forward, RIGHT, LEFT)
    edge = jnp.where(forward, traj.edges[RIGHT], traj.edges[LEFT])
    far = jnp.where(forward, traj.edges[LEFT], traj.edges[RIGHT])
    leaf = _step_out(config, traj, edge, forward, value_and_grad, m)
    p, v, g, log_density, diverging, log_w = leaf.p, leaf.v, leaf.g, leaf.log_density, leaf.diverging, leaf.log_w
    steps = steps + 1
    u_leaf, u_merge = uniforms(traj.key, steps)

    # Uniform progressive sampling inside the subtree.
    sub_log_weight = jnp.logaddexp(traj.log_weights[SUBTREE], log_w)
    take_leaf = jnp.log(u_leaf) < log_w - sub_log_weight
    rho_sub = traj.rho[SUBTREE] + p

    # Checkpoints: an even leaf n opens aligned sub-subtrees; it writes slot popcount(n)
    # (in place; an odd leaf writes the scratch slot at the end, which is never read).
    even = (n & 1) == 0
    fresh = assemble([v, p, traj.rho[SUBTREE], edge[MOMENTUM], edge[VELOCITY]])
    target = jnp.where(even, jax.lax.population_count(n), slots)
    ck = traj.checkpoints.at[:, target].set(fresh)
    sub_turning = _subtree_turning(config, ck, n, rho_sub, v)

    # A complete subtree merges into the trajectory (biased progressive sampling).
    complete = (n == (1 << depth) - 1) & ~diverging & ~sub_turning
    take_subtree = jnp.log(u_merge) < sub_log_weight - traj.log_weights[TREE]
    rho_tree = traj.rho[TREE] + rho_sub
    top_turning = _top_turning(config, traj, ck, far, forward, v, rho_sub, rho_tree)
    depth_next = depth + 1
    stop_at_merge = complete & (top_turning | (depth_next >= config.max_tree_depth))
    done = diverging | sub_turning | stop_at_merge
    return _write_back(traj, leaf, _Merge(side, ck, complete & take_subtree, take_leaf, complete, sub_log_weight,
                                          rho_sub, rho_tree, depth, n, steps, done, sub_turning, top_turning))


class _Merge(NamedTuple):
    """What a step decided: where the leaf goes, whether the subtree merges, the new counters."""

    side: Array
    checkpoints: Array
    to_tree: Array
    take_leaf: Array
    complete: Array
    sub_log_weight: Array
    rho_sub: Array
    rho_tree: Array
    depth: Array
    leaf_index: Array
    steps: Array
    done: Array
    sub_turning: Array
    top_turning: Array


def _write_back(traj: Trajectory, leaf: _Leaf, merge: _Merge) -> Trajectory:
    """The trajectory after the step: one expression per stacked array."""
    x, p, v, g = leaf.x, leaf.p, leaf.v, leaf.g
    side, complete, to_tree, take_leaf = merge.side, merge.complete, merge.to_tree, merge.take_leaf
    rows2 = jnp.arange(2)
    is_side = (rows2 == side)[:, None, None]
    edges = jnp.where(is_side, assemble([x, p, v, g])[None], traj.edges)
    edge_log_density = jnp.where(rows2 == side, leaf.log_density, traj.edge_log_density)
    use_leaf = assemble([to_tree & take_leaf, take_leaf])
    use_sub = assemble([to_tree & ~take_leaf, jnp.bool_(False)])
    proposals = jnp.where(
        use_leaf[:, None, None],
        assemble([x, g])[None],
        jnp.where(use_sub[:, None, None], traj.proposals[SUBTREE][None], traj.proposals),
    )
    proposal_stats = jnp.where(
        use_leaf[:, None],
        assemble([leaf.log_density, leaf.energy])[None],
        jnp.where(use_sub[:, None], traj.proposal_stats[SUBTREE][None], traj.proposal_stats),
    )
    tree_log_weight = jnp.logaddexp(traj.log_weights[TREE], merge.sub_log_weight)
    log_weights = jnp.where(
        rows2 == TREE,
        jnp.where(complete, tree_log_weight, traj.log_weights[TREE]),
        jnp.where(complete, -jnp.inf, merge.sub_log_weight),
    )
    rho = jnp.where(
        (rows2 == TREE)[:, None],
        jnp.where(complete, merge.rho_tree, traj.rho[TREE]),
        jnp.where(complete, 0.0, merge.rho_sub),
    )
    depth_next = merge.depth + 1
    counters = assemble([jnp.where(complete | merge.done, depth_next, merge.depth),
                         jnp.where(complete, 0, merge.leaf_index + 1), merge.steps])
    nonfinite = traj.flags[NONFINITE] | jnp.isnan(leaf.log_density) | ~jnp.all(jnp.isfinite(g))
    flags = assemble([leaf.diverging, merge.sub_turning | (complete & merge.top_turning), merge.done, nonfinite])
    return traj._replace(
        edges=edges,
        edge_log_density=edge_log_density,
        proposals=proposals,
        proposal_stats=proposal_stats,
        log_weights=log_weights.astype(traj.log_weights.dtype),
        rho=rho.astype(traj.rho.dtype),
        checkpoints=merge.checkpoints,
        sum_accept=traj.sum_accept + jnp.exp(jnp.minimum(leaf.log_w, 0.0)),
        counters=counters,
        flags=flags,
    )


def _finish(traj: Trajectory) -> tuple[FlatState, Info]:
    steps = traj.counters[STEPS]
    info = Info(
        diverging=traj.flags[DIVERGING],
        accept_prob=traj.sum_accept / jnp.maximum(steps, 1).astype(traj.sum_accept.dtype),
        num_steps=steps,
        tree_depth=traj.counters[DEPTH],
        energy=traj.proposal_stats[TREE, ENERGY],
        turning=traj.flags[TURNING],
        nonfinite=traj.flags[NONFINITE],
    )
    proposal = traj.proposals[TREE]
    new = FlatState(proposal[PROPOSAL_POSITION], traj.proposal_stats[TREE, LOG_DENSITY], proposal[PROPOSAL_GRAD])
    return new, info


def build_kernel(
    max_tree_depth: int = 10,
    divergence_threshold: float = 1000.0,
    extra_uturn_checks: bool = True,
) -> Callable:
    """A NUTS transition ``kernel(key, state, logdensity_fn, step_size, inverse_mass_matrix) -> (State, Info)``."""
    return kernel_from_stepwise(stepwise(max_tree_depth, divergence_threshold, extra_uturn_checks))


@dataclass(frozen=True)
class Builder(_Options):
    """NUTS options, hashable, as ``run_chains`` takes them: ``nuts.Builder(max_tree_depth=12)``;
    ``Builder().family(logdensity_fn)`` is the kernel family (``hmc.Family``)."""

    max_tree_depth: int = 10
    divergence_threshold: float = 1000.0
    extra_uturn_checks: bool = True

    def stepwise(self) -> Stepwise:
        return stepwise(self.max_tree_depth, self.divergence_threshold, self.extra_uturn_checks)
