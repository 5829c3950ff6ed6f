"""Tug of war (after probmods.org): stochastic memoisation.

Each person has a strength, drawn once (``mem``); in each match a person is
lazy with probability 1/4 and then pulls with half strength; the team that
pulls harder wins. Alice beat Bob, and then Bob beat... We ask: how strong is
Alice, given she won three matches in a row with different partners?

Expected: E[strength(alice) | wins] is about 1.0 (prior mean 0): a z-test
against a long importance-sampling run is in the test suite.
"""

import jax.numpy as jnp

import ppl
from ppl import dist


@ppl.model
def tug_of_war():
    strength = ppl.mem(lambda person: ppl.sample("strength", dist.Normal(0.0, 1.0)))
    lazy = lambda person, match: ppl.sample(("lazy", person, match), dist.Bernoulli(probs=0.25))  # noqa: E731

    def pulling(person, match):
        return jnp.where(lazy(person, match) == 1, strength(person) / 2, strength(person))

    def team_pulling(team, match):
        return sum(pulling(p, match) for p in team)

    def winner_is_first(team1, team2, match):
        return team_pulling(team1, match) > team_pulling(team2, match)

    matches = [(["alice", "bob"], ["sue", "tom"]), (["alice", "sue"], ["bob", "tom"]),
               (["alice", "tom"], ["bob", "sue"])]
    for i, (a, b) in enumerate(matches):
        ppl.factor(("won", i), jnp.where(winner_is_first(a, b, i), 0.0, -jnp.inf))
    return strength("alice")


def main(num_particles=20_000):
    post = ppl.infer(tug_of_war, method=ppl.Importance(num_particles=num_particles), seed=0)
    print(f"E[strength(alice) | three wins] = {post.mean():.3f}  (ESS {post.ess:.0f})")
    assert post.engine == "compiled"  # mem keyed by names known at trace time stays static
    assert 0.6 < post.mean() < 1.4
    return post


if __name__ == "__main__":
    main()
