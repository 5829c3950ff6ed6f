"""The traced representation: a particle's run, re-run with one random choice changed (MH).

A particle (``sampler.Particle``) carries its trace, so its run can be
replayed from the program's root with the recorded values. :func:`mh_step`
is single-site trace Metropolis-Hastings (Wingate et al. 2011; MonadBayes's
``mhStep`` on ``Traced``): pick one of the run's random choices uniformly,
draw it afresh from its prior, re-run the program from the root keeping every
other recorded value (choices that come into existence are drawn from their
priors, choices that disappear are dropped), and accept with probability
``min(1, alpha)``::

    log alpha = log K - log K' + sum_{a kept} [log p'(x_a) - log p(x_a)] + S' - S

where ``K``, ``K'`` count the random choices of the current and proposed
runs, "kept" are the addresses in both other than the one redrawn, ``p``/``p'``
are their densities on each run's path and ``S``/``S'`` the runs' scores.

The run is *partial*: inside SMC a particle stands at suspension point ``t``
(after its ``t``-th score, or at its end if it has fewer), and the re-run
stops at the same point. Law: ``mh_step(root, ., t)`` leaves invariant the
partial posterior ``pi_t(x) ∝ prior(x) * exp(sum of the first t scores)`` of
runs stopped at point ``t``; at the end of the program (``t`` at least the
number of scores) that is the posterior. So resample-move, which applies it
after each resampling, keeps the population's expected measure
(``tests/test_representations.py``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ppl.semantics.interpret.free import Pure, SampleF, sample_log_density
from ppl.semantics.interpret.sampler import Particle, WeightedState

__all__ = ["Replayed", "replay", "log_acceptance", "mh_step"]


class Replayed(NamedTuple):
    particle: Particle  # the re-run, suspended at point t (or finished)
    log_densities: dict  # address -> log density of each random choice on this path, in order
    score: float  # the sum of the scores up to point t


def replay(root, t: int, values: dict, redraw: str | None, key) -> Replayed:
    """Run ``root`` to suspension point ``t``, taking each random choice from ``values`` when it has one
    there (except ``redraw``), and drawing it from its prior otherwise (with the key ``key``)."""
    state = WeightedState(key)
    free, scores, densities = root, 0, {}
    while not isinstance(free, Pure):
        if isinstance(free, SampleF):
            site = free.site
            if site.address != redraw and site.address in values:
                x = values[site.address]
                state.trace[site.address] = x
            else:
                x = state.sample(site)
            densities[site.address] = sample_log_density(site, x)
            free = free.k(jnp.asarray(x))
            continue
        state.score(free.site, free.log_weight)
        free = free.k()
        scores += 1
        if scores == t:
            break
    if isinstance(free, Pure):
        state.record(free.records)
    return Replayed(Particle(free, state), densities, state.log_weight)


def log_acceptance(current: Replayed, proposed: Replayed, chosen: str) -> float:
    """``log alpha`` of the move from ``current`` to ``proposed`` that redrew ``chosen`` (the module formula)."""
    kept = [a for a in proposed.log_densities if a in current.log_densities and a != chosen]
    return (math.log(len(current.log_densities)) - math.log(len(proposed.log_densities))
            + sum(proposed.log_densities[a] - current.log_densities[a] for a in kept)
            + proposed.score - current.score)


def mh_step(root, p: Particle, t: int, key) -> tuple[Particle, bool]:
    """One single-site MH move of the particle at suspension point ``t`` (see the module law).

    Returns the particle after the move (the proposed run, carrying ``p``'s weight, or ``p`` itself)
    and whether the proposal was accepted.
    """
    k_site, k_draw, k_accept = (jax.random.fold_in(key, i) for i in range(3))
    current = replay(root, t, p.trace, None, k_draw)  # every value recorded: the particle's own run
    addresses = list(current.log_densities)
    if not addresses:
        return p, False
    chosen = addresses[int(jax.random.randint(k_site, (), 0, len(addresses)))]
    proposed = replay(root, t, p.trace, chosen, k_draw)
    log_alpha = log_acceptance(current, proposed, chosen)
    u = float(jax.random.uniform(k_accept))
    if math.isnan(log_alpha) or (math.log(u) if u > 0 else -math.inf) >= log_alpha:
        return p, False
    moved = proposed.particle
    moved.state.log_weight = p.log_weight  # the move keeps the population's weights
    moved.state.checked = p.state.checked
    return moved, True
