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

The trajectory keeps its quantities in five stacked arrays (both edges in
one; both draws with both momentum sums in one; every scalar in one, every
counter and flag in one; the checkpoints), each updated by one expression per
step, and a step's inner products are two reductions: a compiled step is then
a handful of fused kernels rather than one per quantity, which is most of its
cost for small models (on CPU every kernel has a fixed cost of its own).

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
    inner,
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
TREE, SUBTREE = 0, 1  # the trajectory and the subtree being built
PROPOSAL_POSITION, PROPOSAL_GRAD, RHO = 0, 1, 2  # rows of a draw: its position and gradient, the momentum sum
CK_VELOCITY, CK_MOMENTUM, CK_RHO_BEFORE, CK_PREV_MOMENTUM, CK_PREV_VELOCITY = range(5)
# scalars: log density at each edge, log weight (log of the summed exp(H0 - H)), log density and energy of the
# draw (each for TREE, SUBTREE), the summed acceptance statistic, the initial energy, the step size
EDGE_LOG_DENSITY, LOG_WEIGHT, PROPOSAL_LOG_DENSITY, PROPOSAL_ENERGY = 0, 2, 4, 6
SUM_ACCEPT, INITIAL_ENERGY, STEP_SIZE = 8, 9, 10
NUM_SCALARS = 11
# counters (int32; the flags as 0 or 1)
DEPTH, LEAF, STEPS, DIVERGING, TURNING, DONE, NONFINITE = range(7)


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
    gradient); ``draws`` (2, 3, d): for the trajectory and for the subtree
    being built, the draw (position, gradient) and the momentum sum;
    ``checkpoints`` (5, max_tree_depth + 1, d), the last slot scratch;
    ``scalars`` (NUM_SCALARS,) and ``counters`` (7,) int32, laid out as the
    labels above say; ``directions``: bit ``j`` says whether doubling ``j``
    goes forward.
    """

    edges: Array
    draws: Array
    checkpoints: Array
    scalars: Array
    counters: Array
    directions: Array
    key: Array

    @property
    def step_size(self) -> Array:
        """The transition's step size (leading batch axes kept)."""
        return self.scalars[..., STEP_SIZE]


def _pair(scalars: Array, first: int) -> Array:
    return scalars[first : first + 2]


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
    # jitted: a driver traces the start for the trajectory's shapes and again inside every restart;
    # the second trace is then the first one's, from JAX's cache
    start = jax.jit(partial(_start, config))
    return Stepwise(
        start,
        partial(_advance, config),
        _is_done,
        _finish,
        partial(_restart, start),
    )


def _start(config: _Config, key, state: FlatState, m: Metric, step_size) -> Trajectory:
    x, g, log_density = state.position, state.log_density_grad, state.log_density
    dtype = x.dtype
    p = sample_momentum(key, m, x)
    v = _velocity(m, p)
    energy = -log_density + 0.5 * jnp.dot(p, v)
    edge = assemble([x, p, v, g])
    scalars = assemble([log_density, log_density,  # edges
                        jnp.zeros((), dtype), jnp.full((), -jnp.inf, dtype),  # log weights
                        log_density, log_density, energy, energy,  # the draws
                        jnp.zeros((), dtype), energy, jnp.asarray(step_size, dtype)])
    return Trajectory(
        edges=jnp.broadcast_to(edge, (2,) + edge.shape),
        draws=assemble([assemble([x, g, p]), assemble([x, g, jnp.zeros_like(p)])]),
        checkpoints=jnp.zeros((5, config.max_tree_depth + 1) + x.shape, dtype),
        scalars=scalars.astype(dtype),
        counters=jnp.zeros((7,), jnp.int32),
        directions=other_words(key)[0],
        key=key,
    )


def _restart(start: Callable, previous: Trajectory, key, state: FlatState, m: Metric, step_size) -> Trajectory:
    # Every checkpoint slot is written before it is read, so the old ones can stay.
    return start(key, state, m, step_size)._replace(checkpoints=previous.checkpoints)


def _is_done(traj: Trajectory) -> Array:
    return traj.counters[DONE] == 1


def _leapfrog_out(step_size: Array, edge: Array, forward: Array, value_and_grad: Callable, m: Metric):
    """One leapfrog step outwards from ``edge`` in the chosen direction: ``(x, p, v, g, log density)``."""
    eps = jnp.where(forward, step_size, -step_size)
    p_half = edge[MOMENTUM] + 0.5 * eps * edge[GRAD]
    x = edge[POSITION] + eps * _velocity(m, p_half)
    log_density, g = value_and_grad(x)
    p = p_half + 0.5 * eps * g
    return x, p, _velocity(m, p), g, log_density


