"""Simpson's paradox: kidney stones, and the back-door adjustment on stone size.

Charig et al. (1986) compared open surgery (A) with a keyhole procedure (B)
on 700 patients. B succeeds more often overall (83% against 78%), yet A
succeeds more often for small stones *and* for large ones. Stone size is a
common cause: doctors gave the harder, large stones to A more often, and
large stones fail more. The effect of the treatment is the back-door
adjustment on size, P(success | do(t)) = Σ_size P(size) P(success | t, size),
which ``ppl.identify`` derives from the model's diagram alone.

Expected: P(success | do(A)) = 0.8325, P(success | do(B)) = 0.7789, while
plain conditioning gives P(success | A) = 0.78 and P(success | B) = 0.8257.
"""

import jax.numpy as jnp
import numpy as np

import ppl
from ppl import dist

# (treatment, size) -> (successes, patients); treatment 0 = A (open), 1 = B (keyhole); size 0 = small, 1 = large
COUNTS = {(0, 0): (81, 87), (0, 1): (192, 263), (1, 0): (234, 270), (1, 1): (55, 80)}


@ppl.model
def kidney():
    """The causal story; its numbers do not matter to identification, only its diagram."""
    size = ppl.sample("size", dist.Bernoulli(probs=0.5))
    treatment = ppl.sample("treatment", dist.Bernoulli(probs=jnp.where(size == 1, 0.25, 0.75)))
    ppl.sample("success", dist.Bernoulli(probs=0.9 - 0.2 * size - 0.05 * treatment))


def table():
    """The study as a count table: one weighted row per (treatment, size, success)."""
    rows = {"treatment": [], "size": [], "success": []}
    weights = []
    for (t, s), (good, n) in COUNTS.items():
        for outcome, count in ((1, good), (0, n - good)):
            rows["treatment"].append(t)
            rows["size"].append(s)
            rows["success"].append(outcome)
            weights.append(count)
    return rows, weights


def main():
    effect = ppl.identify(kidney, treatment="treatment", outcome="success",
                          observed=["size", "treatment", "success"])
    print(effect)
    rows, weights = table()
    adjusted = {t: p[1] for t, p in effect.evaluate(rows, weights=weights).items()}
    seen = {t: sum(COUNTS[t, s][0] for s in (0, 1)) / sum(COUNTS[t, s][1] for s in (0, 1)) for t in (0, 1)}
    for t, name in ((0, "A (open)"), (1, "B (keyhole)")):
        print(f"{name:12}  P(success | t) = {seen[t]:.4f}   P(success | do(t)) = {adjusted[t]:.4f}")
        for s, size in ((0, "small"), (1, "large")):
            good, n = COUNTS[t, s]
            print(f"              {size} stones: {good}/{n} = {good / n:.3f}")
    # the paradox: B looks better overall, A is better within each size, and the adjustment sides with A
    assert seen[1] > seen[0]
    assert all(COUNTS[0, s][0] / COUNTS[0, s][1] > COUNTS[1, s][0] / COUNTS[1, s][1] for s in (0, 1))
    small = (87 + 270) / 700
    want = {t: small * COUNTS[t, 0][0] / COUNTS[t, 0][1] + (1 - small) * COUNTS[t, 1][0] / COUNTS[t, 1][1]
            for t in (0, 1)}
    assert all(abs(adjusted[t] - want[t]) < 1e-9 for t in (0, 1))
    assert abs(adjusted[0] - 0.8325) < 1e-4 and abs(adjusted[1] - 0.7789) < 1e-4
    assert abs(seen[0] - 0.78) < 1e-9 and abs(seen[1] - 289 / 350) < 1e-9
    assert str(effect) == "P(success | do(treatment)) = Σ_size P(size) P(success|size,treatment)"
    return adjusted, seen


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
