"""Warm-up adaptation objects: what tunes a kernel family's parameters between transitions.

An adaptation (the protocol ``kernel.Adaptation``) works on all chains at
once: ``init(key, states)``, ``params(A)`` (what ``family`` takes, per
chain), ``update(A, t, active, states, infos)`` after transition ``t`` of the
chains that are ``active`` (in warm-up), ``stats(A)`` (recorded with each
draw) and ``summary(A)`` (reported after the run). The driver calls
``update`` only during warm-up, so the parameters are fixed afterwards and
the draws are those of one Markov kernel. These three adapt each chain on its
own (``per_chain``), so on a mesh each device runs its chains' loop alone
(``driver.on_devices``); an adaptation that pools chains (ChEES) does not say so.

- ``Windowed``: Stan's warm-up for HMC and NUTS (``adaptation``: step size by
  dual averaging, metric from windowed (co)variance estimates), with Stan's
  initial step-size heuristic.
- ``Scales``: Robbins–Monro on the log-scales of random-walk proposals
  (Gibbs's Metropolis updates), towards a target acceptance per proposal:
  ``log s <- log s + (t + 1)^-0.6 (accept - target)``.
- ``Fixed``: no parameters to tune (MH).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.mcmc import adaptation as adapt_mod
from ppl.inference.mcmc.hmc import Params
from ppl.inference.mcmc.kernel import accept_prob

__all__ = ["Windowed", "Scales", "Fixed"]

Array = Any


def _select(mask: Array, on_true: Any, on_false: Any) -> Any:
    """Per-chain select: ``mask`` has shape (chains,), leaves (chains, ...)."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, on_true, on_false)


class Windowed(NamedTuple):
    """Stan's windowed adaptation of ``hmc.Params`` (see ``adaptation``).

    ``value_and_grad`` (flat position -> log density, gradient) serves the initial
    step-size search; ``ok`` says every chain has a usable start (else the search is skipped
    in effect: the step size stays ``initial_step_size``).
    """

    config: adapt_mod.Adaptation
    per_chain = True  # each chain adapts on its own (the driver may split the chains over devices)
    numbers: adapt_mod.DualAveragingParams
    num_warmup: int
    dim: int
    dtype: Any
    value_and_grad: Callable
    ok: Array

    def _fresh(self, eps: Array) -> adapt_mod.AdaptationState:
        return jax.vmap(lambda e: adapt_mod.adaptation_init(self.dim, e, self.config, self.dtype))(eps)

    def search(self, key: Array, chains: int) -> adapt_mod.StepSizeSearch | None:
        """Stan's initial step-size search as a machine for ``init.initialize(..., then=)`` (so the
        start and the search share one gradient), or None when this warm-up does not search; its
        result goes to ``init(..., found=)``. ``key`` is the one ``init`` would take."""
        if not self.config.find_initial_step_size:
            return None
        eps0 = jnp.full((chains,), self.numbers.initial_step_size, self.dtype)
        return adapt_mod.StepSizeSearch(jax.random.bits(key, (chains, 2), jnp.uint32), self._fresh(eps0).metric, eps0)

    def init(self, key: Array, states: Any, found: Array | None = None) -> adapt_mod.AdaptationState:
        chains = states.position.shape[0]
        eps0 = jnp.full((chains,), self.numbers.initial_step_size, self.dtype)
        if found is not None:  # the search ran in the start's loop (``search``)
            return self._fresh(jnp.where(self.ok, found, eps0))
        adapt = self._fresh(eps0)
        if self.config.find_initial_step_size:
            eps = jax.vmap(
                lambda k, s, m, e: adapt_mod.find_reasonable_step_size(k, s, m, e, self.value_and_grad)
            )(jax.random.bits(key, (chains, 2), jnp.uint32), states, adapt.metric, eps0)
            adapt = self._fresh(jnp.where(self.ok, eps, eps0))
        return adapt

    def params(self, adapt: adapt_mod.AdaptationState) -> Params:
        return Params(adapt.step_size, adapt.metric)

    def update(self, adapt, t: Array, active: Array, states: Any, infos: Any):
        """Warm-up bookkeeping after transition ``t`` of the chains in ``active``."""
        W, config = self.num_warmup, self.config
        collect_np, window_end_np = adapt_mod.schedule(W, config)
        collect = jnp.asarray(collect_np if W else np.zeros(1, bool))
        tw = jnp.clip(t, 0, max(W - 1, 0))
        updated = jax.vmap(
            lambda a, tt, x, acc, col, last: adapt_mod.adaptation_update(a, tt, x, acc, col, last, config, self.numbers)
        )(adapt, t, states.position, accept_prob(infos), collect[tw] & active, t == W - 1)
        adapt = _select(active, updated, adapt)
        if bool(window_end_np.any()):
            ends = jnp.asarray(window_end_np)[tw] & active
            adapt = jax.lax.cond(
                jnp.any(ends),
                lambda a: _select(ends, jax.vmap(lambda s: adapt_mod.end_window(s, config))(a), a),
                lambda a: a,
                adapt,
            )
        return adapt

    def stats(self, adapt) -> dict:
        return {"step_size": adapt.step_size}

    def summary(self, adapt) -> dict:
        return {"step_size": adapt.step_size, "inverse_mass_matrix": adapt.metric.inverse_mass_matrix}


class Scales(NamedTuple):
    """Robbins–Monro adaptation of proposal log-scales, one per name in ``targets`` (the
    acceptance each aims at). The kernel's ``Info`` carries ``scale_accept``: name -> the
    acceptance probability of that proposal in the transition."""

    targets: tuple  # ((name, target acceptance), ...)
    per_chain = True  # each chain adapts on its own (the driver may split the chains over devices)
    dtype: Any

    def init(self, key: Array, states: Any) -> dict:
        chains = jax.tree.leaves(states)[0].shape[0]
        return {name: jnp.zeros((chains,), self.dtype) for name, _ in self.targets}

    def params(self, adapt: dict) -> dict:
        return adapt

    def update(self, adapt: dict, t: Array, active: Array, states: Any, infos: Any) -> dict:
        rate = jnp.where(active, (t + 1.0) ** -0.6, 0.0).astype(self.dtype)
        return {name: adapt[name] + rate * (infos.scale_accept[name] - target) for name, target in self.targets}

    def stats(self, adapt) -> dict:
        return {}

    def summary(self, adapt) -> dict:
        return {"log_scale": adapt}


class Fixed(NamedTuple):
    """No adaptation: the family is always called with ``value``."""

    value: Any = None
    per_chain = True  # nothing crosses chains (the driver may split the chains over devices)

    def init(self, key: Array, states: Any) -> None:
        return None

    def params(self, adapt: None) -> Any:
        return self.value

    def update(self, adapt, t, active, states, infos):
        return adapt

    def stats(self, adapt) -> dict:
        return {}

    def summary(self, adapt) -> dict:
        return {}
