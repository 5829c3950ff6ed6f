"""The ChEES warm-up: step size, trajectory length and diagonal metric, tuned across many chains.

ChEES-HMC (Hoffman, Radul & Sountsov, *An Adaptive MCMC Scheme for Setting
Trajectory Lengths in Hamiltonian Monte Carlo*, AISTATS 2021) runs many
chains of jittered HMC (``chees``) that share one step size ``eps``, one
trajectory length ``T`` and one metric, all tuned during warm-up from
statistics across the chains (this is the ``kernel.Adaptation`` protocol: the
driver hands ``update`` every chain's state and ``Info``):

- ``eps``: dual averaging (``adaptation.dual_averaging_update``, Stan's
  constants) of the *harmonic mean* over chains of the acceptance
  probability towards ``target_accept`` (0.651 by default, the optimum for
  HMC in high dimension); the harmonic mean is dominated by the worst chains,
  so no chain is left stuck. Divergent transitions are left out of it.
- ``T``: gradient ascent on ``log T`` of the ChEES criterion
  ``E[(|x' - E x'|^2 - |x - E x|^2)^2] / 4`` (the change in the estimate of
  the expected squared distance from the mean), with ``x`` a chain's position
  before a transition and ``x'`` the proposal after it, both whitened by the
  metric. Its pathwise derivative per chain is
  ``t (|c'|^2 - |c|^2) <x' - E x', p'>`` (``c`` the whitened, centred
  positions, ``p'`` the momentum at the proposal, ``t`` the integration time,
  ``dt / dlog T = t``), averaged over chains with weights the acceptance
  probabilities; the ascent is RMSProp-like (squared-gradient average with
  rate 0.05), each step clipped to ``|Delta log T| <= 0.35``, and ``T`` stays
  in ``[eps, max_leapfrog_steps * eps]``.
- the metric (``adapt_mass``): the diagonal inverse mass matrix is a running
  average of the variance across chains of their positions (Stan's
  regularisation toward ``1e-3``), with the same ``k^-1/2`` weights as the
  iterate averages below, so the transient of early warm-up fades.

Sampling uses the iterate averages of warm-up (weights ``k^-1/2`` for ``log T``;
dual averaging's own average for ``log eps``), fixed from then on, so the draws
are those of one (time-inhomogeneous, through the jitter) Markov chain per
chain, each of whose kernels leaves the target invariant.

The statistics are means over *all* chains: in one compiled program on a mesh,
the chain axis is split over the devices and these means are collectives.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from ppl.inference.mcmc import adaptation as adapt_mod
from ppl.inference.mcmc.chees import Params
from ppl.inference.mcmc.hmc import metric

__all__ = ["WarmupState", "ChEESWarmup", "harmonic_mean", "trajectory_gradient"]

Array = Any

SQ_GRAD_RATE = 0.05  # the squared-gradient average's rate (RMSProp, beta2 = 0.95)
MAX_LOG_UPDATE = 0.35  # about log(2) / 2: T changes by at most ~1.4x per warm-up step


class WarmupState(NamedTuple):
    """The warm-up's state: one value for all chains, except ``previous`` (chains, dim)."""

    count: Array  # updates so far
    dual_averaging: adapt_mod.DualAveraging
    log_length: Array  # log T, the current iterate
    log_length_avg: Array  # its average
    sq_grad: Array  # the squared-gradient average
    var: Array  # (dim,) the running average of the variance across chains
    params: Params  # what the kernel runs with (one value, broadcast to every chain)
    previous: Array  # (chains, dim) each chain's position before its last transition


def harmonic_mean(accept: Array, keep: Array) -> Array:
    """The harmonic mean of ``accept`` over the chains where ``keep``; 0 when it is not finite."""
    n = jnp.sum(keep)
    total = jnp.sum(jnp.where(keep, 1.0 / accept, 0.0))
    hm = n / total
    return jnp.where(jnp.isfinite(hm) & (n > 0), hm, 0.0)


def trajectory_gradient(previous: Array, proposal: Array, velocity: Array, time: Array, accept: Array,
                        keep: Array, inverse_mass_matrix: Array) -> Array:
    """The ChEES criterion's derivative in ``log T``, averaged over chains weighted by ``accept``
    (chains not in ``keep`` left out). Arrays are (chains, dim), ``accept`` / ``time`` (chains,)."""
    keep = keep & jnp.all(jnp.isfinite(proposal), axis=-1)  # a proposal at a NaN density says nothing
    weights = jnp.where(keep, accept, 0.0)
    proposal = jnp.where(keep[:, None], proposal, 0.0)
    scale = jax.lax.rsqrt(inverse_mass_matrix)
    centred_before = previous - jnp.mean(previous, axis=0)
    prop_mean = jnp.sum(weights[:, None] * proposal, axis=0) / (jnp.sum(weights) + 1e-20)
    centred_after = proposal - prop_mean
    before = jnp.sum((centred_before * scale) ** 2, axis=-1)
    after = jnp.sum((centred_after * scale) ** 2, axis=-1)
    # d/dt of |Sigma^-1/2 (x'(t) - m)|^2 / 2 = (x' - m) . Sigma^-1 v' = (x' - m) . p'
    slope = jnp.sum(centred_after * velocity / inverse_mass_matrix, axis=-1)
    per_chain = time * (after - before) * slope
    weights = jnp.where(jnp.isfinite(per_chain), weights, 0.0)
    per_chain = jnp.where(jnp.isfinite(per_chain), per_chain, 0.0)
    return jnp.sum(weights * per_chain) / (jnp.sum(weights) + 1e-20)


