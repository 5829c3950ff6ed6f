"""Is this coin fair? Beta-Bernoulli, checked against the exact posterior.

With a Beta(1, 1) prior and 7 heads in 10 flips, the posterior is Beta(8, 4):
mean 2/3, and the evidence is B(8, 4) / B(1, 1) = 1/1320.
"""

import math

import numpy as np

import ppl
from ppl import dist

FLIPS = [1, 1, 0, 1, 1, 1, 0, 1, 0, 1]


@ppl.model
def coin(flips):
    p = ppl.sample("p", dist.Beta(1.0, 1.0))
    with ppl.plate("flips", len(flips)):
        ppl.observe("flips", dist.Bernoulli(probs=p), flips)
    return p


def main(num_particles=20_000):
    post = ppl.infer(coin, FLIPS, method=ppl.Importance(num_particles=num_particles), seed=0)
    print(post.summary())
    w = post.weights
    p = np.asarray(post.samples["p"], dtype=np.float64)
    se = math.sqrt(np.sum(w**2 * (p - post.mean()) ** 2))
    assert abs(post.mean() - 8 / 12) < 4 * se
    assert abs(post.log_evidence - math.log(1 / 1320)) < 0.02
    return post


if __name__ == "__main__":
    main()
