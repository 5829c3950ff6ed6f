"""SamplingWarnings: every MCMC method runs the same checks afterwards (``inference/mcmc/checks.py``),
each warning points at the user's call, counts and lists the same coordinates, never prints a value
above a threshold as the threshold, and says once what happened and how to act from where the user is.
"""

from __future__ import annotations

import inspect
import re
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ppl
from ppl import dist
from ppl.inference.mcmc import checks
from ppl.inference.mcmc.base import SamplingWarning as BaseSamplingWarning
from ppl.inference.mcmc.checks import SamplingWarning, check_draws, format_above, format_below, how_to_set


def record(fn):
    """Run ``fn`` and return its SamplingWarnings (every other warning stays an error)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        warnings.simplefilter("always", SamplingWarning)
        out = fn()
    return out, [w for w in caught if issubclass(w.category, SamplingWarning)]


def quiet(fn):
    """``fn()``'s return value (the messages), each of which was also issued as a SamplingWarning."""
    out, got = record(fn)
    assert [str(w.message) for w in got] == out
    return out


def iid(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


# --------------------------------------------------------------------------- the checks on draws


def test_one_class_of_sampling_warning():
    assert BaseSamplingWarning is SamplingWarning


def test_well_mixed_draws_give_no_warning():
    _, got = record(lambda: check_draws("MH", {"accept_prob": np.full((4, 500), 0.4)}, ["a", "b"], iid((4, 500, 2))))
    assert got == []


def test_count_and_list_agree():
    """One coordinate of ten has not mixed: the warning counts one and lists exactly that one."""
    draws = iid((4, 400, 10))
    draws[0, :, 7] += 3.0  # chain 0 of coordinate 7 sits elsewhere
    names = [f"x[{i}]" for i in range(10)]
    messages = quiet(lambda: check_draws("MH", {}, names, draws))
    (rhat,) = [m for m in messages if m.startswith("R-hat")]
    assert "for 1 of 10 coordinates" in rhat
    assert "x[7] (" in rhat and not any(f"x[{i}] (" in rhat for i in range(10) if i != 7)


def test_more_than_five_bad_coordinates_are_counted_not_listed():
    draws = iid((4, 400, 8))
    draws[0] += 3.0
    messages = quiet(lambda: check_draws("MH", {}, [f"x{i}" for i in range(8)], draws))
    (rhat,) = [m for m in messages if m.startswith("R-hat")]
    assert "for 8 of 8 coordinates" in rhat and len(re.findall(r"x\d \(", rhat)) == 5 and "and 3 more" in rhat


def test_a_discrete_site_stuck_in_each_chain_is_named_not_a_silent_inf():
    """Each chain constant, the chains different: R-hat is inf, and the warning says why."""
    z = np.zeros((4, 100, 1))
    z[1] = 1.0
    z[3] = 1.0
    messages = quiet(lambda: check_draws("Gibbs", {}, ["z"], z))
    (rhat,) = [m for m in messages if m.startswith("R-hat")]
    assert "z (inf)" in rhat and "R-hat is inf for z" in rhat and "never moved" in rhat


def test_divergences_are_reported_once_with_advice_for_python():
    diverging = np.zeros((2, 100), bool)
    diverging[0, :7] = True
    diverging[1, :3] = True
    messages = quiet(lambda: check_draws("NUTS", {"diverging": diverging}, [], None))
    assert len([m for m in messages if "divergent" in m]) == 1
    assert messages[0].startswith("10 of 200 transitions after warm-up were divergent (per chain: 7, 3)")
    assert "ppl.NUTS(target_accept=0.95)" in messages[0]


def test_nan_transitions_are_not_also_counted_as_divergences():
    diverging = np.zeros((2, 50), bool)
    diverging[0, :4] = True
    messages = quiet(lambda: check_draws("NUTS", {"diverging": diverging, "nonfinite": diverging.copy()}, [], None))
    assert len(messages) == 1 and "NaN" in messages[0] and "divergent" not in messages[0]


def test_advice_names_the_way_to_set_an_option_from_where_the_user_is():
    assert how_to_set("NUTS", "target_accept", "0.95", "python") == "ppl.NUTS(target_accept=0.95)"
    assert how_to_set("NUTS", "target_accept", "0.95", "cli") == "--target-accept 0.95"
    assert how_to_set("NUTS", "max_tree_depth", "12", "cli") == "--max-tree-depth 12"
    repl = how_to_set("HMC", "target_accept", "0.9", "repl")
    assert "ppl.HMC(target_accept=0.9)" in repl and "--target-accept 0.9" in repl
    assert how_to_set("MH", "num_samples", "4000", "repl") == ":infer ... samples=4000"
    assert checks.frontend() == "python"


def test_low_acceptance_is_reported_when_asked_for():
    accept = np.full((2, 100), 0.02)
    messages = quiet(lambda: check_draws("MH", {"accept_prob": accept}, [], None, min_acceptance=0.05))
    assert len(messages) == 1 and "acceptance rate of MH is 0.02" in messages[0]
    assert quiet(lambda: check_draws("MH", {"accept_prob": np.full((2, 100), 0.3)}, [], None, min_acceptance=0.05)) == []


def test_a_value_just_above_the_threshold_does_not_print_as_the_threshold():
    assert format_above(1.01004, 1.01) == "1.01004"
    assert format_above(1.0149, 1.01) == "1.015"  # three digits would read 1.01, the threshold itself
    assert format_above(1.0504, 1.01) == "1.05"
    assert format_below(399.96, 400) == "399.96"
    assert format_below(27.37, 400) == "27.4"


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 5.0), st.floats(1e-12, 1.0))
def test_format_above_reads_above(threshold, excess):
    x = threshold + excess * threshold
    if x > threshold:
        assert float(format_above(x, threshold)) > threshold


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 1e6), st.floats(1e-12, 0.999))
def test_format_below_reads_below(floor, shortfall):
    x = floor - shortfall * floor
    if x < floor:
        assert float(format_below(x, floor)) < floor


