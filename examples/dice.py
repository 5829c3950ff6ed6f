"""The sum of two dice, and what a sum tells us about the first die.

Expected: P(sum = 7) = 1/6; given the sum is 9, the first die is 3, 4, 5 or 6
with probability 1/4 each.
"""

import jax.numpy as jnp

import ppl
from ppl import dist


@ppl.model
def dice(total=None):
    a = ppl.sample("a", dist.Categorical(probs=jnp.ones(6) / 6)) + 1
    b = ppl.sample("b", dist.Categorical(probs=jnp.ones(6) / 6)) + 1
    if total is not None:  # `total` is a static argument: this `if` is ordinary Python
        ppl.factor("sum", jnp.where(a + b == total, 0.0, -jnp.inf))
        return a
    return a + b


def main():
    sums = ppl.infer(dice)
    given = ppl.infer(dice, 9)
    print("P(sum):", {k: round(v, 4) for k, v in sums.probs().items()})
    print("P(first | sum = 9):", given.probs())
    assert abs(sums.probs()[7] - 1 / 6) < 1e-6
    assert given.probs() == {k: given.probs()[k] for k in (3, 4, 5, 6)}
    assert all(abs(v - 0.25) < 1e-6 for v in given.probs().values())
    return sums, given


if __name__ == "__main__":
    main()
