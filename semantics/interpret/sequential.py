"""The sequential representation: a program that suspends at each ``score``.

A program tree *is* a coroutine: :func:`advance` runs a particle (a run of the
weighted sampler, ``sampler.Particle``) up to and including its next score,
drawing its random choices from the prior with its own state, and leaves the
rest of the program suspended. :func:`sequentially` is the transformer that
applies a function to the whole population at every suspension point; SMC is
``sequentially(resample)`` over a spawned population (MonadBayes's
``sequentially resampler k . spawn n``; see ``inference/smc/eager.py``).

Laws:

- ``advance`` run until the program finishes is the weighted sampler: the same
  draws (from the particle's key), trace and summed weight as
  ``sampler.run_to_end`` of the same particle, exactly;
- ``sequentially(f, population)`` applies ``f`` after every particle has
  advanced past its ``t``-th score, ``t = 1, 2, ...``, while any particle is
  unfinished; particles that finished earlier take part unchanged. With ``f``
  the identity it is the weighted sampler of each particle.
"""

from __future__ import annotations

from typing import Callable

import jax

from ppl.semantics.interpret.free import Pure, SampleF
from ppl.semantics.interpret.sampler import Particle, perform

__all__ = ["advance", "sequentially"]


def advance(p: Particle) -> Particle:
    """Run the particle to its next score (inclusive) or to its end, in place; returns it."""
    free, state = p.program, p.state
    while True:
        is_sample = isinstance(free, SampleF)
        free = perform(free, state)
        if not is_sample:  # a score was performed, or the program has finished
            break
    if isinstance(free, Pure):  # finished right after its last score: the path's records join the trace
        state.record(free.records)
    p.program = free
    return p


def sequentially(f: Callable, particles: list, key) -> tuple[list, list]:
    """Advance every unfinished particle to its next score and apply ``f``, until all have finished.

    ``f(particles, t, key_t) -> (particles, report)`` runs at suspension point
    ``t`` (1, 2, ...) with its own key ``fold_in(key, t)``. Returns the finished
    particles and the reports, one per suspension point.
    """
    reports = []
    t = 0
    while not all(p.finished for p in particles):
        t += 1
        particles = [p if p.finished else advance(p) for p in particles]
        particles, report = f(particles, t, jax.random.fold_in(key, t))
        reports.append(report)
    return particles, reports
