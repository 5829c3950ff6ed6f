"""Checked indexing in both front ends: an index outside its array is an error at the user's
text, never a clamped value (JAX's gather semantics) — checked when the model is traced where
the index is known then, and when it runs otherwise (a NaN density that the methods report by
replaying the draw eagerly, where the index raises).

Golden cases: tests/errors_run/NAME.ppl (``# data:`` first line) run by importance sampling must
fail exactly as NAME.expected says; ``python tests/test_checked_index.py --regen`` rewrites them.
"""

from __future__ import annotations

import inspect
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import ppl
from ppl import dist
from ppl.semantics import compile as C
from ppl.semantics import index_check, ir
from ppl.semantics.index_check import IndexRangeError
from ppl.stdlib.errors import PPLError

RUN = pathlib.Path(__file__).parent / "errors_run"
CASES = sorted(p.stem for p in RUN.glob("*.ppl"))
Y = [1.0, 2.0, 3.0]


def run_golden(name: str) -> str:
    """What running tests/errors_run/NAME.ppl on its data says."""
    text = (RUN / f"{name}.ppl").read_text(encoding="utf-8")
    data = json.loads(text.splitlines()[0][len("# data:"):])
    try:
        module = ppl.loads(text, f"{name}.ppl")
        model = list(module.models.values())[-1]
        ppl.infer(model, *[data[p] for p in model.param_names], method=ppl.Importance(num_particles=200),
                  seed=0)
    except PPLError as err:
        return err.render()
    return "no error"


def test_there_are_enough_run_cases():
    assert len(CASES) >= 15


@pytest.mark.parametrize("name", CASES)
def test_run_golden(name):
    expected = (RUN / f"{name}.expected").read_text(encoding="utf-8")
    got = run_golden(name)
    assert got != "no error", f"{name}.ppl is expected to fail but ran"
    assert got + "\n" == expected, f"\n--- got ---\n{got}\n--- expected ---\n{expected}"
    head = got.splitlines()[0]
    assert head.startswith(("Index error in '", "Data error in '")) and f"'{name}.ppl', line " in head
    assert "^" in got and " | " in got  # the user's text, with a caret under the place


# --------------------------------------------------------------- the .ppl front end, by hand


def _ppl(src: str):
    return list(ppl.loads(src, "t.ppl").models.values())[-1]


def test_the_issue_cases_raise_before_anything_runs():
    """Loop bounds from the data's length: known when the model is traced, so no draw is made."""
    plus_one = _ppl("model m(y: real[]) {\n  mu ~ normal(0, 10)\n  for i in 1..len(y)+1 { y[i] ~ normal(mu, 1) }\n}")
    with pytest.raises(IndexRangeError, match=r"index 3 is out of range for 'y', which has 3 elements") as info:
        plus_one.ir(Y)
    assert (info.value.span.line, info.value.span.column) == (3, 26)
    ret = _ppl("model m(y: real[]) {\n  mu ~ normal(0, 10)\n  return y[5]\n}")
    with pytest.raises(IndexRangeError, match="index 5 is out of range"):
        ret.simulate(jax.random.key(0), Y)


def test_in_range_and_negative_indices_give_the_exact_density():
    """y[-1] is y[2] (NumPy's rule, documented); every in-range index reads its own element."""
    m = _ppl("model m(y: real[]) {\n  mu ~ normal(0, 10)\n"
             "  for i in -3..3 { y[i] ~ normal(mu, 1) }\n}")
    mu = 0.7
    want = stats.norm(0, 10).logpdf(mu) + 2 * stats.norm(mu, 1).logpdf(Y).sum()
    assert float(m.log_density({"mu": mu}, Y)) == pytest.approx(want, rel=1e-5)


def test_a_scan_loop_over_its_loop_variable_is_checked_for_every_step_when_traced():
    """Carried state makes the loop a scan; an index computed from the loop variable (and
    constants) is evaluated for all steps at once when the model is traced."""
    m = _ppl("model m(y: real[]) {\n  mu ~ normal(0, 10)\n  s = 0.0\n  for i in 0..len(y) {\n"
             "    s = s + y[2 * i]\n  }\n  observe s ~ normal(mu, 1)\n}")
    with pytest.raises(IndexRangeError, match="index 4 is out of range for 'y'") as info:
        m.ir(Y)
    assert info.value.span.line == 5
    ok = _ppl("model m(y: real[]) {\n  mu ~ normal(0, 10)\n  s = 0.0\n  for i in 0..len(y) {\n"
              "    s = s + y[len(y) - 1 - i]\n  }\n  observe s ~ normal(mu, 1)\n}")
    program = ok.ir(Y)
    assert not any(isinstance(s, ir.Prim) and s.check_index for s in ir.walk(program.block.stmts))


