"""A continuous random choice made in some runs only (inside a branch, under a name not every branch
uses) has no density in the runs that skip it: methods that move one fixed vector of every
continuous site (NUTS, HMC, VI, Pathfinder) would target a density flat in it, no posterior at all
(NUTS put P(z = 1 | y) at 0 against the exact 0.271; VI's "lower bound" came out at +17 against
log p(y) = -2.16). They refuse it at the site; the default method follows the branches instead."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import ppl
from ppl import dist
from ppl.semantics import ir


def branch_model(name_if_z: str, name_else: str):
    """z ~ Bernoulli(0.3); x drawn under ``name_if_z`` from N(3, 1) when z = 1, else under
    ``name_else`` from N(-1, 2); y ~ N(x, 1)."""

    def body(y):
        z = ppl.sample("z", dist.Bernoulli(probs=0.3))
        x = ppl.cond(z == 1, lambda: ppl.sample(name_if_z, dist.Normal(3.0, 1.0)),
                     lambda: ppl.sample(name_else, dist.Normal(-1.0, 2.0)))
        ppl.observe("y", dist.Normal(x, 1.0), y)
        return x

    return ppl.model(body)


two_names = branch_model("a", "b")
one_name = branch_model("x", "x")


# y | z=1 ~ N(3, sqrt 2), y | z=0 ~ N(-1, sqrt 5): P(z = 1 | y = 1) and log p(y = 1) exactly
LIKE1, LIKE0 = stats.norm(3.0, np.sqrt(2.0)).pdf(1.0), stats.norm(-1.0, np.sqrt(5.0)).pdf(1.0)
P_Z1 = 0.3 * LIKE1 / (0.3 * LIKE1 + 0.7 * LIKE0)


def test_sites_made_in_some_runs_only():
    assert set(ir.partial_sites(two_names.program(1.0)[0])) == {"a", "b"}
    assert ir.partial_sites(one_name.program(1.0)[0]) == {}


@pytest.mark.parametrize("method", [
    ppl.NUTS(num_warmup=10, num_samples=10, num_chains=1, progress=False),
    ppl.HMC(num_warmup=10, num_samples=10, num_chains=1, progress=False),
    ppl.VI(num_steps=10),
    ppl.Pathfinder(),
], ids=["NUTS", "HMC", "VI", "Pathfinder"])
def test_methods_that_move_every_continuous_site_refuse_them_at_the_site(method):
    with pytest.raises(ppl.ModelError, match=r"continuous random choice '[ab]' is made in some runs only") as err:
        ppl.infer(two_names, 1.0, method=method, seed=0)
    assert err.value.span is not None and "same name in every branch" in err.value.hint


def test_the_ppl_front_end_is_refused_too():
    model = ppl.loads("""
model br(y: real) {
  z ~ bernoulli(0.3)
  if z == 1 {
    a ~ normal(3, 1)
    x = a
  } else {
    b ~ normal(-1, 2)
    x = b
  }
  y ~ normal(x, 1)
  return z
}
""").br
    with pytest.raises(ppl.ModelError, match="made in some runs only"):
        ppl.infer(model, 1.0, method=ppl.VI(num_steps=10), seed=0)


def test_the_default_method_follows_the_branches():
    post = ppl.infer(two_names, 1.0, seed=0)
    assert post.method != "NUTS"
    w = np.exp(np.asarray(post.log_weights, float) - np.max(post.log_weights))
    w /= w.sum()
    z = np.asarray(post.samples["z"], float)
    mean, ess = float(w @ z), 1.0 / float(np.sum(w**2))
    assert abs(mean - P_Z1) < 4.5 * np.sqrt(P_Z1 * (1 - P_Z1) / ess)


def test_one_name_in_every_branch_is_a_proper_posterior_for_nuts():
    post = ppl.infer(one_name, 1.0, method=ppl.NUTS(num_warmup=300, num_samples=500, num_chains=2, progress=False),
                     seed=1)
    z = np.asarray(post.samples["z"], float).ravel()
    # z is summed out and drawn from its conditional: its draws are close to independent; 4.5 sigma
    # with the sample size halved for what autocorrelation there is
    assert abs(z.mean() - P_Z1) < 4.5 * np.sqrt(P_Z1 * (1 - P_Z1) / (z.size / 2))
