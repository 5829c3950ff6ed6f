"""SMC on any program, in the reference semantics: ``sequentially(resample) . spawn(n)``.

The eager filter is a composition of the representations of
``semantics.interpret`` (MonadBayes's ``smc = sequentially resampler k .
spawn n``, Ścibior et al. 2018):

- ``population.spawn(n)``: ``n`` runs of the program's tree, each a particle of
  the weighted sampler with its own key;
- ``sequential.sequentially(f)``: every unfinished particle advances to its
  next ``score`` (drawing its random choices from the prior), then ``f`` acts
  on the population; until every particle has finished. Particles may finish
  at different points (random-length programs): a finished particle keeps its
  weight and takes part in resampling;
- ``f`` here resamples (``population.resample``) when the effective sample
  size is low, and never after the last point; with ``mh_steps`` it then
  moves every particle by the traced representation's MH step
  (``traced.mh_step``): resample-move.

Resampling keeps the population's total mass (every offspring carries the
mean weight), so ``log Z = log mean exp(final weights)`` is the (unbiased)
evidence estimate, also under adaptive resampling and resample-move.
Without resampling (``ess_threshold=0``) the filter *is* importance sampling:
the same particles as ``Importance`` draws, key for key.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from ppl.inference._common import annotate, population_result, program_tree
from ppl.inference.result import Result
from ppl.semantics.interpret import population, sequential, traced
from ppl.semantics.interpret.sampler import start
from ppl.stdlib.errors import ModelError, PPLError

__all__ = ["run_eager", "TraceMH"]


@dataclass(frozen=True, kw_only=True)
class TraceMH:
    """Resample-move for any program: after each resampling, ``num_moves`` single-site
    Metropolis-Hastings moves of every particle's whole trace so far (the traced representation's
    MH step, which leaves the partial posterior at that point invariant). It runs in the eager
    engine, so it serves dynamic models (recursion, random-length structure), where the compiled
    moves (``RandomWalk``, ``HMCMove``, ``NUTSMove``) cannot go."""

    num_moves: int = 1

    def __post_init__(self):
        k = self.num_moves
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ModelError(f"TraceMH(num_moves=...) must be a positive whole number, not {k!r}")


def run_eager(program, args, key, *, num_particles: int, resampling: str, ess_threshold: float,
              mh_steps: int = 0) -> Result:
    """SMC over the program's scores, with concrete values (see the module docstring).

    Particle ``i`` runs with the key ``fold_in(key, i)``; the resampling and
    the moves at suspension point ``t`` use ``fold_in(fold_in(key, n), t)``.
    """
    n = num_particles
    try:
        root = program_tree(program, args)
        particles = population.spawn(n, lambda k: start(root, k), key)
        step = _at_suspension(root, n, resampling, ess_threshold, mh_steps)
        particles, reports = sequential.sequentially(step, particles, jax.random.fold_in(key, n))
    except PPLError as err:
        raise annotate(err) from None
    stats = {"ess": np.asarray([r[0] for r in reports]), "resampled": np.asarray([r[1] for r in reports], bool)}
    if mh_steps:
        stats["moved"] = np.asarray([r[2] for r in reports])
    return population_result(particles, "SMC", stats)


def _at_suspension(root, n: int, resampling: str, ess_threshold: float, mh_steps: int):
    """What the filter does at each suspension point: check the weights, resample when the ESS is
    low (and more points follow), then move the offspring by MH."""

    def step(particles, t, key):
        log_w = population.log_weights(particles)
        if np.any(np.isnan(log_w)):
            raise ModelError(f"a particle's weight became NaN at score number {t}",
                             hint="Check the model's parameters and observations for NaN values.")
        if np.all(log_w == -np.inf):
            raise ModelError(f"every particle has weight zero after score number {t}: the observations "
                             "are impossible under the particles' draws",
                             hint="Use more particles, or check the observations against the model.")
        _, ess = population.summarise(particles)
        more = not all(p.finished for p in particles)
        do = more and ess_threshold > 0 and (ess_threshold >= 1 or ess < ess_threshold * n)
        moved = 0.0
        if do:
            particles = population.resample(particles, jax.random.fold_in(key, 0), resampling)
            if mh_steps:
                particles, moved = _move(root, particles, t, jax.random.fold_in(key, 1), mh_steps)
        return particles, (ess, do, moved)

    return step


def _move(root, particles, t, key, mh_steps):
    """``mh_steps`` single-site MH moves of every particle; returns them and the fraction moved."""
    accepted = 0
    out = []
    for j, p in enumerate(particles):
        k = jax.random.fold_in(key, j)
        any_move = False
        for s in range(mh_steps):
            p, ok = traced.mh_step(root, p, t, jax.random.fold_in(k, s))
            any_move |= ok
        accepted += any_move
        out.append(p)
    return out, accepted / len(particles)
