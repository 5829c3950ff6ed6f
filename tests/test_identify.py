"""ppl.identify: interventional distributions from observational ones (the ID algorithm).

Values are checked exactly: the estimand evaluated on the exact observational
marginal (exact enumeration of the model) against exact enumeration of
``model.do(...)`` on the full model with its latents.
"""

import importlib.util

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import ppl
from ppl import dist
from ppl.inference.causal.admg import latent_projection
from ppl.inference.causal.id_algorithm import Hedge, identify_effect

from causal_models import enumerate_table, make_model, marginal, random_cpts, random_dag


@ppl.model
def front_door():
    u = ppl.sample("u", dist.Bernoulli(probs=0.5))  # the hidden genotype
    s = ppl.sample("smoking", dist.Bernoulli(probs=jnp.where(u == 1, 0.8, 0.2)))
    t = ppl.sample("tar", dist.Bernoulli(probs=jnp.where(s == 1, 0.9, 0.15)))
    ppl.sample("cancer", dist.Bernoulli(probs=0.1 + 0.5 * t + 0.3 * u))


@ppl.model
def back_door():
    z = ppl.sample("z", dist.Categorical(probs=jnp.array([0.3, 0.5, 0.2])))
    x = ppl.sample("x", dist.Bernoulli(probs=jnp.array([0.2, 0.5, 0.9])[z]))
    ppl.sample("y", dist.Bernoulli(probs=0.1 + 0.4 * x + 0.2 * z))


@ppl.model
def napkin():
    u1 = ppl.sample("u1", dist.Bernoulli(probs=0.4))
    u2 = ppl.sample("u2", dist.Bernoulli(probs=0.6))
    w1 = ppl.sample("w1", dist.Bernoulli(probs=0.1 + 0.4 * u1 + 0.4 * u2))
    w2 = ppl.sample("w2", dist.Bernoulli(probs=0.2 + 0.6 * w1))
    x = ppl.sample("x", dist.Bernoulli(probs=0.1 + 0.4 * w2 + 0.4 * u1))
    ppl.sample("y", dist.Bernoulli(probs=0.1 + 0.3 * x + 0.5 * u2))


def do_marginal(model, treatment, value, outcome):
    rows, w = enumerate_table(model.do({treatment: value}), [outcome])
    return marginal(rows, w, outcome)


def assert_matches_surgery(model, estimand, observed, treatment, outcome, tol=1e-6):
    rows, w = enumerate_table(model, observed)
    got = estimand.evaluate(rows, weights=w)
    assert set(got) == set(np.unique(rows[treatment]).tolist())
    for t, dist_y in got.items():
        want = do_marginal(model, treatment, t, outcome)
        for y in set(want) | set(dist_y):
            assert abs(dist_y.get(y, 0.0) - want.get(y, 0.0)) < tol, (t, y, dist_y, want)
    return got, rows, w


# -- the textbook cases -----------------------------------------------------------


def test_back_door_is_the_adjustment_formula():
    e = ppl.identify(back_door, treatment="x", outcome="y", observed=["z", "x", "y"])
    assert e.formula == "Σ_z P(z) P(y|z,x)"
    got, rows, w = assert_matches_surgery(back_door, e, ["z", "x", "y"], "x", "y")
    # and it is not plain conditioning
    seen = ppl.infer(back_door.condition({"x": 1}), method=ppl.Enumerate()).mean("y")
    assert abs(got[1][1] - seen) > 0.01


def test_front_door_is_the_textbook_formula_and_differs_from_conditioning():
    e = ppl.identify(front_door, treatment="smoking", outcome="cancer", observed=["smoking", "tar", "cancer"])
    assert e.formula == "Σ_tar P(tar|smoking) Σ_smoking' P(smoking') P(cancer|smoking',tar)"
    assert str(e).startswith("P(cancer | do(smoking)) = ")
    got, _, _ = assert_matches_surgery(front_door, e, ["smoking", "tar", "cancer"], "smoking", "cancer")
    seen = ppl.infer(front_door.condition({"smoking": 1}), method=ppl.Enumerate()).mean("cancer")
    assert abs(got[1][1] - seen) > 0.05  # the confounder makes conditioning overstate the effect


