"""Medical diagnosis: Bayes' rule, exactly.

A disease has prevalence 1%. A test detects it 95% of the time and gives a
false positive 8% of the time. Given a positive test, how likely is the
disease? Most people guess ~90%; the answer is about 10.7%.
"""

import jax.numpy as jnp

import ppl
from ppl import dist


@ppl.model
def diagnosis(positive):
    disease = ppl.sample("disease", dist.Bernoulli(probs=0.01))
    ppl.observe("test", dist.Bernoulli(probs=jnp.where(disease == 1, 0.95, 0.08)), positive)
    return disease


def main():
    post = ppl.infer(diagnosis, 1)
    exact = 0.01 * 0.95 / (0.01 * 0.95 + 0.99 * 0.08)
    print(f"P(disease | positive test) = {post.mean():.4f} (exact {exact:.4f})")
    assert post.method == "Enumerate"
    assert abs(post.mean() - exact) < 1e-6
    return post


if __name__ == "__main__":
    main()
