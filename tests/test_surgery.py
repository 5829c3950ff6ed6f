"""model.do: surgery on every kind of site, and the laws of intervention, against exact enumeration."""

import itertools
import re

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ppl
from ppl import dist

from causal_models import exact_joint, make_model, random_cpts, random_dag


def table(model, sites, engine="eager"):
    """Exact joint of ``sites`` under ``model``: {tuple of values: probability}."""
    post = ppl.infer(model, method=ppl.Enumerate(engine=engine))
    out: dict = {}
    cols = [np.asarray(post.samples[s]).tolist() for s in sites]
    for row, w in zip(zip(*cols), post.weights):
        out[row] = out.get(row, 0.0) + float(w)
    return out


def assert_tables_equal(a, b, tol=1e-6):
    for k in set(a) | set(b):
        assert abs(a.get(k, 0.0) - b.get(k, 0.0)) < tol, (k, a.get(k), b.get(k))


def truncated_factorisation(names, parents, cards, cpts, fixed):
    """P(v | do(fixed)) = Π_{v not fixed} P(v | pa(v)), computed in numpy from the tables."""
    free = [v for v in names if v not in fixed]
    out = {}
    for idx in itertools.product(*[range(cards[v]) for v in free]):
        val = {**dict(zip(free, idx)), **fixed}
        p = 1.0
        for v in free:
            p *= cpts[v][tuple(val[q] for q in parents[v]) + (val[v],)]
        out[idx] = p
    return free, out


def descendants(parents, x):
    out, changed = set(), True
    while changed:
        changed = False
        for v, ps in parents.items():
            if v not in out and (x in ps or out & set(ps)):
                out.add(v)
                changed = True
    return out


@st.composite
def interventions(draw):
    names, parents, cards = draw(random_dag(max_nodes=5))
    x = draw(st.sampled_from(names))
    a = draw(st.integers(0, cards[x] - 1))
    return names, parents, cards, x, a, draw(st.integers(0, 2**31 - 1))


# -- the laws ----------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interventions())
def test_do_is_the_truncated_factorisation_and_leaves_non_descendants_alone(problem):
    names, parents, cards, x, a, seed = problem
    cpts = random_cpts(names, parents, cards, seed)
    model = make_model(names, parents, cards, cpts)
    done = model.do({x: a})
    free, want = truncated_factorisation(names, parents, cards, cpts, {x: a})
    got = table(done, free)
    assert_tables_equal(got, want)
    # the intervened site is no random choice: no latent, no density
    assert x not in done.ir().latent_sites()
    assert set(done.ir().latent_sites()) == set(free)
    # non-descendants keep their marginals
    joint = exact_joint(names, parents, cards, cpts)
    for v in set(names) - descendants(parents, x) - {x}:
        i = names.index(v)
        before = joint.sum(axis=tuple(j for j in range(len(names)) if j != i))
        after = table(done, [v])
        for k in range(cards[v]):
            assert abs(after.get((k,), 0.0) - before[k]) < 1e-6


def test_hard_intervention_has_no_density_term():
    names, parents = ["a", "b", "c"], {"a": (), "b": ("a",), "c": ("a", "b")}
    cards = {v: 2 for v in names}
    cpts = random_cpts(names, parents, cards, 3)
    model = make_model(names, parents, cards, cpts)
    done = model.do({"b": 1})
    for va, vc in itertools.product((0, 1), (0, 1)):
        lp = float(done.log_density({"a": jnp.int32(va), "c": jnp.int32(vc)}))
        want = np.log(cpts["a"][va]) + np.log(cpts["c"][va, 1, vc])  # no P(b | a) term
        assert lp == pytest.approx(want, abs=1e-5)


def test_do_on_a_root_is_conditioning_on_it():
    names, parents = ["r", "s", "t"], {"r": (), "s": ("r",), "t": ("r", "s")}
    cards = {"r": 3, "s": 2, "t": 2}
    model = make_model(names, parents, cards, random_cpts(names, parents, cards, 11))
    for a in range(3):
        assert_tables_equal(table(model.do({"r": a}), ["s", "t"]), table(model.condition({"r": a}), ["s", "t"]))
    # and not for a non-root: conditioning on s is evidence about r
    cond = table(model.condition({"s": 1}), ["r"])
    done = table(model.do({"s": 1}), ["r"])
    assert max(abs(cond[k] - done[k]) for k in done) > 1e-3