def test_napkin_is_identified_with_the_right_formula():
    observed = ["w1", "w2", "x", "y"]
    e = ppl.identify(napkin, treatment="x", outcome="y", observed=observed)
    assert e.formula == "[Σ_w1 P(w1) P(x|w1,w2) P(y|w1,w2,x)] / [Σ_w1 P(w1) P(x|w1,w2)]"
    got, rows, w = assert_matches_surgery(napkin, e, observed, "x", "y")
    # P(y|x) is wrong here
    rows_x = {k: v for k, v in rows.items()}
    py1_given_x1 = w[(rows_x["x"] == 1) & (rows_x["y"] == 1)].sum() / w[rows_x["x"] == 1].sum()
    assert abs(got[1][1] - py1_given_x1) > 0.01


def test_no_effect_when_the_treatment_is_not_an_ancestor():
    e = ppl.identify(back_door, treatment="y", outcome="x", observed=["z", "x", "y"])
    assert e.formula == "P(x)"


def test_several_treatments_and_outcomes():
    e = ppl.identify(napkin, treatment=["w2", "x"], outcome=["y"], observed=["w1", "w2", "x", "y"])
    rows, w = enumerate_table(napkin, ["w1", "w2", "x", "y"])
    got = e.evaluate(rows, weights=w)
    for (a, b), dy in got.items():
        want = marginal(*enumerate_table(napkin.do({"w2": a, "x": b}), ["y"]), "y")
        assert abs(dy[1] - want[1]) < 1e-6


# -- evaluation from data ---------------------------------------------------------


def test_rows_and_count_table_give_the_same_plug_in_estimate():
    rng = np.random.default_rng(1)
    n = 400
    z = rng.choice(3, size=n, p=[0.3, 0.5, 0.2])
    x = (rng.uniform(size=n) < np.array([0.2, 0.5, 0.9])[z]).astype(int)
    y = (rng.uniform(size=n) < 0.1 + 0.4 * x + 0.2 * z).astype(int)
    e = ppl.identify(back_door, treatment="x", outcome="y", observed=["z", "x", "y"])
    from_rows = e.evaluate({"z": z, "x": x, "y": y})
    keys, counts = np.unique(np.stack([z, x, y], 1), axis=0, return_counts=True)
    table = {"z": keys[:, 0], "x": keys[:, 1], "y": keys[:, 2]}
    from_table = e.evaluate(table, weights=counts)
    for t in (0, 1):
        for v in (0, 1):
            assert from_rows[t][v] == pytest.approx(from_table[t][v], abs=1e-12)
    # the hand-computed adjustment formula on the same rows
    for t in (0, 1):
        want = sum(np.mean(z == k) * np.mean(y[(z == k) & (x == t)]) for k in range(3))
        assert from_rows[t][1] == pytest.approx(want, abs=1e-12)


def test_positivity_failure_is_an_error_not_a_number():
    e = ppl.identify(back_door, treatment="x", outcome="y", observed=["z", "x", "y"])
    data = {"z": np.array([0, 0, 1, 1]), "x": np.array([0, 1, 0, 0]), "y": np.array([0, 1, 1, 0])}
    with pytest.raises(ppl.ModelError, match="Positivity fails"):
        e.evaluate(data)


def test_evaluate_bad_data():
    e = ppl.identify(back_door, treatment="x", outcome="y", observed=["z", "x", "y"])
    with pytest.raises(ppl.ModelError, match="no column for the observed site 'z'"):
        e.evaluate({"x": [0, 1], "y": [0, 1]})
    with pytest.raises(ppl.ModelError, match="rows"):
        e.evaluate({"x": [0, 1], "y": [0, 1], "z": [0]})
    with pytest.raises(ppl.ModelError, match="weights="):
        e.evaluate({"x": [0, 1], "y": [0, 1], "z": [0, 1]}, weights=[1.0, -1.0])


# -- not identifiable ----------------------------------------------------------------


