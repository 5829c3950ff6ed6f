"""ppl.diagram: the model's string diagram, as text and as a picture; do cuts the edges into a site."""

import re

import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist


@ppl.model
def garden():
    rain = ppl.sample("rain", dist.Bernoulli(probs=0.2))
    sprinkler = ppl.sample("sprinkler", dist.Bernoulli(probs=jnp.where(rain == 1, 0.01, 0.4)))
    wetness = ppl.deterministic("wetness", rain + sprinkler)
    ppl.sample("wet", dist.Bernoulli(probs=jnp.array([0.05, 0.8, 0.99])[wetness]))
    return rain


def test_edges_are_the_data_flow():
    d = ppl.diagram(garden)
    assert d.edges == {("rain", "sprinkler"), ("rain", "wetness"), ("sprinkler", "wetness"), ("wetness", "wet")}
    assert [n.address for n in d.nodes] == ["rain", "sprinkler", "wetness", "wet"]
    assert d.node("wetness").kind == "deterministic"


def test_do_cuts_exactly_the_edges_into_the_site():
    before = ppl.diagram(garden).edges
    for site in ("sprinkler", "wetness", "rain"):
        after = ppl.diagram(garden.do({site: 1})).edges
        assert after == {(a, b) for a, b in before if b != site}
        assert ppl.diagram(garden.do({site: 1})).node(site).kind == "intervened"
    # a new distribution cuts them too; a function of named sites draws edges from those sites only
    assert ppl.diagram(garden.do({"sprinkler": dist.Bernoulli(probs=0.5)})).parents("sprinkler") == ()
    assert ppl.diagram(garden.do({"wetness": lambda sprinkler: 2 * sprinkler})).parents("wetness") == ("sprinkler",)


def test_conditioned_sites_are_observations():
    d = ppl.diagram(garden.condition({"wet": 1}))
    assert d.node("wet").kind == "observe"
    assert d.edges == ppl.diagram(garden).edges


def test_text_rendering():
    text = str(ppl.diagram(garden.do({"sprinkler": 1})))
    assert text.splitlines() == [
        "diagram of 'garden':",
        "  rain       ~ Bernoulli",
        "  sprinkler  do(:= 1)",
        "  wetness    = f(...)  <- rain, sprinkler",
        "  wet        ~ Bernoulli  <- wetness",
    ]


def test_png_and_svg_are_written(tmp_path):
    import matplotlib.image

    png = ppl.diagram(garden.do({"sprinkler": 1})).save(tmp_path / "garden.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert np.std(image) > 0  # not a blank canvas
    svg = ppl.diagram(garden).save(tmp_path / "garden.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def test_bad_picture_format(tmp_path):
    with pytest.raises(ppl.ModelError, match=r"\.svg, \.png or \.pdf"):
        ppl.diagram(garden).save(tmp_path / "garden.jpeg")


def test_unknown_intervention_site():
    with pytest.raises(ppl.AddressError, match="sprinkle") as info:
        ppl.diagram(garden.do({"sprinkle": 1}))
    assert "Did you mean 'sprinkler'?" in str(info.value)


def test_dynamic_model_has_no_static_diagram():
    @ppl.model
    def dynamic():
        x = ppl.sample("x", dist.Bernoulli(probs=0.5))
        if x == 1:
            ppl.sample("y", dist.Bernoulli(probs=0.9))

    with pytest.raises(ppl.ModelError, match="diagram of 'dynamic' is not static"):
        ppl.diagram(dynamic)


def test_repl_diagram_command():
    import io

    from ppl import repl as R

    script = "\n".join([
        "model garden() {",
        "  rain ~ bernoulli(0.2)",
        "  sprinkler ~ bernoulli(rain * 0.01 + (1 - rain) * 0.4)",
        "  wet ~ bernoulli(0.05 + 0.5 * rain + 0.4 * sprinkler)",
        "  return wet",
        "}",
        ":diagram garden",
        "model garden_on = garden.do(sprinkler = 1)",
        ":diagram garden_on",
        ":diagram nothing",
        ":quit",
    ])
    out = io.StringIO()
    R.run_repl(io.StringIO(script), out)
    text = out.getvalue()
    assert "diagram of 'garden':" in text
    assert re.search(r"sprinkler +~ Bernoulli +<- rain", text)
    assert re.search(r"wet +~ Bernoulli +<- rain, sprinkler", text)
    assert "there is no model named 'nothing'" in text
    after = text[text.index("diagram of 'garden_on':"):]
    assert re.search(r"sprinkler +do\(:= 1\)\n", after)
