"""A random function chosen at random (higher order).

The model first draws *which* function to use — a line with random slope, or
a random constant — and then applies it. Functions are ordinary values of the
sampler semantics, so this is a model like any other; choosing a Python
function by a random value makes it dynamic, and the eager engine runs it.

Expected: given f(2) = 4 (observed with noise 1) and f(-1) = -2, the line
(f(x) = 2x) is overwhelmingly more probable than a constant.
"""

import jax.numpy as jnp

import ppl
from ppl import dist


@ppl.model
def random_function(xs, ys):
    kind = ppl.sample("kind", dist.Bernoulli(probs=0.5))
    if kind == 1:
        slope = ppl.sample("slope", dist.Normal(0.0, 3.0))
        f = lambda x: slope * x  # noqa: E731
    else:
        c = ppl.sample("c", dist.Normal(0.0, 3.0))
        f = lambda x: c + 0.0 * x  # noqa: E731
    for i, (x, y) in enumerate(zip(xs, ys)):
        ppl.observe(("y", i), dist.Normal(f(x), 1.0), y)
    return kind


def main():
    post = ppl.infer(random_function, [2.0, -1.0], [4.0, -2.0],
                     method=ppl.Importance(num_particles=4000), seed=1)
    print(f"P(line | data) = {post.mean():.4f}; engine = {post.engine}")
    assert post.engine == "eager"
    assert post.mean() > 0.99
    return post


if __name__ == "__main__":
    main()
