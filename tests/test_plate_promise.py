"""A plate whose terms read other elements of a site (``cumsum``, ``roll``) breaks the plate's
promise of independent elements: Gibbs then updates the site one element at a time, and summing a
discrete site out (NUTS, the default method's choice) refuses with a clear error.

Before the probe (``inference/marginalize/independence.py``) both methods used each element's own
term only and were silently wrong: Gibbs's P(jump[t] = 1) was 0 where the exact answer is 0.96, and
NUTS's E[mu] was off by 124 standard errors.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.inference.marginalize.independence import crossed_labels
from ppl.inference.mcmc.gibbs import Gibbs, _Kernel
from ppl.stdlib.errors import ModelError

from chain_checks import Z_MAX, check_against_enumeration, z_score

pytestmark = pytest.mark.filterwarnings("ignore::ppl.inference.mcmc.checks.SamplingWarning")

Y = jnp.array([0.3, 1.4, 0.2, 1.1, 0.9])


@ppl.model
def neighbours(y):
    """Each observation reads its own switch and the next one (a ring): elements are coupled."""
    with ppl.plate("t", y.shape[0]):
        s = ppl.sample("s", dist.Bernoulli(probs=0.5))
        ppl.observe("y", dist.Normal(s + 0.5 * jnp.roll(s, -1), 0.8), y)


@ppl.model
def walk(y):
    """A non-centred random walk: y[t] reads eps[0..t]."""
    with ppl.plate("t", y.shape[0]):
        eps = ppl.sample("eps", dist.Normal(0.0, 1.0))
        ppl.observe("y", dist.Normal(jnp.cumsum(eps), 0.5), y)


@ppl.model
def changepoints(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("t", y.shape[0]):
        jump = ppl.sample("jump", dist.Bernoulli(probs=0.2))
        ppl.observe("y", dist.Normal(mu + jnp.cumsum(jump), 0.3), y)


@ppl.model
def mixture(y):
    with ppl.plate("data", y.shape[0]):
        z = ppl.sample("z", dist.Bernoulli(probs=0.4))
        ppl.observe("y", dist.Normal(jnp.where(z == 1, 1.2, -1.0), 1.0), y)


def test_the_probe_names_the_crossing_read():
    program, args = neighbours.program(Y)
    crossed = crossed_labels(program, args, "s", ("s", "y"), np.array([0, 1]))
    assert set(crossed) == {"t"}
    c = crossed["t"]
    assert c.term == "y" and c.element == (c.changed - 1) % 5  # roll(s, -1): y[n] reads s[n + 1]
    program, args = mixture.program(Y)
    assert crossed_labels(program, args, "z", ("z", "y"), np.array([0, 1])) == {}


def test_gibbs_updates_coupled_elements_one_by_one_and_matches_enumeration():
    kernel = _Kernel(*neighbours.program(Y))
    assert kernel.updates[0].parallel == ()  # not in parallel along "t"
    post = ppl.infer(neighbours, Y, method=Gibbs(num_samples=3000, num_warmup=200), seed=11)
    check_against_enumeration(post, neighbours, Y)


def test_gibbs_on_a_random_walk_matches_the_gaussian_posterior():
    y = jnp.array([0.4, 1.1, 0.9, 1.8, 2.2])
    n = y.shape[0]
    A = np.tril(np.ones((n, n)))
    cov = np.linalg.inv(np.eye(n) + A.T @ A / 0.25)
    mean = cov @ (A.T @ np.asarray(y) / 0.25)
    post = ppl.infer(walk, y, method=Gibbs(num_samples=4000, num_warmup=500), seed=12)
    draws = np.asarray(post.samples["eps"])
    for t in range(n):
        z = z_score(draws[..., t], mean[t])
        assert abs(z) < Z_MAX, f"eps[{t}]: mean {draws[..., t].mean():.3f}, exact {mean[t]:.3f}, z {z:.2f}"
        z_sq = z_score(draws[..., t] ** 2, cov[t, t] + mean[t] ** 2)
        assert abs(z_sq) < Z_MAX, f"eps[{t}]^2: z {z_sq:.2f}"


def test_summing_out_a_coupled_site_is_refused_and_the_default_avoids_it():
    y = jnp.array([0.0, 0.1, -0.1, 0.05, 0.0, 1.0])
    with pytest.raises(ModelError) as err:
        ppl.infer(changepoints, y, method=ppl.NUTS(num_warmup=50, num_samples=50, num_chains=1))
    text = str(err.value)
    assert "'jump'" in text and "changes when 'jump' changes" in text and "ppl.Enumerate()" in text
    program, args = changepoints.program(y)
    assert type(ppl.api.default_method(program, args)).__name__ != "NUTS"


def test_an_independent_plate_still_sums_out_under_nuts():
    @ppl.model
    def located(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 2.0))
        with ppl.plate("data", y.shape[0]):
            z = ppl.sample("z", dist.Bernoulli(probs=0.4))
            ppl.observe("y", dist.Normal(mu + jnp.where(z == 1, 2.0, 0.0), 1.0), y)

    program, args = located.program(Y)
    assert type(ppl.api.default_method(program, args)).__name__ == "NUTS"
