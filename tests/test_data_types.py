"""Data against a ``.ppl`` model's declared types (``ppl.syntax.data_check``), on every path:
``ppl check --data``, ``ppl run --data``, a loaded model called from Python, the REPL's
``:infer`` and the checker's ``data_shapes``. A value an annotation does not allow (0.5 for an
``int[]``, a single number for an array, booleans for ``real[]``) is an error naming the
parameter, its type and the value — never truncated or silently reshaped. The goldens for the
checker's path are tests/errors/check_data_*.ppl; for a run, tests/errors_run/data_*.ppl.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ppl
from ppl import cli
from ppl import repl as R
from ppl.stdlib.errors import CheckError, ShapeError, SupportError
from ppl.syntax import check, parse
from ppl.syntax.data_check import DataError, check_data

COIN = """model coin(flips: int[]) {
  p ~ beta(1, 1)
  for i in 0..len(flips) {
    flips[i] ~ bernoulli(p)
  }
  return p
}
"""


def _params(src: str):
    return parse(src, "t.ppl").items[-1].params


def _messages(src: str, data: dict) -> list[str]:
    return [e.message for e in check_data(_params(src), data)]


# ---------------------------------------------------------------- the function itself

ACCEPTED = [
    ("model m(k: int[]) { }", {"k": [1.0, 0.0, 3]}),  # integral floats are integers
    ("model m(k: int[]) { }", {"k": np.array([1.0, 2.0])}),
    ("model m(k: int) { }", {"k": 4.0}),
    ("model m(y: real[]) { }", {"y": [1, 2.5]}),
    ("model m(b: bool[]) { }", {"b": [True, False, 1, 0]}),
    ("model m(X: real[,]) { }", {"X": [[1.0, 2.0], [3.0, 4.0]]}),
    ("model m(N: int, y: real[N]) { }", {"N": 2, "y": [1.0, 2.0]}),
    ("model m(y: real[]) { }", {"y": []}),
    ("model m(y) { }", {"y": "anything"}),  # no annotation: nothing to check
    ("model m(k: int[]) { }", {"k": np.array([2**31 - 1, -(2**31)])}),
]


@pytest.mark.parametrize("src, data", ACCEPTED)
def test_accepts_data_that_fit(src, data):
    assert _messages(src, data) == []


REJECTED = [
    ("model m(k: int[]) { }", {"k": [0.5, 1.0]}, "'k' is declared int[] but the data holds reals: element 0 is 0.5"),
    ("model m(k: int[]) { }", {"k": np.array([1.0, 1.9])}, "element 1 is 1.9 (not a whole number)"),
    ("model m(k: int[]) { }", {"k": 5}, "'k' is declared int[] (1 dimension) but the data is the single value 5"),
    ("model m(k: int) { }", {"k": 2.5}, "'k' is declared int but the data holds reals: the value is 2.5"),
    ("model m(k: int) { }", {"k": [1, 2]}, "'k' is declared int (0 dimensions) but the data has shape (2,)"),
    ("model m(k: int[]) { }", {"k": [True, False]}, "holds booleans: element 0 is true"),
    ("model m(k: int[]) { }", {"k": [1, float("nan")]}, "element 1 is nan (not a whole number)"),
    ("model m(k: int[]) { }", {"k": [1, 2**40]}, "integers too large for 32 bits: element 1 is 1099511627776"),
    ("model m(y: real[]) { }", {"y": 3.0}, "'y' is declared real[] (1 dimension) but the data is the single value 3.0"),
    ("model m(y: real[]) { }", {"y": [True, False]}, "'y' is declared real[] but the data holds booleans"),
    ("model m(y: real[]) { }", {"y": np.array([True])}, "holds booleans"),
    ("model m(y: real[]) { }", {"y": ["a", "b"]}, "holds strings: element 0 is 'a'"),
    ("model m(y: real[]) { }", {"y": [1.0, None]}, "holds missing values: element 1 is null"),
    ("model m(y: real[]) { }", {"y": {"a": 1}}, "the data is an object"),
    ("model m(y: real[]) { }", {"y": [[1.0], [2.0, 3.0]]}, "ragged"),
    ("model m(y: real) { }", {"y": "x"}, "holds strings"),
    ("model m(X: real[,]) { }", {"X": [1.0, 2.0]}, "(2 dimensions) but the data has shape (2,) (1 dimension)"),
    ("model m(X: int[,]) { }", {"X": [[1, 2], [3, 4.5]]}, "element 1, 1 is 4.5"),
    ("model m(b: bool) { }", {"b": 2}, "'b' is declared bool but the data holds numbers other than 0 and 1"),
    ("model m(b: bool[]) { }", {"b": [0.5]}, "numbers other than 0 and 1: element 0 is 0.5"),
    ("model m(N: int, y: real[N]) { }", {"N": 3, "y": [1.0, 2.0]}, "'y' is declared with size N = 3, but the data has 2"),
    ("model m(y: real[3]) { }", {"y": [1.0, 2.0]}, "'y' is declared with size 3, but the data has 2"),
    ("model m(N: int, X: real[N, 2]) { }", {"N": 2, "X": [[1.0, 2.0, 3.0]] * 2},
     "'X' is declared with size 2 in dimension 2, but the data has 3"),
]


@pytest.mark.parametrize("src, data, words", REJECTED)
def test_rejects_data_that_do_not_fit(src, data, words):
    got = " || ".join(_messages(src, data))
    assert words in got, got


def test_errors_point_at_the_parameter_and_can_be_caught_as_support_or_shape_errors():
    (err,) = check_data(_params("model m(a: real,\n        k: int[]) { }"), {"k": [0.5]})
    assert (err.span.line, err.span.column) == (2, 9)
    assert isinstance(err, DataError) and isinstance(err, SupportError) and isinstance(err, ShapeError)
    assert isinstance(err, CheckError) and err.render().startswith("Data error in 't.ppl', line 2")


def test_the_checker_reads_the_same_rules():
    """``check(module, data_shapes)``: integral floats are integers there too; 0.5 is not."""
    module = parse(COIN, "coin.ppl")
    assert check(module, {"flips": [1.0, 0.0]}) == []
    (err,) = check(module, {"flips": [1.0, 0.5]})
    assert "element 1 is 0.5" in err.message and err.span.line == 1
    assert check(module, {"flips": (10,)}) == []  # a shape tuple is a shape, not data


# ---------------------------------------------------------------- the paths that run it


def test_python_calls_of_a_loaded_model_check_the_data(tmp_path):
    (tmp_path / "coin.ppl").write_text(COIN)
    coin = ppl.load(tmp_path / "coin.ppl").coin
    with pytest.raises(DataError, match=r"'flips' is declared int\[\] but the data holds reals: element 0 is 0.5"):
        ppl.infer(coin, [0.5, 1.0, 1.0])
    with pytest.raises(SupportError):  # what the Python front end raises for the same value
        coin.simulate(jax.random.key(0), [0.5, 1.0])
    with pytest.raises(DataError, match="single value 5"):
        coin.log_density({"p": 0.5}, 5)
    with pytest.raises(DataError):
        coin.condition({"p": 0.3}).simulate(jax.random.key(0), [2.5])
    # whole numbers written as floats are the same data as integers: the exact Bernoulli density
    lp = float(coin.log_density({"p": 0.25}, [1.0, 1.0, 0.0]))
    assert lp == pytest.approx(2 * np.log(0.25) + np.log(0.75), rel=1e-6)


@pytest.fixture
def coin_file(tmp_path):
    path = tmp_path / "coin.ppl"
    path.write_text(COIN)
    return path


@pytest.mark.parametrize("content, suffix, words", [
    ({"flips": 5}, ".json", "the data is the single value 5"),
    ({"flips": [0.5, 1.0]}, ".json", "element 0 is 0.5"),
    ("flips\n1\n1.9\n0\n", ".csv", "element 1 is 1.9"),
    ({"flips": [True, False]}, ".json", "holds booleans"),
])
def test_ppl_check_and_run_with_data_report_the_mismatch(coin_file, tmp_path, capsys, content, suffix, words):
    data = tmp_path / f"d{suffix}"
    data.write_text(content if isinstance(content, str) else json.dumps(content))
    for command in ("check", "run"):
        assert cli.main([command, str(coin_file), "--data", str(data)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"Data error in '{coin_file}', line 1") and words in err, err
        assert "Traceback" not in err and "tuple index" not in err


def test_ppl_check_with_data_finds_an_index_outside_the_data(coin_file, tmp_path, capsys):
    path = tmp_path / "m.ppl"
    path.write_text("model m(y: real[]) {\n  mu ~ normal(0, 1)\n  for i in 1..len(y)+1 {\n    y[i] ~ normal(mu, 1)\n  }\n}\n")
    data = tmp_path / "y.json"
    data.write_text(json.dumps({"y": [1.0, 2.0, 3.0]}))
    assert cli.main(["check", str(path), "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Index error in") and "line 4" in err and "index 3 is out of range for 'y'" in err
    good = tmp_path / "ok.json"
    good.write_text(json.dumps({"flips": [1, 0, 1.0]}))
    assert cli.main(["check", str(coin_file), "--data", str(good)]) == 0
    assert "ok" in capsys.readouterr().out


def test_the_repl_infer_checks_the_data():
    s = R.Session()
    s.add(COIN)
    with pytest.raises(DataError, match="single value 5"):
        s.infer(["coin", "5"])
    with pytest.raises(DataError, match="element 1 is 0.5"):
        s.infer(["coin", "[1, 0.5]", "method=importance"])


# ---------------------------------------------------------------- the property

_LEAF = st.one_of(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 1)),
                  st.booleans())


@st.composite
def _data(draw):
    rank = draw(st.integers(0, 2))
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=rank, max_size=rank)))
    if 0 in shape:  # a nested list has no axes after an empty one: [] is (0,), [[], []] is (2, 0)
        shape = shape[: shape.index(0) + 1]
    flat = draw(st.lists(_LEAF, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    value = np.array(flat, dtype=object).reshape(shape).tolist() if shape else flat[0]
    return value, shape, flat


def _kind_ok(base: str, x) -> bool:
    if isinstance(x, bool):
        return base == "bool"
    if base == "real":
        return True
    if base == "bool":
        return x in (0, 1)
    return float(x).is_integer()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_data(), st.sampled_from(["int", "real", "bool"]), st.integers(0, 2))
def test_property_data_are_read_exactly_or_reported(data, base, rank):
    """Random data shapes and element kinds against a random annotation: the model sees the
    very values given (no truncation, no reshaping) or the call fails naming the parameter."""
    value, shape, flat = data
    ann = base + ("" if rank == 0 else "[" + "," * (rank - 1) + "]")
    m = list(ppl.loads(f"model m(x: {ann}) {{\n  u ~ normal(0, 1)\n  return x\n}}", "t.ppl").models.values())[0]
    fits = len(shape) == rank and all(_kind_ok(base, x) for x in flat)
    if not fits:
        with pytest.raises(DataError) as info:
            m.simulate(jax.random.key(0), value)
        assert "'x' is declared" in info.value.message and info.value.span.line == 1
        return
    got = np.asarray(m.simulate(jax.random.key(0), value).retval)
    want = np.array(flat, dtype=np.float64).reshape(shape)
    assert got.shape == shape
    np.testing.assert_array_equal(got, want.astype(got.dtype))  # reals in the engine's float width
