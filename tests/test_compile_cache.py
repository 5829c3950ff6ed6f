"""The compile cache (semantics/cache.py): compiled functions are kept per program, reused, and
freed with the model that made them."""

import gc
import weakref

import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.semantics.cache import cached, entries


def make_coin():
    @ppl.model
    def coin(flips):
        p = ppl.sample("p", dist.Beta(1.0, 1.0))
        with ppl.plate("flips", len(flips)):
            ppl.observe("y", dist.Bernoulli(probs=p), flips)
        return p

    return coin


DATA = jnp.asarray([1, 0, 1, 1])


def test_cached_builds_once_per_program_and_key():
    program, _ = make_coin().program(DATA)
    calls = []
    first = cached(program, "k", lambda: calls.append(1) or object())
    again = cached(program, "k", lambda: calls.append(1) or object())
    other = cached(program, "other", lambda: calls.append(1) or object())
    assert first is again and other is not first and len(calls) == 2
    assert set(entries(program)) == {"k", "other"}


@pytest.mark.filterwarnings("ignore::ppl.SamplingWarning")  # a short chain: only the cache is under test
@pytest.mark.parametrize("method", [ppl.Importance(num_particles=64),
                                    ppl.MH(num_samples=20, num_warmup=5, num_chains=1),
                                    ppl.SMC(num_particles=64),
                                    ppl.VI(num_steps=20, chunk_size=20, num_samples=10, progress=False),
                                    ppl.Pathfinder(num_paths=2, max_iters=10, draws_per_path=50, num_samples=20)],
                         ids=["importance", "mh", "smc", "vi", "pathfinder"])
def test_a_dropped_model_frees_its_compiled_programs(method):
    model = make_coin()
    ppl.infer(model, DATA, method=method)
    program, _ = model.program(DATA)
    assert entries(program), "the method keeps its compiled function in the program's cache"
    alive = weakref.ref(program)
    del program
    gc.collect()
    assert alive() is not None, "the model still holds its program"
    del model
    gc.collect()
    assert alive() is None, "nothing outside the model kept the program (and its compiled functions) alive"


def test_a_dropped_discrete_model_frees_its_enumeration():
    @ppl.model
    def two_coins(y):
        a = ppl.sample("a", dist.Bernoulli(probs=0.3))
        b = ppl.sample("b", dist.Bernoulli(probs=0.6))
        ppl.observe("y", dist.Normal(a + b, 1.0), y)

    post = ppl.infer(two_coins, 1.5, method=ppl.Enumerate())
    # exact: P(a=1 | y) by hand over the four outcomes
    like = {(i, j): np.exp(-0.5 * (1.5 - i - j) ** 2) * (0.3 if i else 0.7) * (0.6 if j else 0.4)
            for i in (0, 1) for j in (0, 1)}
    want = (like[1, 0] + like[1, 1]) / sum(like.values())
    assert abs(post.mean("a") - want) < 1e-5
    program, _ = two_coins.program(1.5)
    assert entries(program)
    alive = weakref.ref(program)
    del program, post
    del two_coins
    gc.collect()
    assert alive() is None
