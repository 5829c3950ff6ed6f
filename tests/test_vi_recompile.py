"""ppl.VI: a second fit with new data of the same shapes compiles nothing, for the automatic guides
too; the progress display shows the objective; the posteriordb models run with AutoNormal and
AutoMultivariateNormal and give finite objectives."""

from __future__ import annotations

import numpy as np
import jax
import optax
import pytest

import ppl
from ppl.inference.vi.progress import FitProgress
from ppl import dist
from test_recompile import data, regression, second_run_compiles_nothing


@pytest.mark.parametrize("guide", [ppl.AutoNormal(), pytest.param(ppl.AutoMultivariateNormal(), marks=pytest.mark.slow)],
                         ids=["normal", "mvn"])
def test_second_vi_fit_with_new_data_of_the_same_shapes_compiles_nothing(guide):
    method = ppl.VI(guide=guide, objective=ppl.ELBO(4), optimizer=optax.adam(1e-2), num_steps=200,
                    chunk_size=100, num_samples=100, progress=False)
    a, b = second_run_compiles_nothing(regression, method, data(0), data(1))
    assert np.isfinite(a.log_evidence) and np.isfinite(b.log_evidence) and a.log_evidence != b.log_evidence


def test_init_loc_map_compiles_its_mode_search_once_per_program_and_frees_the_model():
    """init_loc='map': a second fit with new data of the same shapes compiles nothing (the L-BFGS search is
    kept per program, not per guide), and the search keeps neither the model nor the data alive (the last
    part binds a guide directly; test_compile_cache checks that a whole fit frees its model)."""
    import gc
    import weakref

    @ppl.model
    def line(x, y):
        alpha = ppl.sample("alpha", dist.Normal(0.0, 5.0))
        beta = ppl.sample("beta", dist.Normal(0.0, 5.0))
        with ppl.plate("data", x.shape[0]):
            ppl.observe("y", dist.Normal(alpha + beta * x, 0.5), y)

    method = ppl.VI(guide=ppl.AutoNormal(init_loc="map"), objective=ppl.ELBO(4), optimizer=optax.adam(1e-3),
                    num_steps=1, num_samples=10, progress=False)
    a, b = second_run_compiles_nothing(line, method, data(0), data(1), seeds=(0, 0))
    # one Adam step of 1e-3 from each data set's mode: the least-squares line of each (prior sd 5: nearly)
    for fit, seed in ((a, 0), (b, 1)):
        x, y = data(seed)
        slope, intercept = np.polyfit(x, y, 1)
        np.testing.assert_allclose([float(fit.params["loc"]["alpha"]), float(fit.params["loc"]["beta"])],
                                   [intercept, slope], atol=0.02)
    # the mode search keeps no guide (nor its program and data) alive: a model bound, started, dropped, freed
    @ppl.model
    def alone(x, y):
        alpha = ppl.sample("alpha", dist.Normal(0.0, 5.0))
        beta = ppl.sample("beta", dist.Normal(0.0, 5.0))
        with ppl.plate("data", x.shape[0]):
            ppl.observe("y", dist.Normal(alpha + beta * x, 0.5), y)

    program, leaves = alone.program(*data(2))
    guide = ppl.AutoNormal(init_loc="map").bind(program, leaves)
    loc = guide.init(jax.random.key(0))["loc"]
    slope, intercept = np.polyfit(*data(2), 1)
    np.testing.assert_allclose([float(loc["alpha"]), float(loc["beta"])], [intercept, slope], atol=0.02)
    alive = weakref.ref(program)
    del alone, program, leaves, guide
    gc.collect()
    assert alive() is None, "the model's program outlived the model (kept by the compiled mode search)"


def test_progress_display_shows_the_objective(capsys):
    with FitProgress(1000, "ELBO", True, delay=0.0) as bar:
        bar.update(500, -123.456)
    shown = capsys.readouterr().err
    assert "ELBO -123.5" in shown and "500/1000" in shown


# ---------------------------------------------------------------------------
# posteriordb: every model the suite carries, with both guides


def _posteriordb_case_names():
    from test_posteriordb import CASES

    return sorted(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("name", _posteriordb_case_names())
def test_posteriordb_models_run_with_auto_guides(name):
    import sys
    import pathlib

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    from test_posteriordb import CASES
    from vi_posteriordb import fit

    for guide in ("normal", "mvn"):
        post, arrays, _ = fit(CASES[name], guide, steps=500, num_samples=200)
        assert np.isfinite(post.log_evidence), (name, guide)
        assert np.all(np.isfinite(post.history)), (name, guide)
        assert all(np.all(np.isfinite(v)) for v in arrays.values()), (name, guide)
