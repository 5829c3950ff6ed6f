"""Rejuvenation moves for resample-move SMC.

After resampling, many particles are copies of a few; an MCMC kernel that
leaves the current partial posterior invariant moves each copy a little,
restoring diversity without changing what the population targets
(Gilks and Berzuini, 2001; Chopin, 2002).

A move meets the kernel contract of ``inference.mcmc.kernel``: it is a family
over targets, ``move.kernel(logdensity_fn) -> Kernel`` with ``init(position)``
and ``step(key, state)``, applied ``move.num_moves`` times to each particle
(``apply``). They are the chain driver's own kernels: ``RandomWalk`` is
``mcmc.rwm``'s random-walk Metropolis, ``HMCMove`` and ``NUTSMove`` are
``mcmc.hmc``'s and ``mcmc.nuts``'s kernels at a fixed step size and the
identity metric. A plain callable ``kernel(key, position, logdensity_fn) ->
position`` is accepted too (``apply`` calls it once).

``position`` is a dict ``address -> array`` of the static parameters — the
continuous random choices before the loop — in unconstrained coordinates;
``logdensity_fn(position)`` is the log density of the partial posterior
``p(theta, x_{0:t}, y_{0:t})`` as a function of those parameters, with the
particle's trajectory ``x_{0:t}`` and its discrete parameters held fixed
(Jacobians of the transforms included). It is a pure JAX function, jittable
and differentiable. SMC vmaps ``apply`` over the population.

Law: if the kernel leaves the density ``exp(f)`` invariant, the population's
weighted measure is unchanged in expectation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ppl.inference.mcmc import hmc, nuts, rwm
from ppl.inference.mcmc import kernel as kernel_mod
from ppl.stdlib.errors import ModelError

__all__ = ["RandomWalk", "HMCMove", "NUTSMove", "apply"]


def apply(move: Any, key, position: Any, logdensity_fn: Callable) -> Any:
    """One rejuvenation of one particle: ``move.num_moves`` (default 1) steps of
    ``move.kernel(logdensity_fn)`` from ``position`` (keys ``split(key, num_moves)``), or
    ``move(key, position, logdensity_fn)`` for a plain callable."""
    if not hasattr(move, "kernel"):
        return move(key, position, logdensity_fn)
    state, _ = kernel_mod.run(move.kernel(logdensity_fn), key, position, int(getattr(move, "num_moves", 1)))
    return state.position


@dataclass(frozen=True, kw_only=True)
class RandomWalk:
    """Random-walk Metropolis: ``num_steps`` Gaussian proposals of scale ``step_size``.

    Each step proposes ``x' = x + step_size * N(0, I)`` in unconstrained
    coordinates and accepts with probability ``min(1, exp(f(x') - f(x)))``:
    a symmetric proposal, so the kernel is reversible with respect to ``exp(f)``.
    """

    step_size: float = 0.1
    num_steps: int = 1

    def __post_init__(self):
        _positive_number("RandomWalk", "step_size", self.step_size)
        _positive_int("RandomWalk", "num_steps", self.num_steps)

    @property
    def num_moves(self) -> int:
        return self.num_steps

    def kernel(self, logdensity_fn: Callable) -> rwm.Kernel:
        return rwm.Kernel(logdensity_fn, self.step_size)

    def __call__(self, key, position, logdensity_fn):
        return apply(self, key, position, logdensity_fn)


def _positive_number(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ModelError(f"{owner}({name}=...) must be a positive number, not {value!r}")


def _positive_int(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{owner}({name}=...) must be a positive integer, not {value!r}")


class _SafeDensity:
    """``f`` with NaN read as ``-inf`` (a move into a NaN region is rejected)."""

    def __init__(self, logdensity_fn: Callable):
        self.logdensity_fn = logdensity_fn

    def __call__(self, position):
        lp = self.logdensity_fn(position)
        return jnp.where(jnp.isnan(lp), -jnp.inf, lp)


class _UnitMetric(NamedTuple):
    """``family(Params(step_size, identity metric))``, the identity's size read from the position."""

    family: hmc.Family
    step_size: float

    def _kernel(self, position) -> hmc.Kernel:
        flat, _ = ravel_pytree(position)
        return self.family(hmc.Params(self.step_size, hmc.metric(jnp.ones_like(flat))))

    def init(self, position) -> hmc.State:
        return self._kernel(position).init(position)

    def step(self, key, state: hmc.State):
        return self._kernel(state.position).step(key, state)


@dataclass(frozen=True, kw_only=True)
class HMCMove:
    """``num_moves`` HMC transitions (``num_integration_steps`` leapfrog steps of ``step_size``).

    The metric is the identity on the unconstrained parameters, and the step
    size is fixed (SMC has no warm-up to adapt it): choose it on the scale of
    the posterior's narrowest direction. Each transition is reversible with
    respect to ``exp(f)``, so the move leaves the partial posterior invariant.
    """

    step_size: float = 0.1
    num_integration_steps: int = 10
    num_moves: int = 1

    def __post_init__(self):
        _positive_number("HMCMove", "step_size", self.step_size)
        _positive_int("HMCMove", "num_integration_steps", self.num_integration_steps)
        _positive_int("HMCMove", "num_moves", self.num_moves)

    def kernel(self, logdensity_fn: Callable) -> _UnitMetric:
        builder = hmc.Builder(num_integration_steps=self.num_integration_steps)
        return _UnitMetric(builder.family(_SafeDensity(logdensity_fn)), float(self.step_size))

    def __call__(self, key, position, logdensity_fn):
        return apply(self, key, position, logdensity_fn)


@dataclass(frozen=True, kw_only=True)
class NUTSMove:
    """``num_moves`` NUTS transitions at a fixed ``step_size`` (identity metric).

    NUTS chooses each trajectory's length itself, so only the step size needs
    choosing; the transition leaves ``exp(f)`` invariant for any step size.
    """

    step_size: float = 0.1
    max_tree_depth: int = 8
    num_moves: int = 1

    def __post_init__(self):
        _positive_number("NUTSMove", "step_size", self.step_size)
        _positive_int("NUTSMove", "max_tree_depth", self.max_tree_depth)
        _positive_int("NUTSMove", "num_moves", self.num_moves)

    def kernel(self, logdensity_fn: Callable) -> _UnitMetric:
        builder = nuts.Builder(max_tree_depth=self.max_tree_depth)
        return _UnitMetric(builder.family(_SafeDensity(logdensity_fn)), float(self.step_size))

    def __call__(self, key, position, logdensity_fn):
        return apply(self, key, position, logdensity_fn)
