"""The sprinkler: observing versus intervening.

Rain makes the sprinkler less likely to be on, and either makes the grass wet.
*Seeing* the sprinkler on is evidence about the rain (it was probably dry);
*setting* the sprinkler on (the intervention do(sprinkler = 1)) cuts the arrow
from rain to sprinkler, so it tells us nothing about the rain.

Expected: P(rain | grass wet) = 0.3577..., P(rain | sprinkler on) = 0.0967...,
P(rain | do(sprinkler on)) = 0.2 exactly (the prior).
"""

import jax.numpy as jnp

import ppl
from ppl import dist


@ppl.model
def garden():
    rain = ppl.sample("rain", dist.Bernoulli(probs=0.2))
    sprinkler = ppl.sample("sprinkler", dist.Bernoulli(probs=jnp.where(rain == 1, 0.01, 0.4)))
    p_wet = jnp.where(rain == 1, jnp.where(sprinkler == 1, 0.99, 0.8), jnp.where(sprinkler == 1, 0.9, 0.0))
    ppl.sample("wet", dist.Bernoulli(probs=p_wet))
    return rain


def main():
    wet = ppl.infer(garden.condition({"wet": 1}))
    seen = ppl.infer(garden.condition({"sprinkler": 1}))
    done = ppl.infer(garden.do({"sprinkler": 1}))
    print(f"P(rain | wet)              = {wet.mean():.4f}")
    print(f"P(rain | sprinkler on)     = {seen.mean():.4f}")
    print(f"P(rain | do(sprinkler on)) = {done.mean():.4f}")
    p_wet_and_rain = 0.2 * (0.01 * 0.99 + 0.99 * 0.8)
    p_wet_dry = 0.8 * 0.4 * 0.9
    assert abs(wet.mean() - p_wet_and_rain / (p_wet_and_rain + p_wet_dry)) < 1e-6
    assert abs(seen.mean() - 0.2 * 0.01 / (0.2 * 0.01 + 0.8 * 0.4)) < 1e-6
    assert abs(done.mean() - 0.2) < 1e-6
    return wet, seen, done


if __name__ == "__main__":
    main()