def _merge_products(config: _Config, rho_tree_before: Array, ck0: Array, far_v: Array, forward: Array, p: Array,
                    v: Array, g: Array, rho_sub: Array, rho_tree: Array) -> Array:
    """Every inner product of the step's (d,) vectors, as one reduction (on CPU each reduction is a
    kernel of its own): ``p.v`` (twice the kinetic energy), ``g.0`` (NaN exactly when ``g`` has a
    non-finite element), then the U-turn criteria of the trajectory once the subtree merges into it
    (rows 2 on; ``ck0``: the checkpoint of the subtree's first leaf)."""
    left_v = jnp.where(forward, far_v, v)
    right_v = jnp.where(forward, v, far_v)
    a, b = [p, g, left_v, right_v], [v, jnp.zeros_like(g), rho_tree, rho_tree]
    if config.extra_uturn_checks:
        # Across the two halves: the trajectory so far with the subtree's first leaf, and the
        # trajectory's far edge with the subtree.
        rho_a = rho_tree_before + ck0[CK_MOMENTUM]
        rho_b = rho_sub + ck0[CK_PREV_MOMENTUM]
        a += [far_v, ck0[CK_VELOCITY], ck0[CK_PREV_VELOCITY], v]
        b += [rho_a, rho_a, rho_b, rho_b]
    return inner(assemble(a), assemble(b))


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
    turns = (inner(ck_used[CK_VELOCITY], rho_blocks) <= 0) | (inner(v, rho_blocks) <= 0)
    sub_turning = jnp.any(closes & turns)
    if config.extra_uturn_checks and slots > 1:
        # Across the halves of each block of size >= 4 in slot i (its middle leaf opened slot i + 1).
        this, nxt = ck[:, : slots - 1], ck[:, 1:slots]
        rho_a = nxt[CK_RHO_BEFORE] - this[CK_RHO_BEFORE] + nxt[CK_MOMENTUM]
        rho_b = rho_sub - nxt[CK_RHO_BEFORE] + nxt[CK_PREV_MOMENTUM]
        across = (inner(this[CK_VELOCITY], rho_a) <= 0) | (inner(nxt[CK_VELOCITY], rho_a) <= 0)
        across |= (inner(nxt[CK_PREV_VELOCITY], rho_b) <= 0) | (inner(v, rho_b) <= 0)
        sub_turning |= jnp.any(closes[:-1] & (slot[:-1] < idx_max) & across)
    return sub_turning