def test_do_is_idempotent_and_commutes():
    names, parents = ["a", "b", "c", "d"], {"a": (), "b": ("a",), "c": ("a", "b"), "d": ("b", "c")}
    cards = {v: 2 for v in names}
    model = make_model(names, parents, cards, random_cpts(names, parents, cards, 5))
    once = table(model.do({"b": 1}), ["a", "c", "d"])
    assert_tables_equal(table(model.do({"b": 1}).do({"b": 1}), ["a", "c", "d"]), once)
    one_way = table(model.do({"b": 1}).do({"c": 0}), ["a", "d"])
    other_way = table(model.do({"c": 0}).do({"b": 1}), ["a", "d"])
    together = table(model.do({"b": 1, "c": 0}), ["a", "d"])
    assert_tables_equal(one_way, other_way)
    assert_tables_equal(one_way, together)


# -- every kind of site -----------------------------------------------------------------


def test_do_on_an_observed_site_drops_its_evidence():
    @ppl.model
    def coin():
        p = ppl.sample("p", dist.Categorical(probs=jnp.array([0.5, 0.5])))
        ppl.observe("y", dist.Bernoulli(probs=jnp.where(p == 1, 0.9, 0.2)), jnp.int32(1))
        return p

    seen = ppl.infer(coin, method=ppl.Enumerate()).mean("p")
    assert seen == pytest.approx(0.9 / 1.1, abs=1e-6)
    done = coin.do({"y": 1})
    assert ppl.infer(done, method=ppl.Enumerate()).mean("p") == pytest.approx(0.5, abs=1e-6)
    assert "y" not in done.ir().sites


@ppl.model
def with_deterministic():
    a = ppl.sample("a", dist.Bernoulli(probs=0.3))
    b = ppl.sample("b", dist.Bernoulli(probs=0.6))
    s = ppl.deterministic("s", a + b)
    ppl.sample("y", dist.Bernoulli(probs=jnp.array([0.1, 0.5, 0.9])[s]))


def test_do_on_a_deterministic_site_replaces_it():
    post = ppl.infer(with_deterministic.do({"s": 2}), method=ppl.Enumerate())
    assert post.mean("y") == pytest.approx(0.9, abs=1e-6)
    assert post.mean("a") == pytest.approx(0.3, abs=1e-6)  # nothing upstream moves
    assert np.all(np.asarray(post.samples["s"]) == 2)


@ppl.model
def chain():
    def step(c, _):
        z = ppl.sample("z", dist.Bernoulli(probs=jnp.where(c == 1, 0.9, 0.2)))
        return z, z

    last, _ = ppl.scan(step, jnp.int32(0), None, length=3)
    ppl.sample("out", dist.Bernoulli(probs=jnp.where(last == 1, 0.8, 0.1)))


def test_do_on_a_whole_loop_site():
    post = ppl.infer(chain.do({"z": jnp.array([0, 1, 1])}), method=ppl.Enumerate())
    assert post.mean("out") == pytest.approx(0.8, abs=1e-6)
    assert "z" not in post.samples


def test_do_on_one_step_of_a_loop_site():
    done = chain.do({"z[1]": 1})
    assert done.is_static()  # IR -> IR: z is recorded as where(step == 1, 1, natural draw)
    post = ppl.infer(done, method=ppl.Enumerate())
    z = np.asarray(post.samples["z"])
    w = np.asarray(post.weights)
    assert np.all(z[:, 1] == 1)
    # truncated factorisation: z0 ~ B(0.2) keeps its marginal, z2 ~ B(0.9) since z1 = 1, out ~ B(0.8 | 0.1)
    assert float(w @ z[:, 0]) == pytest.approx(0.2, abs=1e-6)
    assert float(w @ z[:, 2]) == pytest.approx(0.9, abs=1e-6)
    assert post.mean("out") == pytest.approx(0.9 * 0.8 + 0.1 * 0.1, abs=1e-6)
    # two steps at once, and the same as a function of the natural value
    both = ppl.infer(chain.do({"z[0]": 0, "z[2]": 1}), method=ppl.Enumerate())
    assert both.mean("out") == pytest.approx(0.8, abs=1e-6)


@ppl.model
def plated():
    with ppl.plate("n", 3):
        x = ppl.sample("x", dist.Bernoulli(probs=0.5))
        ppl.sample("y", dist.Bernoulli(probs=jnp.where(x == 1, 0.7, 0.2)))


def test_do_on_a_whole_plate_site():
    post = ppl.infer(plated.do({"x": jnp.array([1, 0, 1])}), method=ppl.Enumerate())
    np.testing.assert_allclose(post.mean("y"), [0.7, 0.2, 0.7], atol=1e-6)
    post = ppl.infer(plated.do({"x": 1}), method=ppl.Enumerate())  # one value for every element
    np.testing.assert_allclose(post.mean("y"), [0.7, 0.7, 0.7], atol=1e-6)


