"""Initial points for MCMC chains, on the unconstrained scale.

Three strategies (each a ``Strategy``):

- ``uniform(template, radius=2.0)``: every coordinate uniform in
  ``(-radius, radius)`` (Stan's default); a chain whose point has a log
  density or gradient that is not finite is redrawn, up to ``max_tries``
  times, all chains at once;
- ``at_point(point)``: every chain starts at one given point (a prior median,
  a feasible point supplied by the caller);
- ``values(positions)``: given values, one per chain (leading chain axis).

The last two are not redrawn: a bad point there is the caller's to fix, and
``check`` raises a ``ModelError`` that says so.

``initialize`` is pure and jittable; the chain driver runs it inside the same
compiled program as warm-up and sampling, then calls ``check`` on the host.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.mcmc.hmc import FlatState
from ppl.stdlib.errors import DensityError, ModelError

__all__ = ["Strategy", "uniform", "at_point", "values", "initialize", "check", "MAX_TRIES"]

MAX_TRIES = 100

# Status codes of an initial point.
OK, ZERO_DENSITY, NAN_DENSITY, BAD_GRADIENT = 0, 1, 2, 3
NOT_DRAWN = -1  # inside ``initialize`` only: a chain before its first draw


class Strategy(NamedTuple):
    """How to draw initial points. ``kind`` and ``radius`` are static; ``data`` is a pytree of arrays."""

    kind: str  # "uniform" | "point" | "values"
    data: Any
    radius: float = 2.0
    max_tries: int = MAX_TRIES

    def describe(self) -> str:
        if self.kind == "uniform":
            return f"drawn uniformly in (-{self.radius:g}, {self.radius:g}) on the unconstrained scale"
        if self.kind == "point":
            return "at the given initial point"
        return "at the given initial values"


def uniform(template: Any, radius: float = 2.0, max_tries: int = MAX_TRIES) -> Strategy:
    """Uniform in ``(-radius, radius)`` for every coordinate of a position shaped like ``template`` (one chain)."""
    if radius <= 0:
        raise ValueError("the radius of uniform initialisation must be positive")
    return Strategy("uniform", template, float(radius), int(max_tries))


def at_point(point: Any) -> Strategy:
    """Every chain starts at ``point`` (one chain's position)."""
    return Strategy("point", point)


def values(positions: Any) -> Strategy:
    """Given initial positions with a leading chain axis.

    Arrays are taken with a definite dtype: a weakly typed array (``jnp.full(shape, 0.5)``)
    would otherwise key a second compilation of a program already compiled for the same shapes.
    """
    return Strategy("values", jax.tree.map(_strong, positions))


def _strong(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    return jnp.asarray(x, dtype=x.dtype) if getattr(x, "weak_type", False) else x


def _classify(log_density: jax.Array, grad: jax.Array) -> jax.Array:
    """``OK`` when both are finite; else why not (per chain)."""
    finite_grad = jnp.all(jnp.isfinite(grad), axis=-1)
    return jnp.where(
        jnp.isnan(log_density) | (log_density == jnp.inf),
        NAN_DENSITY,
        jnp.where(log_density == -jnp.inf, ZERO_DENSITY, jnp.where(finite_grad, OK, BAD_GRADIENT)),
    ).astype(jnp.int32)


def draw(strategy: Strategy, key: jax.Array, num_chains: int, ravel: Callable) -> jax.Array:
    """Candidate flat positions, shape ``(num_chains, d)``; ``ravel`` flattens one chain's pytree."""
    if strategy.kind == "uniform":
        template = ravel(strategy.data)
        return jax.random.uniform(
            key, (num_chains,) + template.shape, template.dtype, -strategy.radius, strategy.radius
        )
    if strategy.kind == "point":
        flat = ravel(strategy.data)
        return jnp.broadcast_to(flat, (num_chains,) + flat.shape)
    if strategy.kind == "values":
        return jax.vmap(ravel)(strategy.data)
    raise ValueError(f"unknown initialisation strategy {strategy.kind!r}")


class Initialized(NamedTuple):
    position: jax.Array  # (num_chains, d)
    log_density: jax.Array  # (num_chains,)
    log_density_grad: jax.Array  # (num_chains, d)
    status: jax.Array  # (num_chains,) int32, OK when usable
    tries: jax.Array  # () int32


def initialize(
    key: jax.Array,
    strategy: Strategy,
    value_and_grad: Callable,
    num_chains: int,
    ravel: Callable,
    then: Any = None,
) -> Initialized | tuple[Initialized, Any]:
    """Initial points with finite log density and gradient, redrawn (vectorised) when the strategy allows.

    ``value_and_grad`` maps one flat position to ``(log density, gradient)``.

    ``then``: a machine that goes on from the initial points once every chain has a usable one,
    asking for one log density and gradient per chain at each of its steps (``begin()``,
    ``running(carry)``, ``query(carry, states) -> (positions, aux)``, ``update(carry, aux, log
    density, gradient)``, ``result(carry)``; ``adaptation.StepSizeSearch``). It runs in the same loop
    as the draws, so the program evaluates the gradient in one place; returned is ``(initialized,
    result)``, the result meaningless when some chain has no usable start (the machine never ran).
    """
    if then is not None:
        return _initialize_then(key, strategy, value_and_grad, num_chains, ravel, then)
    batched = jax.vmap(value_and_grad)

    @jax.jit  # traced once: its shapes below and the loop body share the trace
    def attempt(key):
        key, sub = jax.random.split(key)
        x = draw(strategy, sub, num_chains, ravel)
        log_density, grad = batched(x)
        return x, log_density, grad, _classify(log_density, grad), key

    if strategy.kind != "uniform" or strategy.max_tries <= 1:
        x, log_density, grad, status, _ = attempt(key)
        return Initialized(x, log_density, grad, status, jnp.int32(1))

    # The first draw is the loop's first iteration (every chain starts "not yet drawn"), so the
    # program holds one copy of the draw and of the log density, not two.
    def again(carry):
        init, key = carry
        x, log_density, grad, status, key = attempt(key)
        redo = init.status != OK
        pick = lambda new, old: jnp.where(redo.reshape(redo.shape + (1,) * (new.ndim - 1)), new, old)
        return Initialized(
            pick(x, init.position),
            pick(log_density, init.log_density),
            pick(grad, init.log_density_grad),
            jnp.where(redo, status, init.status),
            init.tries + 1,
        ), key

    def more(carry):
        init, _ = carry
        return jnp.any(init.status != OK) & (init.tries < strategy.max_tries)

    shapes = jax.eval_shape(attempt, key)
    undrawn = Initialized(*(jnp.zeros(s.shape, s.dtype) for s in shapes[:3]),
                          jnp.full((num_chains,), NOT_DRAWN, jnp.int32), jnp.int32(0))
    return jax.lax.while_loop(more, again, (undrawn, key))[0]


def _initialize_then(key, strategy: Strategy, value_and_grad: Callable, num_chains: int, ravel: Callable, then):
    """``initialize`` then ``then``, in one loop: each iteration evaluates the gradient once per chain,
    at a new draw of initial points (phase 0) or at the machine's query (phase 1)."""
    batched = jax.jit(jax.vmap(value_and_grad))  # traced once: its shapes below and the loop share the trace
    tries_allowed = strategy.max_tries if strategy.kind == "uniform" else 1

    def candidates(key):
        key, sub = jax.random.split(key)
        return draw(strategy, sub, num_chains, ravel), key

    x0 = jax.eval_shape(lambda k: candidates(k)[0], key)
    shapes = jax.eval_shape(batched, x0)
    undrawn = Initialized(jnp.zeros(x0.shape, x0.dtype), *(jnp.zeros(s.shape, s.dtype) for s in shapes),
                          jnp.full((num_chains,), NOT_DRAWN, jnp.int32), jnp.int32(0))
    DRAWING, RUNNING, DONE = 0, 1, 2

    def body(carry):
        phase, init, key, machine = carry
        drawn, next_key = candidates(key)
        states = FlatState(init.position, init.log_density, init.log_density_grad)
        asked, aux = then.query(machine, states)
        drawing = phase == DRAWING
        log_density, grad = batched(jnp.where(drawing, drawn, asked.astype(drawn.dtype)))

        # phase 0: chains without a usable point take the new draw
        redo = drawing & (init.status != OK)
        pick = lambda new, old: jnp.where(redo.reshape(redo.shape + (1,) * (new.ndim - 1)), new, old)
        status = jnp.where(redo, _classify(log_density, grad), init.status)
        init = Initialized(pick(drawn, init.position), pick(log_density, init.log_density),
                           pick(grad, init.log_density_grad), status,
                           init.tries + drawing.astype(jnp.int32))
        all_ok = jnp.all(status == OK)
        after_drawing = jnp.where(all_ok, RUNNING, jnp.where(init.tries < tries_allowed, DRAWING, DONE))

        # phase 1: the machine takes its answer
        updated = then.update(machine, aux, log_density, grad.astype(asked.dtype))
        machine = jax.tree.map(lambda new, old: jnp.where(drawing, old, new), updated, machine)
        after_running = jnp.where(jnp.any(then.running(machine)), RUNNING, DONE)
        phase = jnp.where(drawing, after_drawing, after_running).astype(jnp.int32)
        return phase, init, next_key, machine  # (no draw follows the drawing phase: its key is spent freely)

    carry = (jnp.int32(DRAWING), undrawn, key, then.begin())
    _, init, _, machine = jax.lax.while_loop(lambda c: c[0] != DONE, body, carry)
    return init, then.result(machine)


def _init_advice() -> str:
    """How to give initial values from where the user is (Python, ``ppl run``, the REPL)."""
    from ppl.inference.mcmc.checks import frontend

    python = 'ppl.NUTS(init={"site": value, ...})'
    flag = "--init NAME=VALUE or --init FILE.json"
    where = frontend()
    if where == "cli":
        return flag
    if where == "repl":
        return f"{python} in Python, or `ppl run FILE {flag}`"
    return python


def check(status: np.ndarray, tries: int, strategy: Strategy) -> None:
    """Raise a ``ModelError`` (``DensityError`` for gradients) when some chain has no usable initial point."""
    status = np.asarray(status)
    bad = np.flatnonzero(status != OK)
    if bad.size == 0:
        return
    chains = ", ".join(str(int(c)) for c in bad[:10]) + (" ..." if bad.size > 10 else "")
    plural = "s" if bad.size > 1 else ""
    where = (
        f"at every one of the {tries} initial points tried ({strategy.describe()})"
        if strategy.kind == "uniform"
        else strategy.describe()
    )
    if np.all(status[bad] == BAD_GRADIENT):
        raise DensityError(
            f"the log density is finite but its gradient is NaN or infinite {where}, "
            f"for chain{plural} {chains}; gradient-based samplers (HMC, NUTS) cannot start.",
            hint="Look for operations with undefined derivatives at the start point (sqrt or log of 0, "
            f"abs at 0, a division by zero) or give initial values away from them ({_init_advice()}).",
        )
    kinds = set(status[bad].tolist())
    if kinds == {ZERO_DENSITY}:
        what = "zero (log density -inf)"
    elif kinds <= {NAN_DENSITY, BAD_GRADIENT}:
        what = "NaN"
    else:
        what = "zero (log density -inf) or NaN"
    raise ModelError(
        f"the model has density {what} {where}, for chain{plural} {chains}.",
        hint="Check that the observed data lie in the support of their distributions and that "
        "parameter constraints agree with the priors, or give initial values where the model "
        f"has positive density ({_init_advice()}).",
    )