def _advance(config: _Config, traj: Trajectory, value_and_grad: Callable, m: Metric) -> Trajectory:
    """One leapfrog step of the trajectory, and what it decides; every write is masked by ``hold``:
    an ended trajectory stays as it is."""
    slots = config.max_tree_depth
    counters, scalars, draws = traj.counters, traj.scalars, traj.draws
    hold = counters[DONE] == 1
    depth, n, steps = counters[DEPTH], counters[LEAF], counters[STEPS]
    forward = ((traj.directions >> depth.astype(jnp.uint32)) & 1) == 1
    side = jnp.where(forward, RIGHT, LEFT)
    edge = jnp.where(forward, traj.edges[RIGHT], traj.edges[LEFT])
    far = jnp.where(forward, traj.edges[LEFT], traj.edges[RIGHT])
    x, p, v, g, log_density = _leapfrog_out(scalars[STEP_SIZE], edge, forward, value_and_grad, m)
    rho_sub = draws[SUBTREE, RHO] + p
    rho_tree = draws[TREE, RHO] + rho_sub

    # Checkpoints: an even leaf n opens aligned sub-subtrees; it writes slot popcount(n)
    # (in place; an odd leaf, or a held trajectory, writes the scratch slot at the end, which is
    # never read).
    even = (n & 1) == 0
    fresh = assemble([v, p, draws[SUBTREE, RHO], edge[MOMENTUM], edge[VELOCITY]])
    target = jnp.where(even & ~hold, jax.lax.population_count(n), slots)
    ck = traj.checkpoints.at[:, target].set(fresh)
    sub_turning = _subtree_turning(config, ck, n, rho_sub, v)
    products = _merge_products(config, draws[TREE, RHO], ck[:, 0], far[VELOCITY], forward, p, v, g, rho_sub,
                               rho_tree)
    top_turning = jnp.any(products[2:] <= 0)

    # Energy error, weight and acceptance statistic of the new leaf.
    energy = -log_density + 0.5 * products[0]
    delta = energy - scalars[INITIAL_ENERGY]
    delta = jnp.where(jnp.isnan(delta), jnp.inf, delta)
    log_w, diverging = -delta, delta > config.divergence_threshold
    nonfinite = (counters[NONFINITE] == 1) | jnp.isnan(log_density) | jnp.isnan(products[1])
    steps = steps + 1
    u_leaf, u_merge = uniforms(traj.key, steps)

    # Uniform progressive sampling inside the subtree.
    log_weights = _pair(scalars, LOG_WEIGHT)
    sub_log_weight = jnp.logaddexp(log_weights[SUBTREE], log_w)
    take_leaf = jnp.log(u_leaf) < log_w - sub_log_weight

    # A complete subtree merges into the trajectory (biased progressive sampling).
    complete = (n == (1 << depth) - 1) & ~diverging & ~sub_turning
    to_tree = complete & (jnp.log(u_merge) < sub_log_weight - log_weights[TREE])
    depth_next = depth + 1
    stop_at_merge = complete & (top_turning | (depth_next >= config.max_tree_depth))
    done = diverging | sub_turning | stop_at_merge

    # The new arrays, one expression each.
    rows2 = jnp.arange(2)
    is_side = (rows2 == side) & ~hold
    edges = jnp.where(is_side[:, None, None], assemble([x, p, v, g])[None], traj.edges)
    # The draws: the leaf replaces the subtree's draw with probability w_leaf / w_subtree, and the
    # trajectory's (merge) with w_subtree / w_trajectory; a complete subtree's momentum sum joins the
    # trajectory's and the subtree's starts again from zero.
    use_leaf = assemble([to_tree & take_leaf, take_leaf])
    use_sub = assemble([to_tree & ~take_leaf, jnp.bool_(False)])
    new_draw = jnp.where(use_leaf[:, None, None], assemble([x, g])[None],
                         jnp.where(use_sub[:, None, None], draws[SUBTREE, :2][None], draws[:, :2]))
    new_rho = jnp.where(complete, assemble([rho_tree, jnp.zeros_like(rho_sub)]),
                        assemble([draws[TREE, RHO], rho_sub]))
    draws = jnp.where(hold, draws, jnp.concatenate([new_draw, new_rho[:, None]], axis=1))
    proposal_stats = [jnp.where(use_leaf[i], assemble([log_density, energy]),
                                jnp.where(use_sub[i], assemble([scalars[PROPOSAL_LOG_DENSITY + SUBTREE],
                                                                 scalars[PROPOSAL_ENERGY + SUBTREE]]),
                                          assemble([scalars[PROPOSAL_LOG_DENSITY + i], scalars[PROPOSAL_ENERGY + i]])))
                      for i in (TREE, SUBTREE)]
    tree_log_weight = jnp.where(complete, jnp.logaddexp(log_weights[TREE], sub_log_weight), log_weights[TREE])
    new_scalars = assemble([
        jnp.where(side == LEFT, log_density, scalars[EDGE_LOG_DENSITY + LEFT]),
        jnp.where(side == RIGHT, log_density, scalars[EDGE_LOG_DENSITY + RIGHT]),
        tree_log_weight,
        jnp.where(complete, -jnp.inf, sub_log_weight),
        proposal_stats[TREE][0], proposal_stats[SUBTREE][0],
        proposal_stats[TREE][1], proposal_stats[SUBTREE][1],
        scalars[SUM_ACCEPT] + jnp.exp(jnp.minimum(log_w, 0.0)),
        scalars[INITIAL_ENERGY],
        scalars[STEP_SIZE],
    ]).astype(scalars.dtype)
    new_counters = assemble([
        jnp.where(complete | done, depth_next, depth),
        jnp.where(complete, 0, n + 1),
        steps,
        diverging,
        sub_turning | (complete & top_turning),
        done,
        nonfinite,
    ]).astype(jnp.int32)
    return traj._replace(
        edges=edges,
        draws=draws.astype(traj.draws.dtype),
        checkpoints=ck,
        scalars=jnp.where(hold, scalars, new_scalars),
        counters=jnp.where(hold, counters, new_counters),
    )


def _finish(traj: Trajectory) -> tuple[FlatState, Info]:
    counters, scalars = traj.counters, traj.scalars
    steps = counters[STEPS]
    info = Info(
        diverging=counters[DIVERGING] == 1,
        accept_prob=scalars[SUM_ACCEPT] / jnp.maximum(steps, 1).astype(scalars.dtype),
        num_steps=steps,
        tree_depth=counters[DEPTH],
        energy=scalars[PROPOSAL_ENERGY + TREE],
        turning=counters[TURNING] == 1,
        nonfinite=counters[NONFINITE] == 1,
    )
    draw = traj.draws[TREE]
    new = FlatState(draw[PROPOSAL_POSITION], scalars[PROPOSAL_LOG_DENSITY + TREE], draw[PROPOSAL_GRAD])
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