def test_do_on_one_element_of_a_plate_site():
    post = ppl.infer(plated.do({"x[1]": 1}), method=ppl.Enumerate())
    np.testing.assert_allclose(post.mean("y"), [0.45, 0.7, 0.45], atol=1e-6)
    np.testing.assert_allclose(post.mean("x"), [0.5, 1.0, 0.5], atol=1e-6)
    with pytest.raises(ppl.AddressError, match=r"names 'x\[5\]', but the site 'x' has shape \(3,\)"):
        plated.do({"x[5]": 1}).ir()
    with pytest.raises(ppl.SupportError, match="'x' to 2, which is outside the support"):
        plated.do({"x[0]": 2}).ir()


@ppl.model
def inner():
    x = ppl.sample("x", dist.Bernoulli(probs=0.3))
    return ppl.sample("y", dist.Bernoulli(probs=jnp.where(x == 1, 0.9, 0.1)))


@ppl.model
def outer():
    y = inner()
    ppl.sample("z", dist.Bernoulli(probs=jnp.where(y == 1, 0.75, 0.25)))


def test_do_on_a_site_of_a_sub_model():
    post = ppl.infer(outer.do({"inner/x": 1}), method=ppl.Enumerate())
    assert post.mean("inner/y") == pytest.approx(0.9, abs=1e-6)
    assert post.mean("z") == pytest.approx(0.9 * 0.75 + 0.1 * 0.25, abs=1e-6)
    assert "inner/x" not in post.samples


# -- soft interventions ------------------------------------------------------------------------


@ppl.model
def soft():
    z = ppl.sample("z", dist.Bernoulli(probs=0.3))
    x = ppl.sample("x", dist.Categorical(probs=jnp.where(z == 1, jnp.array([0.6, 0.3, 0.1]),
                                                         jnp.array([0.2, 0.2, 0.6]))))
    ppl.sample("y", dist.Bernoulli(probs=jnp.array([0.1, 0.5, 0.9])[x]))


def test_soft_intervention_as_a_function_of_parents():
    post = ppl.infer(soft.do({"x": lambda z: 2 * z}), method=ppl.Enumerate())
    # x = 2 z: y ~ Bernoulli(0.9) when z = 1, Bernoulli(0.1) when z = 0
    assert post.mean("y") == pytest.approx(0.3 * 0.9 + 0.7 * 0.1, abs=1e-6)
    assert post.mean("z") == pytest.approx(0.3, abs=1e-6)
    assert "x" not in soft.do({"x": lambda z: 2 * z}).ir().latent_sites()


def test_soft_intervention_shifting_the_natural_value():
    post = ppl.infer(soft.do({"x": lambda x: (x + 1) % 3}), method=ppl.Enumerate())
    natural = 0.3 * np.array([0.6, 0.3, 0.1]) + 0.7 * np.array([0.2, 0.2, 0.6])
    shifted = np.roll(natural, 1)
    assert post.mean("y") == pytest.approx(float(shifted @ np.array([0.1, 0.5, 0.9])), abs=1e-6)
    assert post.mean("x.natural") == pytest.approx(float(natural @ np.arange(3)), abs=1e-6)


def test_soft_intervention_as_a_new_distribution():
    done = soft.do({"x": dist.Categorical(probs=jnp.array([0.0, 0.0, 1.0]))})
    post = ppl.infer(done, method=ppl.Enumerate())
    assert post.mean("y") == pytest.approx(0.9, abs=1e-6)
    assert "x" in done.ir().latent_sites()  # still a random choice, with the new mechanism
    # the new mechanism ignores z: x and z are independent
    t = table(soft.do({"x": dist.Categorical(probs=jnp.array([0.5, 0.25, 0.25]))}), ["z", "x"])
    assert t[(1, 0)] == pytest.approx(0.3 * 0.5, abs=1e-6)


def test_soft_intervention_reading_an_unknown_site():
    with pytest.raises(ppl.AddressError, match="reads 'w'"):
        ppl.infer(soft.do({"x": lambda w: w}), method=ppl.Enumerate())


@ppl.model
def loop_with_dose():
    ppl.sample("severity", dist.Bernoulli(probs=0.4))  # read by the intervention below, by name

    def step(c, _):
        x = ppl.sample("x", dist.Bernoulli(probs=0.5))
        y = ppl.sample("y", dist.Bernoulli(probs=jnp.where(x == 1, 0.9, 0.1)))
        return c + y, y

    total, _ = ppl.scan(step, jnp.int32(0), None, length=2)
    return total


