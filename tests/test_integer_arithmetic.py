"""Integer arithmetic in ``.ppl`` means what Python (and Stan) say, or is refused: never the silently
different value of 32-bit JAX integers (a wrapped product, a truncated store, a power of 0)."""

import jax
import numpy as np
import pytest

import ppl
from ppl.stdlib.errors import ModelError


def returned(src: str, *args):
    post = ppl.infer(ppl.loads(src).m, *args, method=ppl.Enumerate())
    return post.probs()


def test_an_int_array_given_a_real_becomes_real_not_truncated():
    probs = returned("model m() {\n  a = [0, 0, 0]\n  for i in 0..3 { a[i] = 0.5 * i }\n  a[0] = 0.25\n"
                     "  return a\n}")
    (value,) = probs
    np.testing.assert_allclose(np.asarray(value), [0.25, 0.5, 1.0])


def test_an_integer_to_a_negative_power_is_a_real():
    probs = returned("model m() {\n  k ~ bernoulli(0.5)\n  return 2 ^ (k - 1)\n}")
    assert {float(v): p for v, p in probs.items()} == pytest.approx({0.5: 0.5, 1.0: 0.5})
    assert {float(v) for v in returned("model m() { return 2 ^ -2 ^ 2 }")} == {0.0625}
    assert {int(v) for v in returned("model m() { return 3 ^ 2 }")} == {9}
    assert ppl.syntax.check(ppl.syntax.parse("model m() { for i in 0..2 ^ 3 { } }", "t.ppl")) == []


@pytest.mark.parametrize("src, args, words", [
    ("model m(n: int) {\n  return n ^ 3\n}", (2000,), "'n ^ 3' is 8e+09, which does not fit in a 32-bit integer"),
    ("model m(n: int) {\n  return n * n\n}", (100000,), "'n * n' is 1e+10"),
    ("model m() {\n  return 100000 * 100000\n}", (), "does not fit in a 32-bit integer"),
    ("model m() {\n  return 2147483647 + 1\n}", (), "'2147483647 + 1' is 2.14748e+09"),
    ("model m() {\n  return 7 // 0\n}", (), "integer division by zero in '7 // 0'"),
    ("model m(d: int) {\n  return 7 % d\n}", (0,), "integer remainder by zero"),
])
def test_integer_results_that_32_bits_cannot_hold_are_refused_at_their_line(src, args, words):
    with pytest.raises(ModelError) as err:
        returned(src, *args)
    assert words in str(err.value)
    assert err.value.span is not None and err.value.span.line == 2


def test_a_loop_bound_that_is_not_a_whole_number_is_refused():
    """for i in 0..N with N = 3.5 from the data ran 3 times, without a word."""
    src = "model m(N) {\n  s = 0\n  for i in 0..N { s = s + 1 }\n  return s\n}"
    with pytest.raises(ModelError) as err:
        returned(src, 3.5)
    assert "a loop bound must be a whole number, but 'N' is 3.5" in str(err.value)
    assert err.value.span.line == 3
    assert {int(v) for v in returned(src, 3.0)} == {3}



def test_to_int_of_a_known_value_integers_cannot_hold_is_an_error():
    """to_int(3e9) was -2147483648 (and NaN 0), with only NumPy's RuntimeWarning."""
    model = ppl.loads("model m() { return to_int(3000000000.0) }").m
    with pytest.raises(ppl.ModelError, match=r"to_int of 3e\+09: it is not a 32-bit integer"):
        model.simulate(jax.random.key(0))
    assert np.asarray(ppl.loads("model m() { return to_int([1.5, -2.5]) }").m.simulate(
        jax.random.key(0)).retval).tolist() == [1, -2]


def test_narrow_integer_data_is_read_as_integers_that_do_not_wrap():
    """uint8 data kept its 8 bits: 200 * 2 was 144."""
    model = ppl.loads("model m(x) { return x * 2 }").m
    assert np.asarray(model.simulate(jax.random.key(0), np.array([200, 3], np.uint8)).retval).tolist() == [400, 6]
