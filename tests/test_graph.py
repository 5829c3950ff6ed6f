"""The dependency graph: hand-drawn diagrams, and its law checked against the site densities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.semantics import compile as C
from ppl.semantics.graph import block_flow, dependency_graph

# a -> b -> d <- c,  d -> y (observed),  e alone,  b -> f (a factor)
#
#     a     c     e
#     |     |
#     b --> d --> y
#     |
#     f


@ppl.model
def diagram(y):
    a = ppl.sample("a", dist.Normal(0.0, 1.0))
    b = ppl.sample("b", dist.Normal(a, 1.0))
    c = ppl.sample("c", dist.HalfNormal(1.0))
    d = ppl.sample("d", dist.Normal(b * 2.0, c))
    ppl.sample("e", dist.Normal(0.0, 1.0))
    ppl.factor("f", -(b**2))
    ppl.deterministic("twice_d", 2 * d)
    ppl.observe("y", dist.Normal(d, 1.0), y)


def graph_of(model, *args):
    return dependency_graph(model.ir(*args))


def test_parents_and_children_of_a_hand_drawn_diagram():
    g = graph_of(diagram, 0.5)
    assert g.parents("a") == set()
    assert g.parents("b") == {"a"}
    assert g.parents("d") == {"b", "c"}
    assert g.parents("y") == {"d"}
    assert g.parents("f") == {"b"}
    assert g.parents("twice_d") == {"d"}
    assert g.children("b") == {"d", "f"}
    assert g.children("d") == {"y"}  # the deterministic site is not random: not a child
    assert g.children("e") == set()
    assert g.factors_of("b") == {"b", "d", "f"}


def test_markov_blankets_of_a_hand_drawn_diagram():
    g = graph_of(diagram, 0.5)
    expected = {
        "a": {"b"},
        "b": {"a", "d", "c", "f"},
        "c": {"d", "b"},
        "d": {"b", "c", "y"},
        "e": set(),
        "y": {"d"},
        "f": {"b"},
    }
    for site, blanket in expected.items():
        assert g.markov_blanket(site) == blanket, site


def test_ancestors_and_descendants():
    g = graph_of(diagram, 0.5)
    assert g.ancestors("y") == {"a", "b", "c", "d"}
    assert g.descendants("a") == {"b", "d", "f", "y"}


@ppl.model
def hmm(ys):
    p = ppl.sample("p", dist.Beta(2.0, 2.0))

    def step(z, y):
        z = ppl.sample("z", dist.Bernoulli(probs=jnp.where(z == 1, p, 0.3)))
        ppl.observe("y", dist.Normal(jnp.where(z == 1, 1.0, -1.0), 1.0), y)
        return z, z

    _, zs = ppl.scan(step, jnp.asarray(0, jnp.int32), ys)
    ppl.observe("last", dist.Normal(zs[-1] * 1.0, 1.0), 0.0)
    return zs


def test_a_carried_loop_site_depends_on_itself():
    g = graph_of(hmm, jnp.zeros(3))
    assert g.parents("z") == {"z", "p"}  # an earlier step of z, through the carry
    assert g.nodes["z"].carried == {"z"}
    assert g.parents("y") == {"z"}  # the same step: not carried
    assert g.nodes["y"].carried == set()
    assert g.parents("last") == {"z"}  # the stacked outputs of the loop
    assert g.is_carried("z") and not g.is_carried("p")
    (loop,) = g.loops.values()
    assert loop.length == 3 and set(loop.sites) == {"z", "y"}
    assert g.nodes["z"].loops == (loop.name,)


@ppl.model
def branchy():
    a = ppl.sample("a", dist.Bernoulli(probs=0.5))
    b = ppl.sample("b", dist.Normal(0.0, 1.0))

    def yes(b):
        return ppl.sample("inside", dist.Normal(b, 1.0))

    def no(b):
        return b

    x = ppl.cond(a == 1, yes, no, b)
    ppl.observe("y", dist.Normal(x, 1.0), 0.3)


def test_sites_in_a_branch_depend_on_its_condition():
    g = graph_of(branchy)
    assert g.parents("inside") == {"a", "b"}
    assert g.nodes["inside"].in_branch
    assert g.parents("y") == {"a", "b", "inside"}
    assert g.markov_blanket("a") == {"inside", "y", "b"}


@ppl.model
def plated(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0]):
        z = ppl.sample("z", dist.Bernoulli(probs=0.4))
        ppl.observe("y", dist.Normal(mu + z, 1.0), y)


def test_plates_are_recorded_on_nodes():
    g = graph_of(plated, jnp.zeros(4))
    assert g.nodes["z"].plates == ("data",)
    assert g.parents("y") == {"mu", "z"}
    assert g.edges() == [("mu", "y"), ("z", "y")]


def test_block_flow_follows_values_through_primitives():
    program = diagram.ir(0.5)
    flow = block_flow(program.block)
    assert flow.sites["d"]["parents"] == {"b", "c"}
    label = frozenset({"input"})
    flow = block_flow(program.block, [label])  # the data y flows into the observation
    assert "input" in flow.sites["y"]["parents"]


# --- the law: a site's term depends only on its parents and its own value ----------------------


@pytest.mark.parametrize("model,args", [(diagram, (0.5,)), (hmm, (jnp.array([0.2, -1.0, 1.5]),)),
                                        (branchy, ()), (plated, (jnp.array([0.1, 1.2, -0.3]),))])
def test_law_terms_read_only_parents(model, args):
    program, leaves = model.program(*args)
    g = dependency_graph(program)
    base = C.simulate(program, jax.random.key(0), leaves).choices
    latent = program.latent_sites()
    base = {a: base[a] for a in latent}
    terms = C.site_log_densities(program, base, leaves)
    for i, a in enumerate(latent):
        changed = dict(base)
        key = jax.random.key(10 + i)
        if latent[a].is_discrete:
            changed[a] = 1 - base[a]
        else:
            changed[a] = base[a] + jax.random.uniform(key, np.shape(base[a]), minval=0.1, maxval=0.5)
        moved = C.site_log_densities(program, changed, leaves)
        for t in terms:
            if t in g.factors_of(a):
                continue
            assert np.allclose(terms[t], moved[t], atol=0, rtol=0), (a, t)