# --------------------------------------------------------------------------- through ppl.infer


@ppl.model
def two_means(y):
    a = ppl.sample("a", dist.Normal(0.0, 10.0))
    b = ppl.sample("b", dist.Normal(0.0, 10.0))
    ppl.observe("y", dist.Normal(a + b, 0.1), y)


@ppl.model
def coin_and_mean(y):
    z = ppl.sample("z", dist.Bernoulli(probs=0.5))
    mu = ppl.sample("mu", dist.Normal(jnp.where(z == 1, 3.0, -3.0), 1.0))
    ppl.observe("y", dist.Normal(mu, 1.0), y)


@ppl.model
def drifting_walk(ys):
    drift = ppl.sample("drift", dist.Normal(0.0, 1.0))

    def step(x, y):
        x = ppl.sample("x", dist.Normal(x + drift, 1.0))
        ppl.observe("y", dist.Normal(x, 0.5), y)
        return x, x

    return ppl.scan(step, 0.0, ys)


Y = jnp.array([0.3, -0.2, 0.5])
SHORT = dict(num_samples=20, num_warmup=20, num_chains=2)  # 40 draws: ESS below 200 for sure


def _here():
    return inspect.currentframe().f_back.f_lineno


@pytest.mark.parametrize("method", [ppl.MH(**SHORT), ppl.Gibbs(**SHORT), ppl.NUTS(**SHORT),
                                    pytest.param(ppl.HMC(**SHORT), marks=pytest.mark.slow),  # NUTS's code path
                                    ppl.PMMH(**SHORT, num_particles=20)],
                         ids=["MH", "Gibbs", "NUTS", "HMC", "PMMH"])
def test_every_mcmc_method_warns_and_points_at_the_users_call(method):
    model = {"Gibbs": coin_and_mean, "PMMH": drifting_walk}.get(type(method).__name__, two_means)
    line = _here() + 1
    post, got = record(lambda: ppl.infer(model, Y, method=method, seed=0))
    assert got, f"{type(method).__name__} gave no SamplingWarning on 40 draws"
    assert any("effective sample size below 200" in str(w.message) for w in got)
    for w in got:
        assert w.filename == __file__, w.filename  # the user's file, not ppl/api.py
        assert w.lineno == line
    assert post.result.chains


def test_mh_on_a_regression_warns_about_mixing_and_acceptance():
    """The issue's case, smaller: single-site MH with prior proposals on a tight posterior."""
    post, got = record(lambda: ppl.infer(two_means, Y, method=ppl.MH(**SHORT), seed=1))
    text = [str(w.message) for w in got]
    assert any(t.startswith("the mean acceptance rate of MH") for t in text), text
    assert any(t.startswith("effective sample size") for t in text), text
    assert float(np.mean(post.sample_stats["accept_prob"])) < checks.MIN_ACCEPTANCE


# --------------------------------------------------------------------------- advice where the user is

COIN = "model coin(flips: int[]) {\n  p ~ beta(1, 1)\n  flips ~ bernoulli(p)\n  return p\n}\n"


def test_the_cli_advises_its_own_flags(tmp_path, capsys):
    from ppl.cli import main

    path = tmp_path / "coin.ppl"
    path.write_text("flips = [1, 1, 0, 1]\n" + COIN)
    code = main(["run", str(path), "--method", "gibbs", "--num-samples", "20", "--num-warmup", "20",
                 "--num-chains", "2"])
    err = capsys.readouterr().err
    assert code == 0 and "effective sample size below 200" in err, err
    assert "--num-samples 4000" in err and "ppl.Gibbs(" not in err


def test_the_repl_advises_its_own_options():
    import io

    from ppl import repl as R

    out = io.StringIO()
    R.run_repl(io.StringIO(COIN + ":infer coin [1, 1, 0, 1] method=gibbs samples=20 warmup=20 chains=2\n"), out)
    text = out.getvalue()
    assert "warning: effective sample size below 200" in text and ":infer ... samples=4000" in text, text


def test_the_advice_to_give_initial_values_says_how():
    from ppl.inference.mcmc.init import _init_advice

    assert _init_advice() == 'ppl.NUTS(init={"site": value, ...})'
    assert how_to_set("NUTS", "init", "FILE.json", "cli") == "--init FILE.json"


def test_the_warning_class_is_public():
    assert ppl.SamplingWarning is SamplingWarning and issubclass(SamplingWarning, UserWarning)


@ppl.model
def flaky(x):
    broken = ppl.sample("broken", dist.Bernoulli(probs=0.1))
    if broken == 1:  # a Python `if` on a random value: a dynamic model, run by the eager engine
        y = ppl.sample("y", dist.Normal(0.0, 10.0))
    else:
        y = ppl.sample("y", dist.Normal(x, 1.0))
    ppl.observe("obs", dist.Normal(y, 0.1), x)
    return y


def test_mh_on_a_dynamic_model_runs_the_same_checks():
    line = _here() + 1
    post, got = record(lambda: ppl.infer(flaky, 2.0, method=ppl.MH(num_samples=10, num_warmup=5, num_chains=2)))
    assert post.engine == "eager"
    assert any("effective sample size below 200" in str(w.message) for w in got), [str(w.message) for w in got]
    assert all(w.filename == __file__ and w.lineno == line for w in got)