def test_function_intervention_inside_a_loop_reads_a_site_made_before_it():
    # x := severity at every step (read from outside the loop): E[total] = 2 (0.4 * 0.9 + 0.6 * 0.1)
    post = ppl.infer(loop_with_dose.do({"x": lambda severity: severity}), method=ppl.Enumerate())
    assert post.mean() == pytest.approx(2 * (0.4 * 0.9 + 0.6 * 0.1), abs=1e-6)


@ppl.model
def observed_chain(y):
    p = ppl.sample("p", dist.Categorical(probs=jnp.array([0.5, 0.5])))
    seen = ppl.observe("y", dist.Bernoulli(probs=jnp.where(p == 1, 0.9, 0.2)), y)
    ppl.sample("z", dist.Bernoulli(probs=jnp.where(seen == 1, 0.8, 0.1)))


def test_do_on_an_observed_site_is_seen_downstream():
    data = jnp.int32(1)
    assert ppl.infer(observed_chain, data, method=ppl.Enumerate()).mean("z") == pytest.approx(0.8, abs=1e-6)
    post = ppl.infer(observed_chain.do({"y": 0}), data, method=ppl.Enumerate())
    assert post.mean("z") == pytest.approx(0.1, abs=1e-6)  # the readers of y see 0, not the data
    assert post.mean("p") == pytest.approx(0.5, abs=1e-6)  # and nothing learns from the data
    shifted = ppl.infer(observed_chain.do({"y": lambda y: 1 - y}), data, method=ppl.Enumerate())
    assert shifted.mean("z") == pytest.approx(0.1, abs=1e-6)
    coin = ppl.infer(observed_chain.do({"y": dist.Bernoulli(probs=0.25)}), data, method=ppl.Enumerate())
    assert coin.mean("z") == pytest.approx(0.25 * 0.8 + 0.75 * 0.1, abs=1e-6)


def test_do_on_a_conditioned_site_replaces_the_condition():
    @ppl.model
    def garden():
        rain = ppl.sample("rain", dist.Bernoulli(probs=0.2))
        sprinkler = ppl.sample("sprinkler", dist.Bernoulli(probs=jnp.where(rain == 1, 0.01, 0.4)))
        ppl.sample("wet", dist.Bernoulli(probs=0.05 + 0.5 * rain + 0.4 * sprinkler))

    post = ppl.infer(garden.condition({"sprinkler": 1}).do({"sprinkler": 0}), method=ppl.Enumerate())
    assert post.mean("rain") == pytest.approx(0.2, abs=1e-6)  # the evidence is gone
    assert post.mean("wet") == pytest.approx(0.05 + 0.5 * 0.2, abs=1e-6)  # and the readers see 0


def test_do_on_an_observed_constant_that_is_read_later_is_refused():
    @ppl.model
    def inlined():
        seen = ppl.observe("y", dist.Bernoulli(probs=0.3), jnp.int32(1))
        ppl.sample("z", dist.Bernoulli(probs=jnp.where(seen == 1, 0.8, 0.1)))

    with pytest.raises(ppl.ModelError, match="observed site 'y', whose data is a constant") as info:
        inlined.do({"y": 0}).ir()
    assert "as an argument" in info.value.hint


# -- bad input -------------------------------------------------------------------------------


def test_unknown_site_says_did_you_mean():
    with pytest.raises(ppl.AddressError, match=r"names \['zz'\]") as info:
        ppl.infer(soft.do({"zz": 1}), method=ppl.Enumerate())
    assert "Did you mean 'z'?" in str(info.value)


def test_value_outside_the_support():
    with pytest.raises(ppl.SupportError, match="outside the support") as info:
        ppl.infer(soft.do({"z": 2}), method=ppl.Enumerate())
    assert info.value.span is not None and info.value.span.file.endswith("test_surgery.py")


# -- the .ppl syntax ------------------------------------------------------------------------------

GARDEN_PPL = """
model garden(wet: int) {
  rain ~ bernoulli(0.2)
  sprinkler ~ bernoulli(if rain == 1 then 0.01 else 0.4)
  p = if rain == 1 then (if sprinkler == 1 then 0.99 else 0.8) else (if sprinkler == 1 then 0.9 else 0.0)
  wet ~ bernoulli(p)
  return rain
}

model garden_on = garden.do(sprinkler = 1)
model garden_coin = garden.do(sprinkler ~ bernoulli(0.5))
model garden_both = garden_on.do("rain" = 0)
"""