def test_bow_graph_is_not_identifiable_and_says_why():
    with pytest.raises(ppl.NotIdentifiable) as info:
        ppl.identify(front_door, treatment="smoking", outcome="cancer", observed=["smoking", "cancer"])
    err = info.value
    text = str(err)
    assert "P(cancer | do(smoking)) is not identifiable" in text
    assert "smoking <- u -> cancer" in text
    assert "back-door path" in text
    assert set(err.remedies) == {"u", "tar"}  # observing the confounder, or the mediator (front door)
    assert err.hedge == (("smoking", "cancer"), ("cancer",))


def test_confounded_mediator_is_not_identifiable():
    @ppl.model
    def confounded():
        u = ppl.sample("u", dist.Bernoulli(probs=0.5))
        x = ppl.sample("x", dist.Bernoulli(probs=0.3 + 0.4 * u))
        m = ppl.sample("m", dist.Bernoulli(probs=0.2 + 0.3 * x + 0.3 * u))
        ppl.sample("y", dist.Bernoulli(probs=0.2 + 0.6 * m))

    with pytest.raises(ppl.NotIdentifiable, match="x <- u -> m") as info:
        ppl.identify(confounded, treatment="x", outcome="y", observed=["x", "m", "y"])
    assert info.value.remedies == ("u",)


# -- bad input -------------------------------------------------------------------------


def test_treatment_not_observed():
    with pytest.raises(ppl.ModelError, match="the treatment 'tar' is not in observed") as info:
        ppl.identify(front_door, treatment="tar", outcome="cancer", observed=["smoking", "cancer"])
    assert info.value.span is not None and info.value.span.file.endswith("test_identify.py")


def test_outcome_not_observed():
    with pytest.raises(ppl.ModelError, match="the outcome 'cancer' is not in observed") as info:
        ppl.identify(front_door, treatment="smoking", outcome="cancer", observed=["smoking", "tar"])
    assert "Add 'cancer' to observed=" in info.value.hint


def test_unknown_site_suggests_a_name():
    with pytest.raises(ppl.AddressError, match="'smokng' is not a random choice") as info:
        ppl.identify(front_door, treatment="smokng", outcome="cancer", observed=["smoking", "cancer"])
    assert "Did you mean 'smoking'?" in str(info.value)
    with pytest.raises(ppl.AddressError, match="observed site 'tarr'"):
        ppl.identify(front_door, treatment="smoking", outcome="cancer", observed=["smoking", "cancer", "tarr"])


def test_dynamic_model_is_rejected_with_its_reason():
    @ppl.model
    def dynamic():
        x = ppl.sample("x", dist.Bernoulli(probs=0.5))
        if x == 1:
            ppl.sample("y", dist.Bernoulli(probs=0.9))
        return x

    with pytest.raises(ppl.ModelError, match="causal diagram of 'dynamic' is not static"):
        ppl.identify(dynamic, treatment="x", outcome="y", observed=["x", "y"])


def test_loop_site_is_rejected():
    @ppl.model
    def chain():
        def step(c, _):
            z = ppl.sample("z", dist.Bernoulli(probs=0.2 + 0.6 * c))
            return z, z

        ppl.scan(step, jnp.int32(0), None, length=3)
        ppl.sample("y", dist.Bernoulli(probs=0.5))

    with pytest.raises(ppl.ModelError, match="'z' is inside a loop"):
        ppl.identify(chain, treatment="z", outcome="y", observed=["z", "y"])


# -- properties --------------------------------------------------------------------------


@st.composite
def causal_problems(draw, max_nodes=6, max_latent=None, min_parents=0):
    names, parents, cards = draw(random_dag(max_nodes=max_nodes, min_parents=min_parents))
    y = draw(st.sampled_from(names[1:]))
    ancestors, todo = set(), list(parents[y])
    while todo:
        a = todo.pop()
        if a not in ancestors:
            ancestors.add(a)
            todo.extend(parents[a])
    # mostly a treatment that can affect the outcome; sometimes one that cannot
    pool = sorted(ancestors, key=names.index) if ancestors and draw(st.integers(0, 4)) else None
    x = draw(st.sampled_from(pool or [v for v in names if v != y]))
    others = [v for v in names if v not in (x, y)]
    latent = draw(st.lists(st.sampled_from(others), unique=True, max_size=len(others) if max_latent is None else min(max_latent, len(others)))) if others else []
    observed = [v for v in names if v not in latent]
    return names, parents, cards, x, y, observed, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(causal_problems(max_nodes=5, max_latent=2, min_parents=1))
