"""The sequential representation: a program that suspends at each ``score``.

A program tree *is* a coroutine: :func:`advance` runs it (drawing random
choices from the prior) up to and including its next score, and returns the
suspended rest. SMC is ``Population`` over ``Sequential``: advance every
particle to its next score, reweight, resample, repeat.

Law: running ``advance`` until the program finishes, summing the weights,
equals the ``Weighted`` fold of the same tree with the same keys.
"""

from __future__ import annotations

from typing import NamedTuple, Any

import jax
import jax.numpy as jnp

from ppl.semantics.interpret.free import Pure, SampleF, ScoreF

__all__ = ["Particle", "advance", "is_finished"]


class Particle(NamedTuple):
    program: Any  # the suspended rest of the program (a tree)
    trace: dict
    log_weight: float


def is_finished(p: Particle) -> bool:
    return isinstance(p.program, Pure)


def advance(p: Particle, key) -> tuple[Particle, float]:
    """Run to the next score (inclusive); return the suspended particle and that step's weight."""
    free, trace = p.program, dict(p.trace)
    step_weight = 0.0
    while True:
        if isinstance(free, Pure):
            trace.update(free.records)
            break
        if isinstance(free, SampleF):
            key, sub = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
            x = free.site.dist.sample(sub)
            trace[free.site.address] = x
            free = free.k(jnp.asarray(x))
            continue
        step_weight += free.log_weight
        free = free.k()
        break
    return Particle(free, trace, p.log_weight + step_weight), step_weight
