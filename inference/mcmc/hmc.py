"""Hamiltonian Monte Carlo with a static number of integration steps.

The transition is written as a small state machine over *one integration step*
(``stepwise``): ``start`` draws a momentum, ``advance`` takes one leapfrog
step, ``is_done`` says when the trajectory is complete and ``finish`` makes the
Metropolis decision. ``Builder(...).family(logdensity_fn)`` composes these into the kernel
contract of ``kernel``: ``family(Params(step_size, metric)) -> Kernel`` with
``init(position)`` and ``step(key, state)``; the family also offers the
machine itself (the fast path), which the chain driver (``driver``) advances
one leapfrog step at a time so that vectorised chains never wait for one
another. ``build_kernel`` gives the same transition with BlackJAX's
signature ``kernel(key, state, logdensity_fn, step_size, inverse_mass_matrix)``.

Law: for any fixed step size and metric the transition leaves the density
``exp(logdensity_fn)`` invariant (leapfrog is volume preserving and reversible,
and the Metropolis correction is exact).

This module also holds the pieces HMC and NUTS share: the Euclidean metric
(``Metric``, ``metric``), momentum draws and the leapfrog integrator on flat
vectors.
"""

from __future__ import annotations

import abc

from dataclasses import dataclass
from functools import reduce
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ppl.inference.mcmc.counter_rng import _unit, key_words, other_words, standard_normal

__all__ = [
    "State",
    "Info",
    "Metric",
    "Leaf",
    "FlatState",
    "Stepwise",
    "Builder",
    "Params",
    "Kernel",
    "Family",
    "metric",
    "sample_momentum",
    "leapfrog",
    "init",
    "stepwise",
    "build_kernel",
]

Array = Any
ValueAndGrad = Callable[[Array], tuple[Array, Array]]


# --------------------------------------------------------------------------- states


class State(NamedTuple):
    """A point of the chain: position (a pytree), its log density and gradient."""

    position: Any
    log_density: Array
    log_density_grad: Any


class FlatState(NamedTuple):
    """``State`` on the flat (ravelled) parameter vector; what the drivers carry."""

    position: Array
    log_density: Array
    log_density_grad: Array


class Info(NamedTuple):
    """What one HMC transition did.

    ``accept_prob`` is the Metropolis acceptance probability, ``energy`` the
    Hamiltonian at the returned state (with the momentum it ended with) and
    ``num_steps`` the number of leapfrog steps taken; ``nonfinite`` whether a
    step met a NaN log density or a non-finite gradient.
    """

    diverging: Array
    accept_prob: Array
    num_steps: Array
    energy: Array
    accepted: Array
    nonfinite: Array


class Stepwise(NamedTuple):
    """A transition as a state machine over single integration steps.

    ``start(key, state, metric, step_size) -> trajectory`` (``key``: a uint32 pair, see ``key_words``),
    ``advance(trajectory, value_and_grad, metric) -> trajectory``,
    ``is_done(trajectory) -> bool`` and ``finish(trajectory) -> (FlatState, Info)``.
    Running ``advance`` until ``is_done`` and then ``finish`` is one transition;
    ``advance`` leaves a trajectory that ``is_done`` unchanged, but for scratch
    space that nothing reads (a driver that steps many chains at once steps the
    ended ones too).
    ``restart(previous, key, state, metric, step_size)`` equals ``start`` but may
    reuse scratch buffers of the previous trajectory (a driver that restarts
    chains in place passes the old one; the result must not depend on it).
    """

    start: Callable
    advance: Callable
    is_done: Callable
    finish: Callable
    restart: Callable | None = None

    def restart_from(self, previous: Any, key: Array, state: "FlatState", m: "Metric", step_size: Array) -> Any:
        if self.restart is None:
            return self.start(key, state, m, step_size)
        return self.restart(previous, key, state, m, step_size)


# --------------------------------------------------------------------------- metric


class Metric(NamedTuple):
    """A Euclidean metric: the inverse mass matrix and the factor that draws momenta.

    Diagonal when ``inverse_mass_matrix`` has one axis (then
    ``momentum_factor = 1 / sqrt(inverse_mass_matrix)``), dense when it has
    two (then ``momentum_factor = L^{-T}`` with ``L L^T = inverse_mass_matrix``,
    so ``momentum_factor @ z`` has covariance ``M``).
    """

    inverse_mass_matrix: Array
    momentum_factor: Array


