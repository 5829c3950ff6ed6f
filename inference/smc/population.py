"""The compiled filter's particle population and its resampling.

``State`` holds every per-particle value of a run (the particle axis first) with the
weights since the last resampling and the evidence gathered at the resampling times.
``Resampler`` decides when to resample (``ess < threshold * N``; always at threshold 1,
never at 0; per island with ``islands > 1``, see ``islands.py``) and gathers every
per-particle value by the ancestors the scheme draws: the weights become 1 and their
log mean is added to ``log_z``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ppl.inference.smc import islands as IS
from ppl.inference.smc.output import take

__all__ = ["State", "Resampler", "gather"]


class State(NamedTuple):
    carry: list  # (N, ...) the loop carry
    live: list  # (N, ...) the random live values (those the cut marks random)
    init_choices: dict  # (N, ...) the sites before the loop
    log_weights: Any  # (N,) since the last resampling
    log_z: Any  # () sum of log mean weights at the resampling times
    valid: Any  # (); in the loop (N,): per slot, whether every particle that held it was valid
    u: dict  # rejuvenation: unconstrained moved parameters (N, ...)
    path: dict  # rejuvenation: step sites (N, T, ...)
    ys: list  # rejuvenation: the loop's stacked outputs (N, T, ...)


def gather(state: State, idx) -> State:
    """Every per-particle value of ``state`` at the ancestors ``idx`` (the weights left as they are)."""
    pick = take(idx)
    carry, live, init_choices, u, path, ys = jax.tree.map(
        pick, (state.carry, state.live, state.init_choices, state.u, state.path, state.ys))
    return state._replace(carry=carry, live=live, init_choices=init_choices, u=u, path=path, ys=ys)


class Resampler:
    """``resampler(state, key, summary, allowed) -> (state, ancestors, resampled?)`` for ``n``
    particles, a scheme of ``resampling.SCHEMES``, an ESS threshold and a number of islands."""

    def __init__(self, n: int, scheme: Callable, threshold: float, islands: int):
        self.n = n
        self.scheme = scheme
        self.threshold = threshold
        self.islands = islands

    def __call__(self, state: State, key, summary, allowed):
        """Resample when ``ess < threshold * N`` (always at threshold 1, never at 0) and ``allowed``.

        ``summary`` = (log mean weight, ESS) of the current weights. Returns (state,
        ancestors, resampled?); ancestors are None when resampling never happens.
        Resampling sets the weights to 1 and adds their log mean to the evidence.
        """
        if self.threshold <= 0.0:
            return state, None, jnp.asarray(False)
        if self.islands > 1:
            return self._islands(state, key, allowed)
        log_mean, ess = summary
        n = self.n
        identity = jnp.arange(n, dtype=jnp.int32)

        def resample(s):
            idx = self.scheme(key, s.log_weights)
            return gather(s, idx)._replace(log_weights=jnp.zeros_like(s.log_weights),
                                           log_z=s.log_z + log_mean), idx

        if self.threshold >= 1.0:  # every step: no branch, so XLA shares the weights' exponentials
            if allowed is True:
                state, idx = resample(state)
                return state, idx, jnp.asarray(True)
            idx = jnp.where(allowed, self.scheme(key, state.log_weights), identity)
            state = gather(state, idx)._replace(
                log_weights=jnp.where(allowed, jnp.zeros_like(state.log_weights), state.log_weights),
                log_z=state.log_z + jnp.where(allowed, log_mean, 0.0))
            return state, idx, jnp.asarray(allowed)
        do = (ess < self.threshold * n) & allowed
        state, idx = jax.lax.cond(do, resample, lambda s: (s, identity), state)
        return state, idx, do

    def _islands(self, state: State, key, allowed):
        """Each island resampled on its own when its ESS falls below ``threshold * (n / islands)``."""
        k, n = self.islands, self.n
        log_mean, ess = IS.summaries(state.log_weights, k)
        do = (ess < self.threshold * (n // k)) | (self.threshold >= 1.0)
        do = do & allowed
        each = IS.per_particle(do, n)
        idx = jnp.where(each, IS.ancestors(self.scheme, key, state.log_weights, k), jnp.arange(n, dtype=jnp.int32))
        state = gather(state, idx)._replace(
            log_weights=jnp.where(each, jnp.zeros_like(state.log_weights), state.log_weights),
            log_z=state.log_z + jnp.where(do, log_mean, 0.0))
        return state, idx, jnp.any(do)
