"""Jittered HMC, the kernel that ChEES-HMC tunes (Hoffman, Radul & Sountsov, AISTATS 2021).

Each transition is plain HMC (a momentum draw, leapfrog steps, a Metropolis
correction) whose number of steps is ``ceil(u_i * T / step_size)`` (at least
one), where ``T`` is the *trajectory length* (the longest integration time)
and ``u_i`` in (0, 1) is the ``i``-th term of the base-2 Halton (van der
Corput) sequence, ``i`` the transition's index. ``u_i`` depends on ``i``
only, so all chains take the same number of leapfrog steps in a transition:
vectorised over thousands of chains on an accelerator, no chain waits for
another (what limits NUTS there, where every chain's tree differs).

The transition itself is BlackJAX's dynamic HMC (``blackjax.mcmc.dynamic_hmc``:
velocity Verlet, a diagonal inverse mass matrix); this module puts it in
ppl's kernel contract (``kernel``): ``Builder().family(logdensity_fn)(Params)
-> Kernel`` with ``init(position) -> State`` and ``step(key, state) ->
(State, Info)``. ``Info`` also carries what the ChEES warm-up
(``chees_warmup``) reads: the proposal (before the Metropolis decision), the
velocity ``M^{-1} p`` at its end, and the integration time.

Law: for fixed ``Params`` each transition leaves ``exp(logdensity_fn)``
invariant (the number of steps is chosen before the momentum is drawn and
does not depend on the position, leapfrog is volume preserving and
reversible, the Metropolis correction is exact); the chain is time
inhomogeneous through ``u_i``, and every one of its kernels keeps the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = ["State", "Info", "Params", "Kernel", "Family", "Builder", "jitter", "num_steps", "MIN_CHAINS"]

Array = Any

#: the fewest chains the ChEES warm-up accepts: it tunes from statistics across chains
MIN_CHAINS = 16

HALTON_BITS = 30  # exact for transitions 0 .. 2^30 - 2 (an int32 counter)


class State(NamedTuple):
    """A point of the chain; ``iteration`` counts transitions (it picks the jitter, the same for
    every chain that started together)."""

    position: Any
    log_density: Array
    log_density_grad: Any
    iteration: Array


class Info(NamedTuple):
    """What one transition did. ``energy`` is the Hamiltonian at the returned state (with the
    momentum it ended with); ``proposal`` the flat position proposed before the Metropolis
    decision, ``velocity`` ``M^{-1} p`` there (flat), ``time`` the integration time
    ``num_steps * step_size``."""

    accept_prob: Array
    diverging: Array
    num_steps: Array
    energy: Array
    accepted: Array
    proposal: Array
    velocity: Array
    time: Array


class Params(NamedTuple):
    """The tuned parameters: step size, diagonal inverse mass matrix, trajectory length ``T``."""

    step_size: Array
    inverse_mass_matrix: Array
    trajectory_length: Array


def jitter(iteration: Array) -> Array:
    """``u_i``: the ``(i + 1)``-th term of the base-2 Halton sequence, in (0, 1).

    >>> [float(jitter(jnp.int32(i))) for i in range(4)]
    [0.5, 0.25, 0.75, 0.125]
    """
    i = jnp.asarray(iteration, jnp.int32) + 1
    powers = 2 ** jnp.arange(HALTON_BITS, dtype=jnp.int32)
    digits = (i // powers) % 2
    return jnp.sum(digits * (0.5 / powers.astype(jnp.float32)))


def num_steps(params: Params, iteration: Array) -> Array:
    """Leapfrog steps of transition ``iteration``: ``max(1, ceil(u_i * T / step_size))``."""
    steps = jnp.ceil(jitter(iteration) * params.trajectory_length / params.step_size)
    return jnp.maximum(steps, 1.0).astype(jnp.int32)


class Kernel(NamedTuple):
    """Jittered HMC at fixed ``params`` on ``logdensity_fn`` (the contract of ``kernel.Kernel``)."""

    logdensity_fn: Callable
    params: Params

    def init(self, position: Any) -> State:
        log_density, grad = jax.value_and_grad(self.logdensity_fn)(position)
        return State(position, log_density, grad, jnp.zeros((), jnp.int32))

    def step(self, key: Array, state: State) -> tuple[State, Info]:
        # imported here: importing BlackJAX computes arrays, which starts JAX's backend, and a process
        # of a multi-host run must not start it before ppl.distributed.initialize()
        from blackjax.mcmc import dynamic_hmc

        p = self.params
        steps = num_steps(p, state.iteration)
        transition = dynamic_hmc.build_kernel(
            next_random_arg_fn=lambda i: i + 1,
            integration_steps_fn=lambda i, *_: steps,
        )
        start = dynamic_hmc.DynamicHMCState(state.position, state.log_density, state.log_density_grad,
                                            state.iteration)
        new, info = transition(key, start, self.logdensity_fn, p.step_size, p.inverse_mass_matrix)
        imm = p.inverse_mass_matrix
        momentum0 = ravel_pytree(info.momentum)[0]
        energy0 = -state.log_density + 0.5 * jnp.sum(imm * momentum0**2)
        # BlackJAX flips the proposal's momentum (reversibility): the velocity at the end is -M^{-1} p
        velocity = -imm * ravel_pytree(info.proposal.momentum)[0]
        out = Info(
            accept_prob=info.acceptance_rate,
            diverging=info.is_divergent,
            num_steps=steps,
            energy=jnp.where(info.is_accepted, info.energy, energy0),
            accepted=info.is_accepted,
            proposal=ravel_pytree(info.proposal.position)[0],
            velocity=velocity,
            time=steps * p.step_size,
        )
        return State(new.position, new.logdensity, new.logdensity_grad, new.random_generator_arg), out


class Family(NamedTuple):
    """``family(Params) -> Kernel`` on one log density (``kernel.Family``)."""

    logdensity_fn: Callable

    def __call__(self, params: Params) -> Kernel:
        return Kernel(self.logdensity_fn, params)


@dataclass(frozen=True)
class Builder:
    """Jittered HMC with the ChEES warm-up; hashable (part of a compiled program's cache key).

    ``max_leapfrog_steps`` bounds ``T / step_size``; ``learning_rate`` is the warm-up's step on
    ``log T`` (see ``chees_warmup``); ``adapt_mass``: estimate the diagonal inverse mass matrix
    from the spread across chains (else the identity).
    """

    max_leapfrog_steps: int = 1000
    learning_rate: float = 0.025
    adapt_mass: bool = True

    def family(self, logdensity_fn: Callable) -> Family:
        return Family(logdensity_fn)

    def __call__(self, logdensity_fn: Callable, step_size, inverse_mass_matrix, trajectory_length) -> Kernel:
        """The kernel at fixed parameters (as ``blackjax.dynamic_hmc(logdensity_fn, ...)``)."""
        return Kernel(logdensity_fn, Params(jnp.asarray(step_size), jnp.asarray(inverse_mass_matrix),
                                            jnp.asarray(trajectory_length)))

    def warmup(self, *, numbers, num_warmup: int, dim: int, dtype, value_and_grad: Callable, ok: Array):
        """The ChEES warm-up (``kernel.Adaptation``) for the driver; ``numbers`` carries the
        target acceptance and the dual-averaging constants (``adaptation.DualAveragingParams``)."""
        from ppl.inference.mcmc.chees_warmup import ChEESWarmup

        return ChEESWarmup(self, numbers, num_warmup, dim, dtype, value_and_grad, ok)