def _broadcast(x: Array, chains: int) -> Array:
    return jnp.broadcast_to(x, (chains,) + jnp.shape(x))


class ChEESWarmup(NamedTuple):
    """The ChEES warm-up as a ``kernel.Adaptation`` (see the module docstring).

    ``builder``: the ``chees.Builder`` (its options); ``numbers``: target acceptance and
    dual-averaging constants; ``value_and_grad`` serves the initial step-size search,
    ``ok`` says every chain has a usable start.
    """

    # no ``per_chain``: its statistics are means over all chains, so the driver runs one loop over
    # every chain (partitioned over a mesh by XLA) rather than one per device (``driver.on_devices``)

    builder: Any
    numbers: adapt_mod.DualAveragingParams
    num_warmup: int
    dim: int
    dtype: Any
    value_and_grad: Callable
    ok: Array

    def init(self, key: Array, states: Any) -> WarmupState:
        positions = states.position
        chains = positions.shape[0]
        eps0 = jnp.asarray(self.numbers.initial_step_size, self.dtype)
        unit = metric(jnp.ones((self.dim,), self.dtype))
        # Stan's heuristic per chain (one leapfrog step accepted with probability ~0.8), then the
        # median over chains: one step size for all
        found = jax.vmap(
            lambda k, s: adapt_mod.find_reasonable_step_size(k, s, unit, eps0, self.value_and_grad)
        )(jax.random.bits(key, (chains, 2), jnp.uint32), states)
        eps = jnp.where(self.ok, jnp.median(found), eps0).astype(self.dtype)
        log_eps = jnp.log(eps)
        zero = jnp.zeros((), self.dtype)
        return WarmupState(
            count=zero,
            dual_averaging=adapt_mod.dual_averaging_init(eps),
            log_length=log_eps,
            log_length_avg=log_eps,
            sq_grad=zero,
            var=jnp.ones((self.dim,), self.dtype),
            params=Params(eps, jnp.ones((self.dim,), self.dtype), eps),
            previous=positions,
        )

    def params(self, adapt: WarmupState) -> Params:
        chains = adapt.previous.shape[0]
        return jax.tree.map(lambda x: _broadcast(x, chains), adapt.params)

    def update(self, adapt: WarmupState, t: Array, active: Array, states: Any, infos: Any) -> WarmupState:
        """After warm-up transition ``t`` (every chain makes it together)."""
        count = adapt.count + 1.0
        weight = count**-0.5
        accept = jnp.where(jnp.isnan(infos.accept_prob), 0.0, infos.accept_prob)
        keep = ~infos.diverging
        # step size: dual averaging of the harmonic mean acceptance
        da = adapt_mod.dual_averaging_update(adapt.dual_averaging, harmonic_mean(accept, keep), self.numbers)
        # trajectory length: one clipped RMSProp ascent step of the ChEES criterion in log T
        grad = trajectory_gradient(adapt.previous, infos.proposal, infos.velocity, infos.time, accept, keep,
                                   adapt.params.inverse_mass_matrix)
        sq_grad = (1.0 - SQ_GRAD_RATE) * adapt.sq_grad + SQ_GRAD_RATE * grad**2
        sq_hat = sq_grad / (1.0 - (1.0 - SQ_GRAD_RATE) ** count)
        step = jnp.clip(self.builder.learning_rate * grad * jax.lax.rsqrt(sq_hat + 1e-20),
                        -MAX_LOG_UPDATE, MAX_LOG_UPDATE)
        log_length = adapt.log_length + jnp.where(jnp.isfinite(step), step, 0.0)
        log_length_avg = weight * log_length + (1.0 - weight) * adapt.log_length_avg
        # metric: running average of the variance across chains
        var = adapt.var
        imm = adapt.params.inverse_mass_matrix
        if self.builder.adapt_mass:
            positions = states.position
            var = weight * jnp.var(positions, axis=0) + (1.0 - weight) * var
            n = positions.shape[0]
            imm = (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))
            imm = jnp.where(jnp.all(jnp.isfinite(imm)), imm, adapt.params.inverse_mass_matrix)
        last = t[0] >= self.num_warmup - 1
        log_eps = jnp.where(last, da.log_step_size_avg, da.log_step_size)
        log_length = jnp.clip(log_length, log_eps, log_eps + jnp.log(float(self.builder.max_leapfrog_steps)))
        used = jnp.where(last, jnp.clip(log_length_avg, log_eps,
                                         log_eps + jnp.log(float(self.builder.max_leapfrog_steps))), log_length)
        params = Params(jnp.exp(log_eps).astype(self.dtype), imm.astype(self.dtype),
                        jnp.exp(used).astype(self.dtype))
        return WarmupState(count, da, log_length.astype(self.dtype), log_length_avg.astype(self.dtype),
                           sq_grad.astype(self.dtype), var.astype(self.dtype), params, states.position)

    def stats(self, adapt: WarmupState) -> dict:
        chains = adapt.previous.shape[0]
        return {"step_size": _broadcast(adapt.params.step_size, chains),
                "trajectory_length": _broadcast(adapt.params.trajectory_length, chains)}

    def summary(self, adapt: WarmupState) -> dict:
        chains = adapt.previous.shape[0]
        return {
            "step_size": _broadcast(adapt.params.step_size, chains),
            "inverse_mass_matrix": _broadcast(adapt.params.inverse_mass_matrix, chains),
            "trajectory_length": _broadcast(adapt.params.trajectory_length, chains),
        }