def test_a_scan_loop_is_checked_when_it_runs():
    """An index carried by the loop is known only inside the compiled loop: checked as it runs."""
    m = _ppl("model m(y: real[]) {\n  mu ~ normal(0, 10)\n  s = 0.0\n  j = 0\n  for i in 0..len(y)+1 {\n"
             "    s = s + y[j]\n    j = j + 1\n  }\n  observe s ~ normal(mu, 1)\n}")
    program = m.ir(Y)
    checked = [s for s in ir.walk(program.block.stmts) if isinstance(s, ir.Prim) and s.check_index]
    assert len(checked) == 1 and checked[0].span.line == 6
    # compiled: a NaN density and an invalid trace, not the clamped sum 1 + 2 + 3 + 3
    trace = C.simulate(program, jax.random.key(0), [jnp.asarray(Y)])
    assert not bool(trace.valid) and np.isnan(float(trace.log_joint))
    assert np.isnan(float(m.log_density({"mu": 0.0}, Y)))
    with pytest.raises(IndexRangeError) as info:
        ppl.infer(m, Y, method=ppl.Importance(num_particles=20))
    assert info.value.span.line == 6 and "index 3 is out of range for 'y'" in info.value.message
    # the same loop in range: the exact density
    ok = _ppl("model m(y: real[]) {\n  mu ~ normal(0, 10)\n  s = 0.0\n  j = 0\n  for i in 0..len(y) {\n"
              "    s = s + y[j]\n    j = j + 1\n  }\n  observe s ~ normal(mu, 1)\n}")
    want = stats.norm(0, 10).logpdf(0.5) + stats.norm(0.5, 1).logpdf(6.0)
    assert float(ok.log_density({"mu": 0.5}, Y)) == pytest.approx(want, rel=1e-5)


def test_nuts_reports_the_index_and_its_line():
    m = _ppl("model m(y: real[], g: int[]) {\n  theta ~ iid(normal(0, 1), 2)\n  for n in 0..len(y) {\n"
             "    y[n] ~ normal(theta[g[n]], 1)\n  }\n}")
    with pytest.raises(IndexRangeError) as info:
        ppl.infer(m, Y, [0, 1, 2], method=ppl.NUTS(num_warmup=10, num_samples=10, num_chains=1))
    assert info.value.span.line == 4 and "'theta', which has 2 elements" in info.value.message


def test_a_guarded_index_in_an_if_expression_is_not_an_error():
    """Both branches of an if-expression on a run-time value are evaluated; the guard decides."""
    m = _ppl("model m(y: real[]) {\n  mu ~ normal(0, 10)\n  s = 0.0\n  for i in 0..len(y)+1 {\n"
             "    s = s + (if i < len(y) then y[i] else 0.0)\n  }\n  observe s ~ normal(mu, 1)\n}")
    want = stats.norm(0, 10).logpdf(0.5) + stats.norm(0.5, 1).logpdf(6.0)
    assert float(m.log_density({"mu": 0.5}, Y)) == pytest.approx(want, rel=1e-5)


def test_a_guarded_index_in_a_plate_is_not_an_error():
    """The same guard on a plate's index vector (both branches evaluated elementwise)."""
    m = _ppl("model m(y: real[]) {\n  mu ~ normal(0, 10)\n  for i in 0..len(y)+1 {\n"
             "    observe (if i < len(y) then y[i] else 0.0) ~ normal(mu, 1)\n  }\n}")
    want = stats.norm(0, 10).logpdf(0.5) + stats.norm(0.5, 1).logpdf(Y + [0.0]).sum()
    assert float(m.log_density({"mu": 0.5}, Y)) == pytest.approx(want, rel=1e-5)


def test_matrix_indices_name_their_dimension():
    m = _ppl("model m(X: real[,]) {\n  b ~ normal(0, 1)\n  return X[1, 2]\n}")
    with pytest.raises(IndexRangeError, match="index 2 is out of range for 'X', which has 2 elements in dimension 2"):
        m.ir([[1.0, 2.0], [3.0, 4.0]])
    assert float(_ppl("model m(X: real[,]) {\n  b ~ normal(0, 1)\n  return X[-1, 0]\n}").simulate(
        jax.random.key(0), [[1.0, 2.0], [3.0, 4.0]]).retval) == 3.0


def test_a_dynamic_model_is_checked_in_the_eager_engine():
    """A loop bound drawn at random makes the model dynamic; the eager run checks its indices."""
    m = _ppl("model m(y: real[]) {\n  n ~ poisson(5)\n  s = 0.0\n  for i in 0..n+4 {\n    s = s + y[i]\n  }\n"
             "  return s\n}")
    assert not m.is_static(Y)
    with pytest.raises(IndexRangeError) as info:
        m.simulate(jax.random.key(1), Y)
    assert info.value.span.line == 5


