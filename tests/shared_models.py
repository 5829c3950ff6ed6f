"""Small models used by several test modules, each with an exact answer by enumeration.

- ``sprinkler``: the soft-evidence sprinkler of the core issue: rain ~
  Bernoulli(0.3), a factor of log 0.2 when it rains, sprinkler ~ Bernoulli(0.1
  if rain else 0.4), a factor of log 0.1 when the sprinkler is on. Returns rain.
- ``hmm``: a two-state hidden Markov chain as a ``ppl.scan`` (stay in state 1
  with probability 0.8, move to it from 0 with 0.3), observed with unit-variance
  Gaussian noise around -1 / +1. Returns the states.
"""

from __future__ import annotations

import jax.numpy as jnp

import ppl
from ppl import dist


@ppl.model
def sprinkler():
    rain = ppl.sample("rain", dist.Bernoulli(probs=0.3))
    ppl.factor("rain_evidence", jnp.where(rain == 1, jnp.log(0.2), 0.0))
    on = ppl.sample("sprinkler", dist.Bernoulli(probs=jnp.where(rain == 1, 0.1, 0.4)))
    ppl.factor("sprinkler_evidence", jnp.where(on == 1, jnp.log(0.1), 0.0))
    return rain


@ppl.model
def hmm(ys):
    def step(z, y):
        z = ppl.sample("z", dist.Bernoulli(probs=jnp.where(z == 1, 0.8, 0.3)))
        ppl.observe("y", dist.Normal(jnp.where(z == 1, 1.0, -1.0), 1.0), y)
        return z, z

    _, zs = ppl.scan(step, jnp.asarray(0, jnp.int32), ys)
    return zs
