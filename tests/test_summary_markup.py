"""The summary table shows site names as written: rich markup in a name (``w[red]``, ``[/]``) is text."""

from __future__ import annotations

import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.inference.result import Result
from ppl.posterior import Posterior

NAMES = ["w[red]", "w[bold]", "x[/]", "strength[alice]", "[bold red]boom[/bold red]"]


def posterior(samples, chains=False, method="Importance"):
    return Posterior(Result(samples=samples, returns=None, method=method, engine="compiled", chains=chains),
                     "m[green]")


@pytest.mark.parametrize("name", NAMES)
def test_a_markup_like_site_name_is_printed_whole(name):
    table = posterior({name: np.linspace(0.0, 1.0, 11)}).summary()
    assert name in table, table


def test_names_that_differ_only_in_brackets_stay_apart():
    table = posterior({"w[red]": np.zeros(5), "w[bold]": np.ones(5)}).summary()
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert any("w[red]" in r and " 0 " in r for r in rows) and any("w[bold]" in r and " 1 " in r for r in rows)


def test_vector_sites_and_chain_columns_keep_their_brackets():
    rng = np.random.default_rng(0)
    table = posterior({"theta[alice]": rng.normal(size=(2, 50, 3))}, chains=True, method="NUTS").summary()
    for j in range(3):
        assert f"theta[alice][{j}]" in table
    assert "m[green]" in table.splitlines()[0]


def test_a_stuck_discrete_site_shows_r_hat_inf_and_a_value_above_the_threshold_never_reads_1_01():
    z = np.zeros((2, 50))
    z[1] = 1.0
    table = posterior({"z[red]": z}, chains=True, method="Gibbs").summary()
    row = next(line for line in table.splitlines() if "z[red]" in line)
    assert row.rstrip("│ ").endswith("inf")
    from ppl.summary import _fmt_diag

    assert _fmt_diag("r_hat", 1.01004) == "1.01004" and _fmt_diag("r_hat", 1.0) == "1"


def test_a_python_model_with_bracketed_names_runs_and_prints_them():
    @ppl.model
    def named():
        ppl.sample("w[red]", dist.Normal(0.0, 1.0))
        ppl.sample("w[bold]", dist.Normal(5.0, 1.0))

    table = ppl.infer(named, method=ppl.Importance(num_particles=100)).summary()
    assert "w[red]" in table and "w[bold]" in table


def test_the_tug_of_war_table_keeps_every_persons_name():
    import pathlib

    model = ppl.load(pathlib.Path(__file__).parent.parent / "examples" / "tug_of_war.ppl").tug_of_war
    table = ppl.infer(model, method=ppl.Importance(num_particles=500)).summary()
    for person in ("alice", "bob", "sue", "tom"):
        assert f"[{person}]" in table, table


def test_a_matrix_site_is_labelled_by_position_as_the_exports_label_it():
    """The table said z[0]..z[5] for a 2 x 3 site, the CSV z[0,0]..z[1,2]: z[3] named no element."""
    draws = np.arange(10 * 6, dtype=float).reshape(10, 2, 3)
    rows = {line.split("│")[1].strip(): float(line.split("│")[2]) for line in
            posterior({"z": draws}).summary().splitlines() if line.startswith("│")}
    assert list(rows) == [f"z[{i},{j}]" for i in range(2) for j in range(3)]
    assert rows["z[1,0]"] == pytest.approx(draws[:, 1, 0].mean())
