"""The checker: programs it must accept, mistakes it must find (with the right words)."""

from __future__ import annotations

import numpy as np
import pytest

from ppl.stdlib.errors import CheckError, PPLError
from ppl.syntax import CheckErrors, check, parse
from ppl.syntax.check import raise_if_errors


def errors_of(src: str, data: dict | None = None) -> list[CheckError]:
    return check(parse(src, "t.ppl"), data)


def messages(src: str, data: dict | None = None) -> list[str]:
    return [e.message + (" | " + e.hint if e.hint else "") for e in errors_of(src, data)]


# ------------------------------------------------------------------ accepted

CLEAN = {
    "carried state": """model ssm(ys: real[]) {
  x = 0.0
  for t in 0..len(ys) {
    x ~ normal(0.9 * x, 1)
    ys[t] ~ normal(x, 0.5)
  }
}""",
    "branches bind the same name": """model m() {
  if flip(0.5) { s = 1.0 } else { s = 2.0 }
  x ~ normal(0, s)
}""",
    "a branch that returns binds nothing": """def f(c) {
  if c { return 0 } else { y = 3 }
  return y
}""",
    "same address in two branches": """model m() {
  if flip(0.3) { x ~ normal(0, 1) } else { x ~ normal(5, 1) }
  return x
}""",
    "collected after the loop": """model m(J: int, y: real[J]) {
  for j in 0..J {
    theta[j] ~ normal(0, 1)
    z ~ normal(theta[j], 1)
    y[j] ~ normal(z, 1)
  }
  total = sum(theta) + sum(z)
  first = theta[0] + z[0]
}""",
    "nested loops collect a matrix": """model m(N: int, K: int) {
  for i in 0..N {
    for k in 0..K {
      u[i, k] ~ normal(0, 1)
    }
  }
  a = u[0, 1]
}""",
    "a model called twice under two names": """model coin_prior() {
  p ~ beta(1, 1)
  return p
}
model two(a: int[], b: int[]) {
  p1 = coin_prior()
  p2 = coin_prior()
  a ~ bernoulli(p1)
  b ~ bernoulli(p2)
}""",
    "closures, mem, map, fold": """model m(xs: real[]) {
  scale ~ half_normal(1)
  shift = fn(x) => x * scale
  noise = mem(fn(i) => sample(normal(0, scale)))
  ys = map(shift, xs)
  total = fold(fn(acc, x) => acc + x, 0.0, ys)
  e = noise(3) + noise(3)
  g = fn(v) {
    w = v + 1
    return w * scale
  }
  factor(-g(total) ^ 2 + e)
}""",
    "recursion": """def geometric(p) {
  if flip(p) { return 0 }
  return 1 + geometric(p)
}
model m() {
  n = geometric(0.3)
  condition(n > 2)
  return n
}""",
    "strings and comparisons": """model m() {
  team = ['alice', 'bob']
  winner = if flip() then team[0] else team[1]
  condition(winner == 'alice')
}""",
    "index update and slices": """model m(N: int, y: real[N]) {
  nu = zeros(N)
  nu[0] = y[0]
  for t in 1..N {
    nu[t] = 0.5 * nu[t - 1] + y[t]
  }
  head = nu[0:2]
  tail = y[1:]
  X = [[1.0, 2.0], [3.0, 4.0]]
  col = X[:, 1]
  mu ~ normal(0, 1)
  observe nu[1:] ~ normal(mu, 1)
}""",
    "matrix algebra": """model m(N: int, D: int, X: real[N, D], y: real[N]) {
  beta ~ iid(normal(0, 1), D)
  L = cholesky(add_diag(X @ transpose(X), 1.0))
  y ~ multi_normal_cholesky(X @ beta, L)
  s = dot(beta, beta) + sum(diag(eye(D)))
}""",
    "data constant used by a model": """let flips = [1, 0, 1, 1]
let n = len(flips)
model coin() {
  p ~ beta(1, 1)
  for i in 0..n {
    flips[i] ~ bernoulli(p)
  }
}""",
    "flat priors of every kind": """model m(K: int) {
  a ~ flat(real)
  b ~ flat(positive, 3)
  c ~ flat(interval(0, 1))
  d ~ flat(interval(0, 1 - c))
  e ~ flat(simplex, K)
  f ~ flat(ordered, 2)
  g ~ flat(positive_ordered, 2)
  h ~ flat(greater_than(a), 2)
  i ~ flat(lower_cholesky, 3, 3)
}""",
    "observe and factor on computed values": """model m(y: real[]) {
  mu ~ normal(0, 1)
  observe mean(y) - mu ~ normal(0, 1)
  factor(sum(log_density(normal(mu, 1), y)))
}""",
    "shadowing a distribution name with a def": """def geometric(p) {
  return if flip(p) then 0 else 1 + geometric(p)
}
model m() { k = geometric(0.5) }""",
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_accepts(name):
    assert messages(CLEAN[name]) == []


def test_accepts_matching_data_in_every_form():
    src = "model m(N: int, y: real[N], X: real[N, 2], k: int[N], flag: bool) { }"
    data = {"N": 3, "y": [1.0, 2.0, 3.0], "X": np.zeros((3, 2)), "k": np.arange(3), "flag": True}
    assert messages(src, data) == []
    assert messages(src, {"N": (), "y": (3,), "X": (3, 2)}) == []


# ------------------------------------------------------------------ rejected

REJECTED = [
    ("model m() { x ~ normal(0, sigam) }", ["'sigam' is not defined"]),
    ("model m() { sigma ~ half_normal(1); x ~ normal(0, sigam) }", ["Did you mean 'sigma'?"]),
    ("model m() { x ~ Normal(0, 1) }", ["unknown distribution 'Normal'", "Did you mean 'normal'?"]),
    ("model m() { x ~ normall(0, 1) }", ["unknown distribution 'normall'"]),
    ("model m() { x ~ normal(0) }", ["normal() takes 2 arguments, but 1 was given"]),
    ("model m() { x ~ bernoulli(0.1, 0.2) }", ["bernoulli() takes 1 argument, but 2 were given"]),
    ("def f(a, b) { return a }\nmodel m() { x = f(1) }", ["f() takes 2 arguments (defined on line 1)"]),
    ("model sub(a) { }\nmodel m() { x = sub() }", ["sub() takes 1 argument"]),
    ("model m() { g = fn(a) => a; x = g(1, 2) }", ["g() takes 1 argument, but 2 were given"]),
    ("model m() { x = exp() }", ["exp() takes 1 argument, but 0 were given"]),
    ("model m() { x = zeros(2.5) }", ["zeros() expects an integer as its first argument, found a real number"]),
    ("model m() { x = exp('a') }", ["exp() expects a number or an array as its first argument, found a string"]),
    ("model m() { x = sample(3) }", ["sample() expects a distribution"]),
    ("model m() { mu ~ normal(0, 1); x = mu[0] }", ["'mu' is a real number; it cannot be indexed"]),
    ("model m(y: real[]) { x = y[0, 1] }", ["'y' has 1 dimension but is indexed with 2 indices"]),
    ("model m(y: real[]) { x = y[0.5] }", ["an index must be an integer, found a real number"]),
    # NumPy reads a boolean index as a mask: x[true] was all of x (a new axis), x[false] none of it
    ("model m() { b = flip(0.5); x = [0.0, 3.0][b] }", ["an index must be an integer, found a boolean", "to_int(b)"]),
    ("model m(y: real[], g: bool[]) { for i in 0..len(y) { y[i] ~ normal([0.0, 9.0][g[i]], 1) } }",
     ["an index must be an integer, found a boolean"]),
    ("model m(X: real[,]) { for i in 0..X[0] { } }",
     ["a loop bound must be an integer, but X[0] is an array of reals", "Did you mean X[0, j]?"]),
    ("model m(N: real) { for i in 0..N { } }", ["a loop bound must be an integer, found a real number"]),
    ("model m(y: real[]) { for i in 0..y { } }", ["Did you mean len(y)?"]),
    ("model m(N: int) { for i in 0..N / 2 { } }", ["use '//' for integer division"]),
    ("model m() { x ~ normal(0, 1); x ~ normal(1, 1) }", ["the address 'x' is used twice"]),
    ("model m(N: int) { for i in 0..N { x ~ normal(0, 1); x ~ normal(0, 1) } }",
     ["the address 'x[i]' is used twice in every iteration"]),
    ("model m(N: int) { for i in 0..N { x ~ normal(0, 1) }\n for j in 0..N { x ~ normal(0, 1) } }",
     ["is used twice"]),
    ("model m(y: real) { y ~ normal(0, 1); y ~ normal(1, 1) }", ["the address 'y' is used twice"]),
    ("model m() { x = 1.0; x ~ normal(0, 1) }", ["'x' is bound by '=' on line 1", "not computed from data"]),
    ("model m(y: real[]) { mu ~ normal(0, 1); y = y * mu; y ~ normal(0, 1) }",
     ["'y' is bound by '='", "Jacobian"]),
    # the same rebinding inside a loop: 'y ~' after it was read as a new scalar random choice, and the
    # data were dropped without a word
    ("model m(y: real[]) { mu ~ normal(0, 10)\n for i in 0..len(y) { y[i] = y[i] - mu }\n y ~ normal(0, 1) }",
     ["'y' is bound by '=' on line 2", "Jacobian"]),
    ("model m(y: real) { mu ~ normal(0, 1)\n for i in 0..2 { y = y + mu }\n y ~ normal(0, 1) }",
     ["'y' is bound by '=' on line 2"]),
    ("model m() { mu ~ flat(ordered, 2); mu[0] ~ normal(0, 1) }",
     ["'mu' is already a random choice", "factor(log_density(normal(0, 1), mu[0]))"]),
    ("model m(y: real[]) { mu ~ normal(0, 1); log(y + mu) ~ normal(0, 1) }",
     ["the left of '~' is log(y + mu), which depends on 'mu'", "Jacobian"]),
    ("def f(x) { return x }\nmodel m(y: real[]) { f(y) ~ normal(0, 1) }",
     ["the left of '~' must be a variable", "observe f(y) ~ ..."]),
    ("model m() { 3 ~ normal(0, 1) }", ["found a number"]),
    ("model m() { x ~ 3 }", ["expected a distribution, found an integer"]),
    ("model m() { x ~ sample(normal(0, 1)) }", ["sample(d) draws a value"]),
    ("model m() { d = 2.0; x ~ d }", ["expected a distribution, found a real number"]),
    ("model m(N: int) { for i in 0..N { i ~ normal(0, 1) } }", ["'i' is the loop variable"]),
    ("def f(x) { return x }\nmodel m() { f ~ normal(0, 1) }", ["'f' is a function defined with def"]),
    ("model m() { beta[0] ~ normal(0, 1) }", ["'beta' is not defined, so 'beta[0] ~ ...' has no array"]),
    ("return 3", ["'return' outside a function or model"]),
    ("model m(N: int) { for i in 0..N { return i } }", ["'return' inside a for loop"]),
    ("def f(x) { return x\n y = 2 }", ["comes after the 'return' on line 1 and never runs"]),
    ("model m() { condition(1) }", ["condition expects a boolean (true or false), found the number 1"]),
    ("model m() { condition('yes') }", ["condition expects a boolean"]),
    ("model m() { x ~ normal(0, 1); condition(x) }", ["condition expects a boolean"]),
    ("model m() { factor(true) }", ["factor expects a log weight"]),
    ("model m(y: real[]) { y ~ flat(real) }", ["flat(...) is an improper prior"]),
    ("model m() { observe 1.0 ~ flat(positive) }", ["cannot be the distribution of observed data"]),
    ("model m() { x = sample(flat(positive)) }", ["improper prior: it has no draws"]),
    ("model m() { t ~ flat(simplex) }", ["flat(simplex) needs a size: flat(simplex, K)"]),
    ("model m() { t ~ flat(lower_cholesky, 3) }", ["needs two sizes"]),
    ("model m() { t ~ flat(postive) }", ["unknown support 'postive'", "Did you mean 'positive'?"]),
    ("model m() { t ~ flat(interval) }", ["the support interval needs its bounds"]),
    ("model m() { t ~ flat(interval(0)) }", ["interval() takes 2 bounds"]),
    ("model m() { t ~ flat(1.0) }", ["the first argument of flat(...) must be a support"]),
    ("model m() { x = positive }", ["'positive' is a support"]),
    ("model m(x: float) { }", ["unknown type 'float'", "Did you mean 'real'?"]),
    ("model m(x: rael[]) { }", ["unknown type 'rael'", "Did you mean 'real'?"]),
    ("model m(x, x) { }", ["the parameter 'x' is listed twice"]),
    ("model m() { if flip() { s = 1 }\n x ~ normal(0, s) }",
     ["'s' may not be defined here: it is assigned in only one branch of the if on line 1"]),
    ("model m(N: int) { for i in 0..N { v = i }\n w = v }",
     ["'v' is not defined here: it was assigned inside the for loop on line 1"]),
    ("model m(N: int) { for i in 0..N { i = 2 } }", ["cannot assign to the loop variable 'i'"]),
    ("model m() { x = 1\n x + 1 }", ["the value of this operation is computed and thrown away"]),
    ("model m() { normal(0, 1) }", ["a distribution on its own does nothing"]),
    ("model m() { exp(1) }", ["the value of exp(...) is computed and thrown away"]),
    ("x ~ normal(0, 1)", ["'~' outside a model"]),
    ("observe 1 ~ normal(0, 1)", ["observe outside a model"]),
    ("for i in 0..3 { }", ["only definitions (model, def, import) and constants"]),
    ("let c = flip(0.5)", ["flip(...) is random, and top-level constants cannot be"]),
    ("model sub() { }\nlet c = sub()", ["a model cannot be called at the top level of a file"]),
    ("let a = b\nlet b = 1", ["'b' is not defined"]),
    ("model m() { }\nmodel m() { }", ["'m' is already defined, on line 1"]),
    ("def f() { return 1 }\nlet f = 2", ["'f' is already defined, on line 1"]),
    ("model m() { s ~ half_normal(1); x = s(2) }", ["'s' is a real number, not a function"]),
    ("model m() { x = 'a' + 1 }", ["cannot apply '+' to a string"]),
    ("model m() { x = 'a' < 'b' }", ["cannot apply '<' to a string"]),
    ("model m() { x = [1, 'a'] }", ["an array cannot mix strings and numbers"]),
    ("model m() { x = [[1, 2], [3]] }", ["the rows of this array have different lengths (1, 2)"]),
    ("model m() { x = [[1, 2], 3] }", ["different numbers of dimensions"]),
    ("model m() { x = [1, 2, 3] + [1, 2] }", ["their shapes do not broadcast"]),
    ("model m() { x = [1, 2, 3][3] }", ["index 3 is out of range", "Indices count from 0."]),
    ("model m() { x = 2 @ [1, 2] }", ["'@' multiplies arrays"]),
    ("model m() { x = [[1, 2], [3, 4]] @ [1, 2, 3] }", ["the inner sizes 2 and 3 differ"]),
    ("model m() { x = dot([[1.0]], [1.0]) }", ["dot() takes two arrays of rank 1"]),
    ("model m(xs: real[]) { y = map(fn(a, b) => a, xs) }", ["map() calls its function with 1 argument"]),
    ("model m(xs: real[]) { y = map(3, xs) }", ["map() expects a function as its first argument"]),
    ("def f(x) { return x }\nmodel m(ts: real[]) { z = ode_rk45(f, [1.0], 0.0, ts, 1) }",
     ["ode_rk45() calls its function with 3 arguments"]),
    ("model m() { x = len(3) }", ["len() needs an array"]),
    ("model m() { x = if 1.5 then 1 else 2 }", ["the condition of an if-expression must be true or false"]),
    ("model m(y: real[]) { if y > 0 { } }", ["an if condition must be a single boolean"]),
    ("model m() { x ~ normal([0, 0], [[1, 0], [0, 1]]) }", []),  # broadcasting is fine
    ("model m(y: real[]) { y[0] ~ normal(0, 1); y[1] ~ normal(0, 1) }",
     ["the address 'y' is used twice", "named after its variable, whatever the index"]),
    ("model m() { mu ~ flat(positive); observe mu ~ half_normal(1) }",
     ["the address 'mu' is used twice", "factor(log_density(half_normal(1), mu))"]),
    ("model m(y: real[]) { y[0][1] ~ normal(0, 1) }", ["'y[0]' is a real number; it cannot be indexed"]),
]


@pytest.mark.parametrize("src, expected", REJECTED)
def test_rejects(src, expected):
    got = " || ".join(messages(src))
    if not expected:
        assert got == ""
        return
    for words in expected:
        assert words in got, f"{words!r} not in {got!r}"


DATA_ERRORS = [
    ("model m(N: int, y: real[N]) { }", {"N": 3, "y": [1.0, 2.0]},
     "'y' is declared with size N = 3, but the data has 2"),
    ("model m(X: real[,]) { }", {"X": [1.0, 2.0]},
     "'X' is declared real[,] (2 dimensions) but the data has shape (2,) (1 dimension)"),
    ("model m(k: int[]) { }", {"k": [1.5, 2.0]}, "'k' is declared int[] but the data holds reals"),
    ("model m(k: int[]) { }", {"k": np.array([0.5])}, "'k' is declared int[] but the data holds reals"),
    ("model m(y: real[3]) { }", {"y": (4,)}, "'y' is declared with size 3, but the data has 4"),
    ("model m(y: real[]) { }", {"y": [[1.0], [2.0, 3.0]]}, "ragged"),
    ("model m(x: real[], z: real[]) { w = x + z }", {"x": [1.0, 2.0], "z": [1.0, 2.0, 3.0]},
     "their shapes do not broadcast"),
    ("model m(N: int, X: real[N, 2], y: real[N]) {\n  b ~ iid(normal(0, 1), 2)\n"
     "  for n in 0..N { y[n] ~ normal(X[n] * b, 1) } }",
     {"N": 2, "X": [[1.0, 2.0], [3.0, 4.0]], "y": [1.0, 2.0]},
     "y[n] is a real number, but the distribution describes an array of reals of shape (2,)"),
    ("model m(y: real[]) { x = y[5] }", {"y": [1.0, 2.0]}, "index 5 is out of range for 'y', which has 2 elements"),
]


@pytest.mark.parametrize("src, data, words", DATA_ERRORS)
def test_rejects_data_that_do_not_fit(src, data, words):
    got = " || ".join(messages(src, data))
    assert words in got, got


# ------------------------------------------------------------------ the report


def test_collects_several_errors_in_source_order():
    src = """model m(N: int, y: real[N]) {
  mu ~ normal(0, 1, 2)
  for i in 0..N {
    y[i] ~ normal(mu, sigam)
  }
  condition(1)
  return
  x = 1
}"""
    errors = errors_of(src)
    assert len(errors) == 4
    assert [e.span.line for e in errors] == sorted(e.span.line for e in errors)
    report = CheckErrors(errors)
    assert isinstance(report, PPLError)
    text = report.render()
    assert text.count("Semantic error in 't.ppl'") == 4 and text.endswith("4 errors found.")
    assert str(report) == text
    with pytest.raises(CheckErrors):
        raise_if_errors(errors)
    raise_if_errors([])


def test_an_unbound_name_is_reported_once():
    src = "model m() {\n  a = zz + 1\n  b = zz * 2\n}"
    assert len(errors_of(src)) == 1


def test_unresolved_imports_make_unknown_names_acceptable():
    src = 'import "helpers.ppl"\nmodel m() { x = helper(1) }'
    assert errors_of(src) == []


def test_checking_runs_no_code():
    # names of Python builtins mean nothing in a .ppl file
    assert "'__import__' is not defined" in " ".join(messages("model m() { x = __import__('os') }"))
    assert "'eval' is not defined" in " ".join(messages("model m() { x = eval('1') }"))
