"""The firing squad: a counterfactual that conditioning and intervening cannot answer.

A court orders an execution with probability p; the captain then signals,
and riflemen A and B both shoot; A is also nervous with probability q and may
shoot without a signal. The prisoner dies if either shoots (Pearl,
*Causality*, §7.1.2). We see the prisoner dead. Would he be alive had A not
shot?

- Interventional: P(dead | do(A = 0)) = p. It forgets what we saw.
- Counterfactual: the world where A did not shoot shares this world's court
  order and A's nerves (the exogenous noise), so B shoots exactly when the
  order was given. Given the death, P(alive had A not shot) =
  P(no order | dead) = (1 - p) q / (p + (1 - p) q).
- Seen the order too, the counterfactual is certain: B shot, he would be dead.

Expected with p = 0.7, q = 0.2: 0.7 (interventional), 0.0789 (counterfactual), 1.0.
"""

import jax.numpy as jnp

import ppl
from ppl import dist

P_ORDER, P_NERVES = 0.7, 0.2


@ppl.model
def squad():
    order = ppl.sample("order", dist.Bernoulli(probs=P_ORDER))
    nerves = ppl.sample("nerves", dist.Bernoulli(probs=P_NERVES))
    captain = ppl.deterministic("captain", order)
    a = ppl.deterministic("a", jnp.maximum(captain, nerves))
    b = ppl.deterministic("b", captain)
    return ppl.deterministic("dead", jnp.maximum(a, b))


def main():
    done = ppl.infer(squad.do({"a": 0})).mean("dead")
    twin = ppl.counterfactual(squad, observed={"dead": 1}, do={"a": 0})
    alive = 1.0 - ppl.infer(twin).mean("dead")
    sure = ppl.infer(ppl.counterfactual(squad, observed={"dead": 1, "order": 1}, do={"a": 0})).mean("dead")
    print(f"P(dead | do(A = 0))                      = {done:.4f}")
    print(f"P(alive had A not shot | dead)           = {alive:.4f}")
    print(f"P(dead had A not shot | dead, order)     = {sure:.4f}")
    print(ppl.diagram(squad))
    want = (1 - P_ORDER) * P_NERVES / (P_ORDER + (1 - P_ORDER) * P_NERVES)
    assert abs(done - P_ORDER) < 1e-6
    assert abs(alive - want) < 1e-6 and abs(want - 0.0789) < 1e-4
    assert abs(sure - 1.0) < 1e-9
    # the twin program: shared sites once, split ones at factual/<site> and <site>
    sites = twin.ir().sites
    assert {"order", "nerves", "captain", "b"} <= set(sites) and "factual/order" not in sites
    assert {"factual/a", "a", "factual/dead", "dead"} <= set(sites)
    return done, alive, sure


if __name__ == "__main__":
    main()