def test_ppl_run_reports_the_index_and_runs_nothing(tmp_path, capsys):
    from ppl import cli

    path = tmp_path / "m.ppl"
    path.write_text("model m(y: real[]) {\n  mu ~ normal(0, 10)\n  for i in 0..len(y)+2 {\n"
                    "    y[i] ~ normal(mu, 1)\n  }\n}\n")
    data = tmp_path / "y.json"
    data.write_text(json.dumps({"y": Y}))
    assert cli.main(["run", str(path), "--data", str(data), "--method", "importance"]) == 1
    out = capsys.readouterr()
    assert out.err.startswith(f"Index error in '{path}', line 4, column 5")
    assert "index 3 is out of range for 'y'" in out.err and "Traceback" not in out.err
    assert "mean" not in out.out  # no summary of a wrong answer


# --------------------------------------------------------------- the Python front end


def _line(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


@ppl.model
def python_loop(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    for i in range(1, y.shape[0] + 1):
        ppl.observe(f"y{i}", dist.Normal(mu, 1.0), y[i])  # y[3] on the last pass
    return mu


def test_python_ints_out_of_range_raise_at_the_users_line():
    with pytest.raises(IndexRangeError) as info:
        python_loop.ir(jnp.asarray(Y))
    assert info.value.span.line == _line(python_loop.fn, "y[i])")
    assert "index 3 is out of range" in info.value.message and info.value.span.file == __file__


@ppl.model
def python_negative(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    ppl.observe("last", dist.Normal(mu, 1.0), y[-1])
    return y[-4]


def test_python_negative_indices_follow_numpy():
    with pytest.raises(IndexRangeError, match="index -4 is out of range") as info:
        python_negative.ir(jnp.asarray(Y))
    assert info.value.span.line == _line(python_negative.fn, "return y[-4]")


@ppl.model
def python_scan(y, stop):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))

    def step(carry, i):
        ppl.observe("y", dist.Normal(mu, 1.0), y[i])
        return carry, None

    ppl.scan(step, 0.0, jnp.arange(stop))
    return mu


def test_python_scan_indices_are_checked_when_the_model_runs():
    y = jnp.asarray(Y)
    with pytest.raises(IndexRangeError) as info:
        ppl.infer(python_scan, y, 4, method=ppl.Importance(num_particles=20))
    assert info.value.span.line == _line(python_scan.fn, "y[i])")
    want = stats.norm(0, 10).logpdf(0.2) + stats.norm(0.2, 1).logpdf(Y).sum()
    assert float(python_scan.log_density({"mu": 0.2}, y, 3)) == pytest.approx(want, rel=1e-5)


@ppl.model
def python_data_index(y, g):
    theta = ppl.sample("theta", dist.Normal(jnp.zeros(2), 1.0))
    with ppl.plate("n", y.shape[0]):
        ppl.observe("y", dist.Normal(theta[g], 1.0), y)


def test_python_data_indices_are_checked_at_run_time():
    y = jnp.asarray(Y)
    program = python_data_index.ir(y, jnp.array([0, 1, 1]))
    assert any(isinstance(s, ir.Prim) and s.check_index for s in ir.walk(program.block.stmts))
    theta = jnp.array([0.1, -0.4])
    ld = python_data_index.log_density({"theta": theta}, y, jnp.array([0, 1, 1]))
    want = stats.norm(0, 1).logpdf(theta).sum() + stats.norm([0.1, -0.4, -0.4], 1).logpdf(Y).sum()
    assert float(ld) == pytest.approx(want, rel=1e-5)
    assert np.isnan(float(python_data_index.log_density({"theta": theta}, y, jnp.array([0, 1, 2]))))
    with pytest.raises(IndexRangeError) as info:
        ppl.infer(python_data_index, y, jnp.array([0, 1, 2]), method=ppl.Importance(num_particles=20))
    assert info.value.span.line == _line(python_data_index.fn, "theta[g]")


def test_the_check_has_the_index_operations_arithmetic_right():
    """in_range against first_violation on dynamic_slice windows and gathers (numpy and jnp)."""
    x = np.zeros((4, 3))
    p = {"slice_sizes": (2, 3)}
    for start, ok in [(0, True), (2, True), (3, False), (-1, False)]:
        args = [x, np.int32(start), np.int32(0)]
        assert bool(index_check.in_range(jnp, "dynamic_slice", p, args)) is ok
        assert (index_check.first_violation("dynamic_slice", p, args) is None) is ok
    v = index_check.first_violation("dynamic_slice", p, [x, np.int32(3), np.int32(0)])
    assert "a slice of 2 elements starting at 3" in index_check.violation_message(v)


# --------------------------------------------------------------- the property


def _expected_indices(n, a, b, c):
    idx = [i + c for i in range(a, b)]
    return idx, all(-n <= j < n for j in idx)


LOOP = st.tuples(st.integers(1, 4), st.integers(-5, 4), st.integers(0, 6), st.integers(-5, 5),
                 st.booleans())


FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ppl_loop_case(loop, seed):
    """``for i in a..b { y[i + c] ~ normal(mu, 1) }`` on data of length n, as a plate (no carried
    state) or a scan (carried state): the exact density when every index is in range, else an
    IndexRangeError at the index — never a clamped value."""
    n, a, width, c, scan = loop
    b = a + width
    y = list(np.round(np.random.default_rng(seed).normal(size=n), 3))
    carry = "    s = s + 1.0\n" if scan else ""
    src = (f"model m(y: real[]) {{\n  mu ~ normal(0, 10)\n  s = 0.0\n  for i in {a}..{b} {{\n"
           f"{carry}    y[i + {c}] ~ normal(mu, 1)\n  }}\n}}")
    m = _ppl(src)
    idx, ok = _expected_indices(n, a, b, c)
    line = 6 if scan else 5
    if ok:
        want = stats.norm(0, 10).logpdf(0.3) + sum(stats.norm(0.3, 1).logpdf(y[j]) for j in idx)
        assert float(m.log_density({"mu": 0.3}, y)) == pytest.approx(want, rel=1e-4, abs=1e-4)
        return
    with pytest.raises(IndexRangeError) as info:
        ppl.infer(m, y, method=ppl.Importance(num_particles=10))
    assert info.value.span.line == line and "is out of range for 'y'" in info.value.message
    bad = next(j for j in idx if not -n <= j < n)
    assert f"index {bad} is out of range" in info.value.message


@FEW
@given(LOOP, st.integers(0, 2**16))
def test_property_ppl_loops_give_the_right_density_or_name_the_index(loop, seed):
    ppl_loop_case(loop, seed)


@pytest.mark.slow
@MANY
@given(LOOP, st.integers(0, 2**16))
def test_property_ppl_loops_many(loop, seed):
    ppl_loop_case(loop, seed)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.integers(-7, 7), st.sampled_from(["ppl", "python"]))
