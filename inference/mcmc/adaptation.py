"""Stan-style warm-up: step-size dual averaging and windowed mass-matrix estimation.

Everything here is a pure function on NamedTuple states, applied by the
chain driver once per transition inside its compiled loop:

- ``schedule(num_warmup, config)``: which warm-up transitions feed the
  covariance estimate and where each slow window ends (Stan: an initial fast
  buffer of 75, slow windows doubling from 25, a final fast buffer of 50;
  15% / 75% / 10% when ``num_warmup`` is too small for those).
- ``dual_averaging_*``: Nesterov dual averaging of ``log step_size`` towards
  a target mean acceptance statistic (Hoffman & Gelman 2014, Stan's
  constants ``gamma=0.05, t0=10, kappa=0.75``).
- ``welford_*``: running mean and (co)variance, regularised as Stan does:
  ``(n / (n + 5)) * Sigma + 1e-3 * (5 / (n + 5)) * I``.
- ``find_reasonable_step_size``: Stan's heuristic that doubles or halves the
  step size until one leapfrog step's acceptance crosses 0.8.

Law: the warm-up only chooses (step size, metric); the sampling phase uses
them fixed, so the draws after warm-up are from a valid Markov chain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.mcmc.counter_rng import derive_key
from ppl.inference.mcmc.hmc import (FlatState, Metric, _start_leaf, _velocity, assemble, inner, kinetic_energy,
                                    metric)

__all__ = [
    "Adaptation",
    "AdaptationState",
    "DualAveraging",
    "Welford",
    "schedule",
    "dual_averaging_init",
    "dual_averaging_update",
    "dual_averaging_restart",
    "welford_init",
    "welford_update",
    "welford_covariance",
    "adaptation_init",
    "adaptation_update",
    "end_window",
    "find_reasonable_step_size",
]

Array = Any


@dataclass(frozen=True)
class Adaptation:
    """Warm-up options (hashable; part of the compiled program's cache key).

    ``metric`` is ``"diag"`` (default), ``"dense"`` or ``"unit"`` (no
    mass-matrix adaptation). ``adapt_step_size=False`` keeps
    ``initial_step_size`` throughout; ``find_initial_step_size`` runs Stan's
    heuristic from ``initial_step_size`` before warm-up.
    """

    target_accept: float = 0.8
    metric: str = "diag"
    adapt_step_size: bool = True
    initial_step_size: float = 1.0
    find_initial_step_size: bool = True
    init_buffer: int = 75
    term_buffer: int = 50
    base_window: int = 25
    gamma: float = 0.05
    t0: float = 10.0
    kappa: float = 0.75

    def structure(self) -> "Adaptation":
        """These options with the numeric ones at their defaults: what a compiled program depends on.

        The numbers (``target_accept``, ``initial_step_size``, ``gamma``,
        ``t0``, ``kappa``) reach a compiled program as run-time values
        (``numbers()``), so changing them does not recompile.
        """
        return replace(self, target_accept=0.8, initial_step_size=1.0, gamma=0.05, t0=10.0, kappa=0.75)

    def numbers(self) -> "DualAveragingParams":
        return DualAveragingParams(
            *(np.float32(x) for x in (self.target_accept, self.gamma, self.t0, self.kappa, self.initial_step_size))
        )

    def __post_init__(self):
        if not 0.0 < self.target_accept < 1.0:
            raise ValueError(f"target_accept must lie in (0, 1), not {self.target_accept}")
        if self.metric not in ("diag", "dense", "unit"):
            raise ValueError(f"metric must be 'diag', 'dense' or 'unit', not {self.metric!r}")
        if self.initial_step_size <= 0:
            raise ValueError("initial_step_size must be positive")


class DualAveragingParams(NamedTuple):
    """The numeric warm-up settings, as (possibly traced) scalars."""

    target_accept: Array
    gamma: Array
    t0: Array
    kappa: Array
    initial_step_size: Array


NO_ADAPTATION = Adaptation(metric="unit", adapt_step_size=False, find_initial_step_size=False)


# --------------------------------------------------------------------------- windows


def schedule(num_warmup: int, config: Adaptation = Adaptation()) -> tuple[np.ndarray, np.ndarray]:
    """``(collect, window_end)``: boolean arrays over warm-up transitions ``0 .. num_warmup - 1``.

    ``collect[t]``: transition ``t``'s draw enters the covariance estimate;
    ``window_end[t]``: after transition ``t`` the metric is updated and dual
    averaging restarts. No windows when the metric is not adapted or
    ``num_warmup < 20`` (then only the step size is tuned, as in Stan).
    """
    collect = np.zeros(num_warmup, bool)
    window_end = np.zeros(num_warmup, bool)
    if config.metric == "unit" or num_warmup < 20:
        return collect, window_end
    init_buffer, term_buffer, base = config.init_buffer, config.term_buffer, config.base_window
    if init_buffer + base + term_buffer > num_warmup:
        init_buffer = int(0.15 * num_warmup)
        term_buffer = int(0.1 * num_warmup)
        base = num_warmup - init_buffer - term_buffer
    slow_end = num_warmup - term_buffer
    start, size = init_buffer, base
    while start < slow_end:
        if start + 3 * size >= slow_end:  # the next, doubled window would not fit: stretch this one
            size = slow_end - start
        collect[start : start + size] = True
        window_end[start + size - 1] = True
        start += size
        size *= 2
    return collect, window_end


# --------------------------------------------------------------------------- dual averaging


class DualAveraging(NamedTuple):
    log_step_size: Array
    log_step_size_avg: Array
    gradient_avg: Array
    count: Array
    mu: Array


def dual_averaging_init(step_size: Array) -> DualAveraging:
    log_step = jnp.log(step_size)
    zero = jnp.zeros_like(log_step)
    return DualAveraging(log_step, zero, zero, zero, jnp.log(10.0) + log_step)


def dual_averaging_restart(state: DualAveraging) -> DualAveraging:
    """Restart around the current step size (after a metric update), ``mu = log(10 eps)``."""
    return dual_averaging_init(jnp.exp(state.log_step_size))


def dual_averaging_update(
    state: DualAveraging, accept_prob: Array, config: Adaptation | DualAveragingParams = Adaptation()
) -> DualAveraging:
    """One step of dual averaging towards ``config.target_accept`` (an ``Adaptation`` or its ``numbers()``)."""
    accept = jnp.where(jnp.isnan(accept_prob), 0.0, jnp.minimum(accept_prob, 1.0))
    count = state.count + 1.0
    eta = 1.0 / (count + config.t0)
    gradient_avg = (1.0 - eta) * state.gradient_avg + eta * (config.target_accept - accept)
    log_step = state.mu - gradient_avg * jnp.sqrt(count) / config.gamma
    weight = count ** (-config.kappa)
    log_step_avg = weight * log_step + (1.0 - weight) * state.log_step_size_avg
    return DualAveraging(log_step, log_step_avg, gradient_avg, count, state.mu)


# --------------------------------------------------------------------------- Welford


class Welford(NamedTuple):
    count: Array
    mean: Array
    m2: Array  # (d,) for a diagonal estimate, (d, d) for a dense one


def welford_init(dim: int, dense: bool, dtype=jnp.float32) -> Welford:
    m2 = jnp.zeros((dim, dim) if dense else (dim,), dtype)
    return Welford(jnp.zeros((), dtype), jnp.zeros((dim,), dtype), m2)


def welford_update(state: Welford, x: Array) -> Welford:
    count = state.count + 1.0
    delta = x - state.mean
    mean = state.mean + delta / count
    if state.m2.ndim == 1:
        m2 = state.m2 + delta * (x - mean)
    else:
        m2 = state.m2 + jnp.outer(delta, x - mean)
    return Welford(count, mean, m2)


def welford_covariance(state: Welford) -> Array:
    """Sample (co)variance shrunk towards ``1e-3 I`` with weight ``5 / (n + 5)`` (Stan)."""
    n = state.count
    cov = state.m2 / jnp.maximum(n - 1.0, 1.0)
    shrink = 1e-3 * 5.0 / (n + 5.0)
    if cov.ndim == 1:
        return (n / (n + 5.0)) * cov + shrink
    return (n / (n + 5.0)) * cov + shrink * jnp.eye(cov.shape[0], dtype=cov.dtype)


# --------------------------------------------------------------------------- per-chain state

# Columns of ``AdaptationState.scalars``.
STEP_SIZE, LOG_STEP, LOG_STEP_AVG, GRADIENT_AVG, DA_COUNT, MU, WELFORD_COUNT = range(7)


class AdaptationState(NamedTuple):
    """One chain's warm-up state.

    ``scalars`` packs the step size, the dual-averaging state and the Welford
    count (columns named above) into one array, so that a compiled warm-up
    step updates it with one fused expression; ``welford_mean`` and
    ``welford_m2`` hold the running estimate; ``metric`` is in use.
    """

    scalars: Array
    welford_mean: Array
    welford_m2: Array
    metric: Metric

    @property
    def step_size(self) -> Array:
        return self.scalars[..., STEP_SIZE]

    @property
    def dual_averaging(self) -> DualAveraging:
        c = self.scalars
        return DualAveraging(c[..., LOG_STEP], c[..., LOG_STEP_AVG], c[..., GRADIENT_AVG], c[..., DA_COUNT], c[..., MU])

    @property
    def welford(self) -> Welford:
        return Welford(self.scalars[..., WELFORD_COUNT], self.welford_mean, self.welford_m2)


def _pack(step_size: Array, da: DualAveraging, welford_count: Array) -> Array:
    """The ``scalars`` column vector, built by one elementwise expression (no concatenation)."""
    return assemble((step_size, da.log_step_size, da.log_step_size_avg, da.gradient_avg, da.count, da.mu,
                     welford_count))


def adaptation_init(dim: int, step_size: Array, config: Adaptation, dtype=jnp.float32) -> AdaptationState:
    dense = config.metric == "dense"
    imm = jnp.eye(dim, dtype=dtype) if dense else jnp.ones((dim,), dtype)
    step_size = jnp.asarray(step_size, dtype)
    welford = welford_init(dim if config.metric != "unit" else 0, dense, dtype)
    scalars = _pack(step_size, dual_averaging_init(step_size), welford.count).astype(dtype)
    return AdaptationState(scalars, welford.mean, welford.m2, metric(imm))


def adaptation_update(
    state: AdaptationState,
    t: Array,
    position: Array,
    accept_prob: Array,
    collect: Array,
    last: Array,
    config: Adaptation,
    params: DualAveragingParams | None = None,
) -> AdaptationState:
    """After warm-up transition ``t``: tune the step size, feed the estimate (when ``collect``).

    ``params`` (default ``config.numbers()``) are the numeric settings, possibly traced.

    ``last`` marks the final warm-up transition, after which the step size is
    the dual-averaging average ``exp(log_step_size_avg)``. Window ends are
    applied separately by ``end_window`` (so a driver can skip the matrix work
    on transitions where no chain ends a window).
    """
    step_size, da = state.step_size, state.dual_averaging
    if config.adapt_step_size:
        da = dual_averaging_update(da, accept_prob, config.numbers() if params is None else params)
        step_size = jnp.where(last, jnp.exp(da.log_step_size_avg), jnp.exp(da.log_step_size))
    welford = state.welford
    if config.metric != "unit":
        updated = welford_update(welford, position)
        welford = jax.tree.map(lambda new, old: jnp.where(collect, new, old), updated, welford)
    scalars = _pack(step_size, da, welford.count).astype(state.scalars.dtype)
    return AdaptationState(scalars, welford.mean, welford.m2, state.metric)


def end_window(state: AdaptationState, config: Adaptation) -> AdaptationState:
    """End a slow window: new metric from the estimate, fresh estimate, dual averaging restarted."""
    imm = welford_covariance(state.welford)
    dim = state.welford_mean.shape[0]
    welford = welford_init(dim, config.metric == "dense", state.welford_mean.dtype)
    da = dual_averaging_restart(state.dual_averaging) if config.adapt_step_size else state.dual_averaging
    scalars = _pack(state.step_size, da, welford.count).astype(state.scalars.dtype)
    return AdaptationState(scalars, welford.mean, welford.m2, metric(imm))


# --------------------------------------------------------------------------- initial step size


class StepSizeSearch(NamedTuple):
    """``find_reasonable_step_size`` for all chains as a machine that asks for one log density and
    gradient per try (``query``, then ``update`` with them), so that the loop that finds the initial
    points can serve it with the same gradient (``init.initialize(..., then=search)``): one copy of
    the density's gradient in the program instead of two.

    The same tries, keys and step sizes as ``find_reasonable_step_size`` per chain: try ``i`` of a
    chain draws its momentum from ``derive_key(keys[c], i)``; a chain stops once its acceptance has
    crossed 0.8, or after ``max_iterations + 1`` tries.
    """

    keys: Array  # (C, 2) key words
    metric: Metric  # per chain (leading axis C)
    step_size: Array  # (C,) the first try's step size
    max_iterations: int = 100

    def begin(self) -> tuple:
        eps = self.step_size
        zeros = jnp.zeros(eps.shape, jnp.int32)
        return eps, zeros, jnp.zeros(eps.shape, bool), jnp.zeros(eps.shape, eps.dtype)

    def running(self, carry) -> Array:
        eps, i, stop, _ = carry
        return ~stop & (i <= self.max_iterations)

    def query(self, carry, state: FlatState):
        """The positions to evaluate for each chain's next try, and what ``update`` needs of it."""
        eps, i, _, direction = carry
        first = i == 0
        trial = jnp.where(first, eps, eps * jnp.where(direction > 0, 2.0, 0.5).astype(eps.dtype))

        def one(key, i, x, log_density, grad, m, trial):
            leaf = _start_leaf(derive_key(key, i), FlatState(x, log_density, grad), m)
            h0 = -leaf.log_density + kinetic_energy(leaf)
            momentum = leaf.momentum + 0.5 * trial * grad  # as ``leapfrog``
            return x + trial * _velocity(m, momentum), (momentum, h0)

        positions, aux = jax.vmap(one)(self.keys, i, state.position, state.log_density,
                                       state.log_density_grad, self.metric, trial)
        return positions, (trial,) + aux

    def update(self, carry, aux, log_density: Array, grad: Array):
        eps, i, stop, direction = carry
        trial, momentum, h0 = aux

        def one(momentum, m, trial, log_density, grad, h0):
            momentum = momentum + 0.5 * trial * grad
            h = -log_density + 0.5 * inner(momentum, _velocity(m, momentum))
            return h0 - jnp.where(jnp.isnan(h), jnp.inf, h)

        dh = jax.vmap(one)(momentum, self.metric, trial, log_density, grad, h0)
        log_threshold = jnp.log(0.8)
        first = i == 0
        direction_new = jnp.where(first, jnp.where(dh > log_threshold, 1.0, -1.0).astype(eps.dtype), direction)
        crossed = jnp.where(direction_new > 0, ~(dh > log_threshold), ~(dh < log_threshold))
        go = self.running(carry)
        return (jnp.where(go, trial, eps), jnp.where(go, i + 1, i), jnp.where(go, ~first & crossed, stop),
                jnp.where(go, direction_new, direction))

    def result(self, carry) -> Array:
        tiny = jnp.finfo(carry[0].dtype).tiny
        return jnp.clip(carry[0], tiny, 1e7)


def find_reasonable_step_size(
    key: Array,
    state: FlatState,
    m: Metric,
    step_size: Array,
    value_and_grad: Callable,
    max_iterations: int = 100,
) -> Array:
    """Stan's ``init_stepsize`` for one chain: double (or halve) the step size while one leapfrog
    step's acceptance ``exp(H0 - H)`` stays above (or below) 0.8, each try with a fresh momentum
    (``StepSizeSearch``, run in a loop of its own).

    ``key`` is a key-word pair (``counter_rng.key_words``).
    """
    one = lambda x: jnp.asarray(x)[None]  # noqa: E731 - a batch of one chain
    search = StepSizeSearch(one(key), jax.tree.map(one, m), one(jnp.asarray(step_size, state.position.dtype)),
                            max_iterations)
    states = jax.tree.map(one, state)
    batched = jax.vmap(value_and_grad)

    def body(carry):
        positions, aux = search.query(carry, states)
        return search.update(carry, aux, *batched(positions))

    carry = jax.lax.while_loop(lambda c: jnp.any(search.running(c)), body, search.begin())
    return search.result(carry)[0]
