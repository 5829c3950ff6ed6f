"""The .ppl forms of queries: `m.condition(...)` and `m.counterfactual(...).do(...)` are the Python
`Model.condition` and `ppl.counterfactual`, with the answers computed by hand."""

import pytest

import ppl

SRC = """
model yard() {
  rain ~ bernoulli(0.2)
  sprinkler ~ bernoulli(if rain == 1 then 0.01 else 0.4)
  wet ~ bernoulli(0.05 + 0.5 * rain + 0.4 * sprinkler)
  return rain
}

model yard_seen = yard.condition(wet = 1, sprinkler = 1)
model yard_had_not = yard.counterfactual(wet = 1, sprinkler = 1).do(sprinkler = 0)
"""

# by hand: P(rain | wet = 1, sprinkler = 1), and wet = [U < p(rain, sprinkler)] with U shared by both worlds
P_RAIN = 0.2 * 0.01 * 0.95 / (0.2 * 0.01 * 0.95 + 0.8 * 0.4 * 0.45)
P_STILL_WET = P_RAIN * 0.55 / 0.95 + (1 - P_RAIN) * 0.05 / 0.45


def test_condition_in_the_language_is_model_condition():
    module = ppl.loads(SRC)
    post = ppl.infer(module.yard_seen, method=ppl.Enumerate())
    assert float(post.mean()) == pytest.approx(P_RAIN, abs=1e-6)
    python = ppl.infer(module.yard.condition({"wet": 1, "sprinkler": 1}), method=ppl.Enumerate())
    assert float(post.mean()) == pytest.approx(float(python.mean()), abs=1e-9)


def test_counterfactual_in_the_language_is_ppl_counterfactual():
    module = ppl.loads(SRC)
    post = ppl.infer(module.yard_had_not, method=ppl.Enumerate())
    assert float(post.mean("wet")) == pytest.approx(P_STILL_WET, abs=1e-6)
    assert float(post.mean("rain")) == pytest.approx(P_RAIN, abs=1e-6)  # upstream of the intervention: shared
    python = ppl.counterfactual(module.yard, observed={"wet": 1, "sprinkler": 1}, do={"sprinkler": 0})
    assert float(post.mean("wet")) == pytest.approx(float(ppl.infer(python, method=ppl.Enumerate()).mean("wet")),
                                                    abs=1e-9)