def test_property_literal_indices_read_their_element_or_fail(n, k, front):
    """``return y[k]`` in either front end: y[k] as NumPy reads it, or an error at the index."""
    y = [float(v) for v in range(10, 10 + n)]
    if front == "ppl":
        m = _ppl(f"model m(y: real[]) {{\n  mu ~ normal(0, 1)\n  return y[{k}]\n}}")
    else:
        def body(y):
            ppl.sample("mu", dist.Normal(0.0, 1.0))
            return y[k]
        m = ppl.model(body)
    arg = y if front == "ppl" else jnp.asarray(y)
    if -n <= k < n:
        assert float(m.simulate(jax.random.key(0), arg).retval) == y[k]
        return
    with pytest.raises(IndexRangeError) as info:
        m.simulate(jax.random.key(0), arg)
    assert f"index {k} is out of range" in info.value.message
    assert info.value.span.line == (3 if front == "ppl" else _line(body, "return y[k]"))


def python_scan_case(n, length, c):
    """The same loop as a ``ppl.scan`` in Python, indexing ``y[i + c]`` with a traced ``i``."""
    y = np.round(np.linspace(-1, 1, n), 3)

    def body(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 10.0))

        def step(carry, i):
            ppl.observe("y", dist.Normal(mu, 1.0), y[i + c])
            return carry, None

        ppl.scan(step, 0.0, jnp.arange(length))
        return mu

    m = ppl.model(body)
    idx, ok = _expected_indices(n, 0, length, c)
    if ok:
        want = stats.norm(0, 10).logpdf(0.3) + sum(stats.norm(0.3, 1).logpdf(y[j]) for j in idx)
        assert float(m.log_density({"mu": 0.3}, jnp.asarray(y))) == pytest.approx(want, rel=1e-4, abs=1e-4)
        return
    with pytest.raises(IndexRangeError) as info:
        ppl.infer(m, jnp.asarray(y), method=ppl.Importance(num_particles=10))
    assert info.value.span.line == _line(body, "y[i + c])")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.integers(1, 5), st.integers(-4, 4))
def test_property_python_scans_give_the_right_density_or_name_the_index(n, length, c):
    python_scan_case(n, length, c)


@pytest.mark.slow
@MANY
@given(st.integers(1, 4), st.integers(1, 5), st.integers(-4, 4))
def test_property_python_scans_many(n, length, c):
    python_scan_case(n, length, c)


def _regen() -> None:
    for name in CASES:
        (RUN / f"{name}.expected").write_text(run_golden(name) + "\n", encoding="utf-8")
        print(f"wrote {name}.expected")


if __name__ == "__main__":
    if "--regen" in sys.argv:
        _regen()
    else:
        for case in CASES:
            print(f"=== {case}\n{run_golden(case)}\n")
