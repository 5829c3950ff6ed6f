"""A mistake in a Python model is one error at the user's line: no internal ``ModelError`` chained
before it ("The above exception was the direct cause ..."), no internal frames in its traceback."""

from __future__ import annotations

import inspect
import pathlib
import traceback

import jax.numpy as jnp
import pytest

import ppl
from ppl import dist

PACKAGE_DIRS = [pathlib.Path(p).resolve() for p in (*ppl.__path__, *ppl.inference.__path__,
                                                       *ppl.semantics.__path__, *ppl.stdlib.__path__)]


@ppl.model
def negative_scale():
    s = ppl.sample("s", dist.Normal(0.0, 1.0))
    ppl.sample("x", dist.Normal(s, -1.0))


@ppl.model
def half_a_coin(y):
    p = ppl.sample("p", dist.Beta(1.0, 1.0))
    ppl.observe("y", dist.Bernoulli(probs=p), y)


def line_of(model, text):
    lines, start = inspect.getsourcelines(model.fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def internal_frames(err):
    frames = traceback.extract_tb(err.__traceback__)
    return [f for f in frames if pathlib.Path(f.filename).resolve().parent in PACKAGE_DIRS
            and not f.filename.endswith("api.py")]


@ppl.model
def float_index(y, g):
    th = ppl.sample("th", dist.Normal(jnp.zeros(3), 1.0))
    ppl.observe("y", dist.Normal(th[g], 1.0), y)


QUICK = dict(num_warmup=20, num_samples=20, num_chains=2)
CASES = [
    (negative_scale, (), ppl.ParameterError, 'ppl.sample("x"', "scale must be a positive"),
    (half_a_coin, (jnp.array([0.5, 1.0]),), ppl.SupportError, 'ppl.observe("y"', "outside the support"),
    (float_index, (jnp.array([1.0, 2.0]), jnp.array([0.0, 1.7])), ppl.ModelError, "th[g]", "Indexer must have"),
]


@pytest.mark.parametrize("method", [None, ppl.NUTS(**QUICK), ppl.MH(**QUICK), ppl.Importance(num_particles=50)],
                         ids=["default", "NUTS", "MH", "Importance"])
@pytest.mark.parametrize("case", CASES, ids=["parameter", "support", "jax-error"])
def test_one_error_at_the_users_line(case, method):
    model, args, kind, where, words = case
    with pytest.raises(kind) as info:
        ppl.infer(model, *args, method=method)
    err = info.value
    assert err.__cause__ is None and err.__suppress_context__
    text = str(err)
    assert f"'{__file__}', line {line_of(model, where)}" in text and words in text
    assert err.span.file == __file__ and err.span.line == line_of(model, where)
    assert internal_frames(err) == []  # the user's call and ppl.infer, nothing from inside the samplers


def test_the_printed_report_is_short(monkeypatch):
    monkeypatch.delenv("PPL_DEBUG", raising=False)
    with pytest.raises(ppl.ParameterError) as info:
        ppl.infer(negative_scale, method=ppl.Importance(num_particles=50))
    printed = "".join(traceback.format_exception(info.value))
    assert "direct cause" not in printed and "During handling" not in printed
    assert len(printed.splitlines()) < 15, printed