def metric(inverse_mass_matrix: Array) -> Metric:
    """The ``Metric`` of a diagonal (1-D) or dense (2-D) inverse mass matrix."""
    imm = jnp.asarray(inverse_mass_matrix)
    if imm.ndim == 1:
        return Metric(imm, jax.lax.rsqrt(imm))
    if imm.ndim == 2:
        chol = jnp.linalg.cholesky(imm)
        eye = jnp.eye(imm.shape[0], dtype=imm.dtype)
        inv_chol = jax.scipy.linalg.solve_triangular(chol, eye, lower=True)
        return Metric(imm, inv_chol.T)
    raise ValueError(
        f"an inverse mass matrix has one axis (diagonal) or two (dense), not shape {imm.shape}"
    )


def _velocity(m: Metric, momentum: Array) -> Array:
    """``M^{-1} p``."""
    if m.inverse_mass_matrix.ndim == 1:
        return m.inverse_mass_matrix * momentum
    return m.inverse_mass_matrix @ momentum


def sample_momentum(key: Array, m: Metric, like: Array) -> Array:
    """A draw of ``p ~ Normal(0, M)`` with the shape and dtype of ``like``; ``key`` is a key-word pair."""
    z = standard_normal(key, like.shape, like.dtype)
    if m.momentum_factor.ndim == 1:
        return m.momentum_factor * z
    return m.momentum_factor @ z


# --------------------------------------------------------------------------- leapfrog


class Leaf(NamedTuple):
    """A point in phase space: position, momentum, velocity ``M^{-1} p``, log density, gradient."""

    position: Array
    momentum: Array
    velocity: Array
    log_density: Array
    log_density_grad: Array


def leapfrog(leaf: Leaf, step_size: Array, m: Metric, value_and_grad: ValueAndGrad) -> Leaf:
    """One velocity-Verlet step of signed size ``step_size`` for ``H = -log p(x) + p.M^{-1}p/2``."""
    half = 0.5 * step_size
    momentum = leaf.momentum + half * leaf.log_density_grad
    position = leaf.position + step_size * _velocity(m, momentum)
    log_density, grad = value_and_grad(position)
    momentum = momentum + half * grad
    return Leaf(position, momentum, _velocity(m, momentum), log_density, grad)


#: the widest reduction XLA's CPU compiler keeps as one loop; a wider one it splits into a
#: ``reduce-window`` pass and a second reduce (for the precision of long sums), which costs each
#: leapfrog step about twice the time of the whole step at d = 32
_REDUCE_WIDTH = 32


