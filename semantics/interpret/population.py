"""The population representation: a weighted collection of particles.

A population is a list of ``n`` particles (runs of the weighted sampler,
``sampler.Particle``), each with its log weight ``w_i``. It denotes the measure

    (1/n) sum_i exp(w_i) delta(x_i)

whose total mass, ``log_evidence = log mean exp(w)``, estimates the program's
evidence, and whose normalisation estimates its posterior. Weights are
summarised and resampled by the shared definitions of ``semantics.resampling``
(the compiled filter uses the same ones).

Laws:

- ``spawn(n, start, key)`` multiplies the population: one run becomes ``n``
  independent runs (run ``i`` with the key ``fold_in(key, i)``), each carrying
  the run's own weight. The expected measure of the population is the measure
  of one run, so spawning preserves the normalised measure and the evidence
  estimate is unbiased (the mean of ``n`` unbiased weights).
- ``resample(population, key)`` preserves the population's expected measure:
  particle ``j`` has ``n * exp(w_j) / sum exp(w)`` offspring on average, and
  every offspring carries the mean weight, so the total mass is unchanged
  *exactly* and the expectation of any function under the new population,
  averaged over the resampling, is the old one. Offspring draw their future
  choices with fresh keys (copies of one particle do not repeat each other).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics import resampling

__all__ = ["spawn", "log_weights", "log_evidence", "summarise", "ancestors", "resample", "resample_indices",
           "log_mean_exp"]

_jitted: dict = {}


def spawn(n: int, start: Callable, key) -> list:
    """``n`` independent runs ``start(fold_in(key, i))`` of a representation (a list of particles)."""
    return [start(jax.random.fold_in(key, i)) for i in range(n)]


def log_weights(particles) -> np.ndarray:
    return np.array([p.log_weight for p in particles], dtype=np.float64)


def log_mean_exp(log_w) -> float:
    """``log mean exp(log_w)`` in float64 (the shared definition)."""
    return float(resampling.log_mean_exp(np.asarray(log_w, dtype=np.float64)))


def log_evidence(particles) -> float:
    """The population's total mass, ``log mean exp(w)``: its evidence estimate."""
    return log_mean_exp(log_weights(particles))


def summarise(particles) -> tuple[float, float]:
    """``(log mean exp(w), ESS)`` of the population's weights, in float64."""
    log_mean, ess = resampling.summarise(log_weights(particles))
    return float(log_mean), float(ess)


def ancestors(key, log_w, scheme: str = "systematic", num: int | None = None) -> np.ndarray:
    """Ancestor indices drawn in proportion to ``exp(log_w)`` by a shared scheme (``num`` of them)."""
    if scheme not in resampling.SCHEMES:
        raise ValueError(f"unknown resampling scheme {scheme!r}: use one of {sorted(resampling.SCHEMES)}")
    w = np.asarray(log_w, dtype=np.float64)
    num = len(w) if num is None else int(num)
    fn = _jitted.get((scheme, num))
    if fn is None:
        scheme_fn = resampling.SCHEMES[scheme]
        fn = _jitted[(scheme, num)] = jax.jit(lambda k, lw: scheme_fn(k, lw, num))
    return np.asarray(fn(key, jnp.asarray(w)))


def resample_indices(key, log_w, scheme: str = "systematic", n: int | None = None) -> np.ndarray:
    """Ancestor indices drawn in proportion to ``exp(log_w)`` (``n`` of them; as many as the weights by default)."""
    return ancestors(key, log_w, scheme, n)


def resample(particles: list, key, scheme: str = "systematic") -> list:
    """An equally weighted population with the same total mass and the same expected measure (see the laws)."""
    log_w = log_weights(particles)
    k_ancestors, k_offspring = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
    idx = ancestors(k_ancestors, log_w, scheme)
    total = log_mean_exp(log_w)
    return [particles[a].fork(jax.random.fold_in(k_offspring, j), total) for j, a in enumerate(idx)]