def test_identified_effects_equal_surgery_on_the_full_model(problem):
    names, parents, cards, x, y, observed, seed = problem
    model = make_model(names, parents, cards, random_cpts(names, parents, cards, seed))
    try:
        e = ppl.identify(model, treatment=x, outcome=y, observed=observed)
    except ppl.NotIdentifiable as err:
        event("not identifiable")
        assert err.hedge and err.hedge[1] and set(err.hedge[1]) <= set(err.hedge[0])
        if importlib.util.find_spec("y0") is not None:  # the second opinion agrees
            assert not _y0_identifiable(names, parents, observed, x, y)
        return
    event("identified: " + ("conditional" if "|" in e.formula else "marginal"))
    assert_matches_surgery(model, e, observed, x, y)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(causal_problems(max_nodes=6, max_latent=3, min_parents=1))
def test_identified_effects_equal_surgery_many(problem):
    test_identified_effects_equal_surgery_on_the_full_model.hypothesis.inner_test(problem)


def _y0_identifiable(names, parents, observed, x, y):
    """The second opinion: y0's ID algorithm, with y0's own latent simplification (Evans' rules)."""
    import networkx as nx
    from y0.algorithm.identify import Identification, Unidentifiable, identify
    from y0.algorithm.simplify_latent import simplify_latent_dag
    from y0.dsl import P, Variable
    from y0.graph import NxMixedGraph

    dag = nx.DiGraph()
    for v in names:
        dag.add_node(Variable(v), hidden=v not in observed)
    for v in names:
        for p in parents[v]:
            dag.add_edge(Variable(p), Variable(v))
    simplify_latent_dag(dag)
    graph = NxMixedGraph.from_latent_variable_dag(dag)
    for v in observed:  # an observed site without any edge still belongs to the graph
        graph.add_node(Variable(v))
    try:
        identify(Identification.from_expression(graph=graph, query=P(Variable(y) @ Variable(x))))
        return True
    except Unidentifiable:
        return False


@settings(max_examples=300, deadline=None)
@given(causal_problems(max_nodes=7))
def test_verdicts_agree_with_y0(problem):
    pytest.importorskip("y0")
    names, parents, cards, x, y, observed, _ = problem
    G = latent_projection(names, {v: frozenset(ps) for v, ps in parents.items()}, observed)
    try:
        identify_effect(G, {y}, {x})
        ours = True
    except Hedge:
        ours = False
    assert ours == _y0_identifiable(names, parents, observed, x, y), (parents, observed, x, y, str(G))


# -- the estimand as a ppl program --------------------------------------------------------


def test_estimand_runs_as_a_ppl_program_with_the_datas_uncertainty():
    observed = ["smoking", "tar", "cancer"]
    e = ppl.identify(front_door, treatment="smoking", outcome="cancer", observed=observed)
    rows, w = enumerate_table(front_door, observed)
    counts = w * 1e6  # a large study with exactly the model's frequencies
    plug = e.evaluate(rows, weights=counts)
    program = ppl.model(e.program(rows, weights=counts))
    post = ppl.infer(program, method=ppl.Importance(num_particles=2000), seed=1)
    effect = np.asarray(post.samples["effect"])  # (draws, smoking, cancer)
    assert effect.shape == (2000, 2, 2)
    np.testing.assert_allclose(effect.sum(-1), 1.0, atol=1e-5)  # every draw is a distribution
    for t in (0, 1):
        draws = effect[:, t, 1]
        se = draws.std() / np.sqrt(len(draws))
        assert abs(draws.mean() - plug[t][1]) < 5 * se + 1e-4
        assert 0 < draws.std() < 0.01  # a million rows leave little uncertainty, but some
    with pytest.raises(ppl.ModelError, match="prior= must be positive"):
        e.program(rows, weights=counts, prior=0.0)