def inner(a: Array, b: Array) -> Array:
    """Inner products along the last axis, summed in blocks of at most ``_REDUCE_WIDTH`` (then the
    blocks' sums): NUTS's step at d = 33 took 22 us against 11 us at d = 32 with one plain sum, and
    at d = 200 74 us against 29 us. Past ``_REDUCE_WIDTH`` blocks (d > 1024) one plain sum, whose
    split costs little beside the rest of a step there."""
    prod = a * b
    d = prod.shape[-1]
    blocks = -(-d // _REDUCE_WIDTH)
    if d <= _REDUCE_WIDTH or blocks > _REDUCE_WIDTH:
        return jnp.sum(prod, axis=-1)
    prod = jnp.pad(prod, [(0, 0)] * (prod.ndim - 1) + [(0, blocks * _REDUCE_WIDTH - d)])
    # the blocks added elementwise first (a sum of two reductions would be merged back into one)
    parts = [prod[..., i * _REDUCE_WIDTH:(i + 1) * _REDUCE_WIDTH] for i in range(blocks)]
    return jnp.sum(reduce(jnp.add, parts), axis=-1)


def kinetic_energy(leaf: Leaf) -> Array:
    return 0.5 * inner(leaf.momentum, leaf.velocity)


def _start_leaf(key: Array, state: FlatState, m: Metric) -> Leaf:
    momentum = sample_momentum(key, m, state.position)
    return Leaf(state.position, momentum, _velocity(m, momentum), state.log_density, state.log_density_grad)


def assemble(values: tuple | list, axis: int = 0) -> Array:
    """``jnp.stack(values, axis)`` written as one elementwise expression over the new axis.

    XLA on CPU materialises every operand of a concatenation in its own kernel; a chain of
    ``where`` over the index of the new axis fuses into its consumer. The index is a NumPy
    constant, so each mask is a constant of the program: XLA does not fold a JAX ``iota``
    compared with a row number, and kept each such mask as a kernel of its own (a NUTS program
    had 43 of its 241 kernels so, each compiled and run).
    """
    values = [jnp.asarray(v) for v in values]
    shape = jnp.broadcast_shapes(*(v.shape for v in values))
    axis = axis % (len(shape) + 1)
    index = np.arange(len(values)).reshape([-1 if k == axis else 1 for k in range(len(shape) + 1)])

    def expand(v):
        return jnp.expand_dims(jnp.broadcast_to(v, shape), axis)

    out = expand(values[-1])
    for i in range(len(values) - 2, -1, -1):
        out = jnp.where(index == i, expand(values[i]), out)
    return jnp.broadcast_to(out, shape[:axis] + (len(values),) + shape[axis:])


def _select(pred: Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


# --------------------------------------------------------------------------- HMC


class Trajectory(NamedTuple):
    """The state of an HMC transition in progress."""

    initial: FlatState
    initial_energy: Array
    current: Leaf
    step_size: Array
    num_steps: Array
    diverging: Array
    key: Array
    nonfinite: Array = False


def stepwise(
    num_integration_steps: int = 10,
    divergence_threshold: float = 1000.0,
    step_size_jitter: float = 0.0,
) -> Stepwise:
    """HMC as a ``Stepwise`` machine.

    ``step_size_jitter`` in [0, 1) draws each transition's step size uniformly
    in ``step_size * (1 ± jitter)`` (Stan's ``stepsize_jitter``), which breaks
    the periodicity of a fixed trajectory length. A trajectory stops early at a
    divergence (an energy error above ``divergence_threshold``) and is rejected.
    """
    if num_integration_steps < 1:
        raise ValueError("num_integration_steps must be at least 1")
    if not 0.0 <= step_size_jitter < 1.0:
        raise ValueError("step_size_jitter must lie in [0, 1)")

    def start(key, state: FlatState, m: Metric, step_size) -> Trajectory:
        leaf = _start_leaf(key, state, m)
        energy = -leaf.log_density + kinetic_energy(leaf)
        dtype = state.position.dtype
        step_size = jnp.asarray(step_size, dtype)
        if step_size_jitter > 0:
            u = 2.0 * _unit(other_words(key)[0], dtype) - 1.0
            step_size = step_size * (1.0 + step_size_jitter * u)
        return Trajectory(state, energy, leaf, step_size, jnp.int32(0), jnp.bool_(False), key, jnp.bool_(False))

    def advance(traj: Trajectory, value_and_grad: ValueAndGrad, m: Metric) -> Trajectory:
        leaf = leapfrog(traj.current, traj.step_size, m, value_and_grad)
        delta = -leaf.log_density + kinetic_energy(leaf) - traj.initial_energy
        diverging = ~(delta <= divergence_threshold)  # NaN counts as divergent
        nonfinite = traj.nonfinite | jnp.isnan(leaf.log_density) | ~jnp.all(jnp.isfinite(leaf.log_density_grad))
        advanced = traj._replace(current=leaf, num_steps=traj.num_steps + 1, diverging=diverging, nonfinite=nonfinite)
        return _select(is_done(traj), traj, advanced)

    def is_done(traj: Trajectory) -> Array:
        return (traj.num_steps >= num_integration_steps) | traj.diverging

    def finish(traj: Trajectory) -> tuple[FlatState, Info]:
        leaf = traj.current
        energy = -leaf.log_density + kinetic_energy(leaf)
        delta = jnp.where(traj.diverging, jnp.inf, energy - traj.initial_energy)
        delta = jnp.where(jnp.isnan(delta), jnp.inf, delta)
        accept_prob = jnp.exp(jnp.minimum(0.0, -delta))
        u = _unit(other_words(traj.key)[1], accept_prob.dtype)
        accepted = u < accept_prob
        proposal = FlatState(leaf.position, leaf.log_density, leaf.log_density_grad)
        new = _select(accepted, proposal, traj.initial)
        return new, Info(
            diverging=traj.diverging,
            accept_prob=accept_prob,
            num_steps=traj.num_steps,
            energy=jnp.where(accepted, energy, traj.initial_energy),
            accepted=accepted,
            nonfinite=traj.nonfinite,
        )

    return Stepwise(start, advance, is_done, finish)


# --------------------------------------------------------------------------- the kernel contract


class Params(NamedTuple):
    """What an HMC or NUTS kernel is tuned by: the step size and the metric (a ``Metric``)."""

    step_size: Array
    metric: Metric


def init(position: Any, logdensity_fn: Callable) -> State:
    """The chain state at ``position``: ``State(position, log p(position), grad log p(position))``."""
    log_density, grad = jax.value_and_grad(logdensity_fn)(position)
    return State(position, log_density, grad)


def _transition(machine: Stepwise, key, state: State, logdensity_fn: Callable, step_size, m: Metric):
    """One whole transition of ``machine``: ``advance`` until ``is_done``, then ``finish``."""
    flat, unravel = ravel_pytree(state.position)
    grad_flat, _ = ravel_pytree(state.log_density_grad)

    def value_and_grad(x):
        value, grad = jax.value_and_grad(logdensity_fn)(unravel(x))
        return value, ravel_pytree(grad)[0]

    traj = machine.start(key_words(key), FlatState(flat, state.log_density, grad_flat), m, step_size)
    traj = jax.lax.while_loop(lambda t: ~machine.is_done(t), lambda t: machine.advance(t, value_and_grad, m), traj)
    new, info = machine.finish(traj)
    return State(unravel(new.position), new.log_density, unravel(new.log_density_grad)), info


class Kernel(NamedTuple):
    """An HMC or NUTS kernel at fixed ``params`` (``kernel.Kernel``): positions are any pytree,
    the metric acts on their flat vector (``jax.flatten_util.ravel_pytree``)."""

    machine: Stepwise
    logdensity_fn: Callable
    params: Params

    def init(self, position: Any) -> State:
        return init(position, self.logdensity_fn)

    def step(self, key: Array, state: State) -> tuple[State, Any]:
        p = self.params
        return _transition(self.machine, key, state, self.logdensity_fn, p.step_size, p.metric)


class Family(NamedTuple):
    """``family(params) -> Kernel`` for one log density, with the step-at-a-time fast path:
    ``stepwise()`` and ``value_and_grad`` (on flat positions)."""

    machine: Stepwise
    logdensity_fn: Callable

    def __call__(self, params: Params) -> Kernel:
        m = params.metric if isinstance(params.metric, Metric) else metric(params.metric)
        return Kernel(self.machine, self.logdensity_fn, Params(params.step_size, m))

    def stepwise(self) -> Stepwise:
        return self.machine

    def value_and_grad(self, x: Array) -> tuple[Array, Array]:
        return jax.value_and_grad(self.logdensity_fn)(x)


# --------------------------------------------------------------------------- BlackJAX-style functions


def kernel_from_stepwise(machine: Stepwise) -> Callable:
    """``kernel(key, state, logdensity_fn, step_size, inverse_mass_matrix) -> (State, Info)``
    (BlackJAX's ``build_kernel`` signature; the same transition as ``Kernel.step``)."""

    def kernel(key, state: State, logdensity_fn: Callable, step_size, inverse_mass_matrix):
        return _transition(machine, key, state, logdensity_fn, step_size, metric(inverse_mass_matrix))

    return kernel


def build_kernel(
    num_integration_steps: int = 10,
    divergence_threshold: float = 1000.0,
    step_size_jitter: float = 0.0,
) -> Callable:
    """An HMC transition ``kernel(key, state, logdensity_fn, step_size, inverse_mass_matrix)``."""
    return kernel_from_stepwise(stepwise(num_integration_steps, divergence_threshold, step_size_jitter))


class _Options(abc.ABC):
    """What HMC's and NUTS's option objects share: the family of a log density, and BlackJAX's
    ``init``/``build_kernel`` pair."""

    @abc.abstractmethod
    def stepwise(self) -> Stepwise:
        """The kernel as a machine advanced one integration step at a time."""

    def family(self, logdensity_fn: Callable) -> Family:
        return Family(self.stepwise(), logdensity_fn)

    def __call__(self, logdensity_fn: Callable, step_size, inverse_mass_matrix) -> Kernel:
        """The kernel at fixed parameters, as ``blackjax.hmc(logdensity_fn, step_size, inverse_mass_matrix)``."""
        return self.family(logdensity_fn)(Params(jnp.asarray(step_size), metric(inverse_mass_matrix)))

    def init(self, position: Any, logdensity_fn: Callable) -> State:
        return init(position, logdensity_fn)

    def build_kernel(self) -> Callable:
        return kernel_from_stepwise(self.stepwise())


@dataclass(frozen=True)
class Builder(_Options):
    """HMC options, hashable, as ``run_chains`` takes them: ``hmc.Builder(num_integration_steps=20)``."""

    num_integration_steps: int = 10
    divergence_threshold: float = 1000.0
    step_size_jitter: float = 0.0

    def stepwise(self) -> Stepwise:
        return stepwise(self.num_integration_steps, self.divergence_threshold, self.step_size_jitter)
