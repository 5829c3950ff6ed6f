"""A geometric distribution defined by recursion.

Flip a coin until it comes up heads; count the tails. The recursion has no
bound that can be known in advance, so the model is *dynamic*: it runs in the
eager engine, exactly as WebPPL would run it. Enumeration is exact up to a
stated depth, and reports the probability mass it left out.

Expected: P(n) = p (1-p)^n; with p = 0.5 and depth 30 the dropped mass is 2^-30.
"""

import ppl
from ppl import dist


def geometric(p, flips=0):
    if ppl.sample(("flip", flips), dist.Bernoulli(probs=p)):
        return 0
    return 1 + geometric(p, flips + 1)


@ppl.model
def tails(p):
    return geometric(p)


def main():
    p = 0.5
    post = ppl.infer(tails, p, method=ppl.Enumerate(max_depth=30))
    print(post.dynamic_reason)
    print({n: round(q, 6) for n, q in list(post.probs().items())[:6]})
    assert post.engine == "eager"
    for n, q in post.probs().items():
        assert abs(q - p * (1 - p) ** n / (1 - (1 - p) ** 30)) < 1e-9
    assert abs(post.result.truncated_mass - 2.0**-30) < 1e-15
    return post


if __name__ == "__main__":
    main()