def test_ppl_do_syntax_is_model_do():
    m = ppl.loads(GARDEN_PPL)
    assert set(m.models) == {"garden", "garden_on", "garden_coin", "garden_both"}
    on = ppl.infer(m.garden_on, 1).mean()
    assert on == pytest.approx(ppl.infer(m.garden.do({"sprinkler": 1}), 1).mean(), abs=1e-9)
    assert on == pytest.approx(0.2 * 0.99 / (0.2 * 0.99 + 0.8 * 0.9), abs=1e-6)
    coin = ppl.infer(m.garden_coin, 1).mean()
    want = 0.2 * (0.5 * 0.99 + 0.5 * 0.8) / (0.2 * (0.5 * 0.99 + 0.5 * 0.8) + 0.8 * (0.5 * 0.9 + 0.5 * 0.0))
    assert coin == pytest.approx(want, abs=1e-6)
    both = ppl.infer(m.garden_both, 1)
    assert both.mean() == pytest.approx(0.0, abs=1e-9)
    assert m.garden_both.name == "garden_both"
    assert ppl.diagram(m.garden_on, 1).parents("sprinkler") == ()


def test_ppl_do_value_outside_the_support_names_the_site():
    m = ppl.loads(GARDEN_PPL + "\nmodel garden_bad = garden.do(sprinkler = 3)\n")
    with pytest.raises(ppl.SupportError, match="'sprinkler' to 3, which is outside the support"):
        ppl.infer(m.garden_bad, 1)


# -- do as an IR -> IR transformation --------------------------------------------------------


def _enumerated(program):
    res = ppl.Enumerate(engine="compiled").run(program, [], None)
    rows = {}
    names = sorted(res.samples)
    for i, lw in enumerate(np.asarray(res.log_weights)):
        key = tuple(np.asarray(res.samples[a][i]).tolist().__repr__() for a in names)
        rows[key] = rows.get(key, 0.0) + float(np.exp(lw - res.log_evidence))
    return names, rows


@pytest.mark.parametrize("model, table", [
    (soft, {"x": 2}),
    (soft, {"x": dist.Categorical(probs=jnp.array([0.2, 0.3, 0.5]))}),
    (chain, {"z": jnp.array([1, 0, 1])}),
    (plated, {"x": jnp.array([1, 0, 1])}),
    (with_deterministic, {"s": 0}),
    (outer, {"inner/x": 1}),
    (soft, {"z": 1, "x": 0}),
])
def test_model_do_is_the_ir_transformation(model, table):
    from ppl.inference.causal.transform import do_program

    done = model.do(table)
    transformed = do_program(model.ir(), table)
    assert transformed is not None  # these interventions are IR -> IR
    def shape(p):  # the program's text without variable numbers
        return re.sub(r"\bv\d+\b", "v", str(p))

    assert shape(done.ir()) == shape(transformed)  # Model.do is the transformation
    kept = {a for a in model.ir().latent_sites() if a not in table and not any(k.startswith(a + "[") for k in table)}
    cut = {a for a, v in table.items() if not isinstance(v, ppl.dist.Distribution)}
    assert set(transformed.latent_sites()) == kept | (set(table) - cut)
    names, rows = _enumerated(transformed)
    assert abs(sum(rows.values()) - 1.0) < 1e-6 and set(transformed.latent_sites()) <= set(names)


def test_dynamic_model_do_is_a_clear_error():
    @ppl.model
    def dynamic():
        n = ppl.sample("n", dist.Bernoulli(probs=0.5))
        if int(n) == 1:  # Python control flow on a random value: no static diagram
            ppl.sample("x", dist.Bernoulli(probs=0.5))

    with pytest.raises(ppl.ModelError, match="do\\(\\) on the model 'dynamic', which is dynamic") as info:
        ppl.infer(dynamic.do({"n": 1}), method=ppl.Enumerate())
    assert "ppl.cond" in info.value.hint


def test_an_intervened_model_called_as_a_sub_model_is_a_clear_error():
    done = inner.do({"x": 1})

    @ppl.model
    def calls():
        done()

    with pytest.raises(ppl.ModelError, match="'inner' has interventions .do. and is called as a sub-model") as info:
        calls.ir()
    assert "'inner/<site>'" in info.value.hint


def test_every_intervention_is_an_ir_transformation():
    from ppl.inference.causal.transform import do_program
    from ppl.semantics import ir

    for model, iv in [(soft, {"x": lambda z: z}), (chain, {"z[1]": 1}), (plated, {"x[0]": 0})]:
        assert isinstance(do_program(model.ir(), iv), ir.Program)
    with pytest.raises(ppl.AddressError, match=r"names \['nope'\]"):
        do_program(soft.ir(), {"nope": 1})
