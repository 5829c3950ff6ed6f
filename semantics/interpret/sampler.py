"""The weighted sampler: the quasi-Borel probability monad made concrete.

A program denotes a map from a source of randomness (a PRNG key) to a value
and a weight. Random functions are ordinary values of these maps, and ``mem``
is a memo table threaded through one run.

One run of the weighted sampler is a :class:`WeightedState`: its key, how
many random choices it has drawn, the trace so far (address -> value) and the
log weight. Everything that runs a program by sampling performs its effects
on such a state, with the same two operations:

- ``state.sample(site)``: the ``c``-th random choice of the run is drawn from
  the site's distribution with the key ``fold_in(key, c)`` (``c = 1, 2, ...``)
  and recorded in the trace;
- ``state.score(site, w)``: the log weight grows by ``w``.

As a representation (for :func:`free.run`), ``M a = WeightedState -> a``::

    pure(v)         = s -> v                      (the path's deterministic records join the trace)
    sample(site)    = s -> s.sample(site)
    score(site, w)  = s -> s.score(site, w)       (Sampler: the weight is dropped)
    bind(m, k)      = s -> k(m(s))(s)

Three drivers run the same state, and agree exactly (same keys, same draws,
same weight; ``tests/test_representations.py``):

- the fold of the tree by :class:`Weighted` (the definition above);
- :func:`run_to_end`, the same fold as a loop (no recursion, any length);
- :class:`WeightedHandler`, effectful Python run directly under the state, with
  no tree and no replay: ``weighted_python(f, key) == weighted(reify_python(f), key)``.

A :class:`Particle` is a run in progress: the rest of the program (a tree; a
``Pure`` when it has finished) and its state. The sequential representation
suspends particles at scores, the population carries many, and the traced
representation moves them by MH; all of them draw and weigh through the
state here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from ppl.semantics import effects
from ppl.semantics.interpret.free import Pure, SampleF, outside_support, sample_log_density, site_score
from ppl.stdlib.distributions.subsample import SubsampleIndices

__all__ = ["WeightedState", "Weighted", "Sampler", "Particle", "perform", "start", "run_to_end", "weighted",
           "WeightedHandler", "weighted_python"]


@dataclass
class WeightedState:
    """One run of the weighted sampler (see the module laws).

    ``checked``: also compute each draw's log density, so that a parameter
    outside its domain (or a NaN density) is reported at its random choice
    rather than at a later score. ``impossible_site``: the first observation
    whose value lies outside its distribution's support, kept to explain a
    weight of zero (:attr:`impossible`).
    """

    key: Any
    count: int = 0
    trace: dict = field(default_factory=dict)
    log_weight: float = 0.0
    checked: bool = False
    impossible_site: Any = None

    def sample(self, site: effects.Site):
        if isinstance(site.dist, SubsampleIndices):
            # the weight would be the exp of a subsample's estimate of the log-likelihood: not the posterior's
            raise effects.subsampling_refused(site.address, site.span, "the eager engine (the model run as Python)")
        self.count += 1
        x = site.dist.sample(jax.random.fold_in(self.key, self.count))
        if self.checked:
            sample_log_density(site, x)
        self.trace[site.address] = x
        return x

    def score(self, site: effects.Site, log_weight: float) -> None:
        if log_weight == -math.inf and site.kind == "observe" and self.impossible_site is None:
            self.impossible_site = site
        self.log_weight += log_weight

    def record(self, records: dict) -> None:
        """The deterministic values of the path (``ppl.deterministic``) join the trace."""
        self.trace.update(records)

    @property
    def impossible(self):
        """The error explaining a zero weight (an observation outside its support), or None."""
        return None if self.impossible_site is None else outside_support(self.impossible_site)

    def fork(self, key, log_weight: float) -> "WeightedState":
        """A copy of this run that draws its next choices with a new key (an offspring of resampling)."""
        return WeightedState(key, 0, dict(self.trace), log_weight, self.checked, self.impossible_site)


class Weighted:
    """The weighted sampler as a representation (``M a = WeightedState -> a``; see the module laws)."""

    keep_weight = True

    def pure(self, value, records):
        def finish(state):
            state.record(records)
            return value

        return finish

    def sample(self, site):
        return lambda state: state.sample(site)

    def score(self, site, log_weight):
        w = log_weight if self.keep_weight else 0.0
        return lambda state: state.score(site, w)

    def bind(self, m, k, site=None):
        return lambda state: k(m(state))(state)


class Sampler(Weighted):
    """The sampler: the weighted sampler with the weights forgotten (it draws from the prior)."""

    keep_weight = False


@dataclass
class Particle:
    """A run of the weighted sampler in progress: the rest of the program and the run's state."""

    program: Any  # a program tree (free.SampleF / ScoreF), or free.Pure once the run has finished
    state: WeightedState

    @property
    def log_weight(self) -> float:
        return self.state.log_weight

    @property
    def finished(self) -> bool:
        return isinstance(self.program, Pure)

    @property
    def value(self):
        return self.program.value

    @property
    def trace(self) -> dict:
        return self.state.trace

    def fork(self, key, log_weight: float) -> "Particle":
        return Particle(self.program, self.state.fork(key, log_weight))


def perform(free, state: WeightedState):
    """Perform the first effect of an unfinished tree on ``state``; the rest of the tree.

    A finished tree (``Pure``) has its records joined to the trace and is returned as is.
    """
    if isinstance(free, Pure):
        state.record(free.records)
        return free
    if isinstance(free, SampleF):
        return free.k(jnp.asarray(state.sample(free.site)))
    state.score(free.site, free.log_weight)
    return free.k()


def start(free, key, checked: bool = False) -> Particle:
    """A run of the tree that has not drawn anything yet."""
    return Particle(free, WeightedState(key, checked=checked))


def run_to_end(p: Particle) -> Particle:
    """Run the particle to the end of its program (the Weighted fold, as a loop), in place."""
    free, state = p.program, p.state
    while not isinstance(free, Pure):
        free = perform(free, state)
    perform(free, state)
    p.program = free
    return p


def weighted(free, key, checked: bool = False) -> Particle:
    """One run of the weighted sampler over a program tree, finished."""
    return run_to_end(start(free, key, checked))


class WeightedHandler(effects.Handler):
    """The weighted sampler run directly on effectful Python (no tree, no replay): same state, same law."""

    def __init__(self, state: WeightedState):
        super().__init__()
        self.state = state

    def site(self, site):
        if site.kind == "sample":
            return self.state.sample(site)
        if site.kind == "deterministic":
            self.state.trace[site.address] = site.value
            return site.value
        self.state.score(site, site_score(site))
        return None


def weighted_python(thunk, key, checked: bool = False) -> Particle:
    """One run of the weighted sampler over ``thunk()``, effectful Python, finished."""
    state = WeightedState(key, checked=checked)
    with WeightedHandler(state):
        value = thunk()
    return Particle(Pure(value, {}), state)
