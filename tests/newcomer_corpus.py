"""Inputs a newcomer from Stan, PyMC or NumPyro gets wrong, and what ppl must answer.

Each case is a small project (a ``.ppl`` file, data files) and a ``ppl``
command line, or a Python snippet, with what a user is owed: either a clear
error (non-zero exit, no Python traceback, a message that names what is wrong
and, where there is one, the user's line), or the right answer.

Every outcome is classified as

* ``clear``   -- an error as described above, or the right answer;
* ``vague``   -- an error without the words it must contain (say, no line or site);
* ``raw``     -- a Python or JAX traceback reached the user;
* ``silent``  -- a wrong answer, or bad input accepted without a word.

``tests/test_newcomer_corpus.py`` requires ``clear`` for every case;
``python tests/newcomer_corpus.py`` prints the count table of issue 8.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import pathlib
import re
import sys
import tempfile
import traceback
import warnings
from typing import Callable

__all__ = ["Case", "CASES", "run_case", "classify_all"]

COIN = """model coin(flips: int[]) {
  p ~ beta(1, 1)
  for i in 0..len(flips) {
    flips[i] ~ bernoulli(p)
  }
  return p
}
"""

REGRESSION = """model regression(x: real[], y: real[]) {
  alpha ~ normal(0, 10)
  beta ~ normal(0, 10)
  sigma ~ exponential(1)
  for i in 0..len(y) {
    y[i] ~ normal(alpha + beta * x[i], sigma)
  }
  return beta
}
"""


@dataclasses.dataclass
class Case:
    """One input. ``argv`` is a ``ppl`` command line (files relative to a fresh folder);
    ``python`` is a snippet run with the folder as working directory instead.

    For an error, ``must_say`` are regular expressions the message must all match
    (case-insensitive). For a success, ``answer`` takes (stdout, folder) and says
    whether the answer is right.
    """

    name: str
    files: dict[str, str]
    argv: list[str] | None = None
    python: str | None = None
    error: bool = True
    must_say: tuple[str, ...] = ()
    answer: Callable[[str, pathlib.Path], bool] | None = None
    note: str = ""
    slow: bool = False  # a longer case: run by the slow suite and by this script, not the default suite


def _mean_of(name: str, text: str) -> float | None:
    """The mean printed for site ``name`` in a summary table."""
    for line in text.splitlines():
        cells = [c for c in re.split(r"[\s│|]+", line.strip()) if c]
        if cells and cells[0] == name and len(cells) > 1:
            try:
                return float(cells[1])
            except ValueError:
                return None
    return None


def _near(name: str, value: float, tol: float) -> Callable[[str, pathlib.Path], bool]:
    def check(out: str, folder: pathlib.Path) -> bool:
        m = _mean_of(name, out)
        return m is not None and abs(m - value) < tol
    return check


def _y3(loop: str, extra: str = "") -> str:
    return ("y = [1.0, 2.0, 3.0]\n\nmodel m(y: real[]) {\n  mu ~ normal(0, 10)\n"
            f"  {loop} {{\n    y[i] ~ normal(mu, 1)\n  }}\n{extra}  return mu\n}}\n")


CASES: list[Case] = [
    # --- indices out of range -------------------------------------------------------
    Case("index_one_past_end", {"m.ppl": _y3("for i in 1..len(y)+1")},
         ["run", "m.ppl", "--method", "importance"], must_say=(r"index", r"line 6|m\.ppl:6|line 5|m\.ppl:5")),
    Case("index_two_past_end", {"m.ppl": _y3("for i in 0..len(y)+2")},
         ["run", "m.ppl", "--method", "importance"], must_say=(r"index", r"line (5|6)|m\.ppl:(5|6)")),
    Case("return_index_past_end", {"m.ppl": "y = [1.0, 2.0, 3.0]\n\nmodel m(y: real[]) {\n  mu ~ normal(0, 1)\n"
                                            "  return y[5]\n}\n"},
         ["run", "m.ppl", "--method", "importance"], must_say=(r"index", r"5")),
    Case("index_from_data_out_of_range",
         {"m.ppl": "model m(g: int[], y: real[]) {\n  theta ~ normal(0, 1)\n  mu = [theta, theta + 1]\n"
                   "  for i in 0..len(y) {\n    y[i] ~ normal(mu[g[i]], 1)\n  }\n  return theta\n}\n",
          "d.json": json.dumps({"g": [0, 1, 2], "y": [0.1, 0.2, 0.3]})},
         ["run", "m.ppl", "--data", "d.json", "--method", "importance"], must_say=(r"index", r"line 5|m\.ppl:5")),
    Case("python_index_past_end", {},
         python=("import jax.numpy as jnp, ppl\nfrom ppl import dist\n"
                 "@ppl.model\ndef m(y):\n    mu = ppl.sample('mu', dist.Normal(0., 10.))\n"
                 "    for i in range(len(y) + 1):\n        ppl.observe(f'y{i}', dist.Normal(mu, 1.), y[i])\n"
                 "    return mu\n"
                 "ppl.infer(m, jnp.array([1., 2., 3.]), method=ppl.Importance(num_particles=100))\n"),
         must_say=(r"index|out of (range|bounds)",)),
    # --- data types -----------------------------------------------------------------
    Case("int_data_given_half", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [0.5, 1.0]})},
         ["run", "coin.ppl", "--data", "d.json"], must_say=(r"flips", r"int", r"0\.5")),
    Case("int_data_csv_fraction", {"coin.ppl": COIN, "d.csv": "flips\n1\n1.9\n0\n"},
         ["run", "coin.ppl", "--data", "d.csv"], must_say=(r"flips", r"int", r"1\.9")),
    Case("int_data_from_python", {"coin.ppl": COIN},
         python=("import ppl\nm = ppl.load('coin.ppl').coin\n"
                 "ppl.infer(m, [0.5, 1.0, 1.0], method=ppl.Importance(num_particles=100))\n"),
         must_say=(r"flips", r"int")),
    Case("check_scalar_for_array", {"coin.ppl": COIN, "f5.json": json.dumps({"flips": 5})},
         ["check", "coin.ppl", "--data", "f5.json"], must_say=(r"flips", r"int\[\]|array")),
    Case("run_scalar_for_array", {"coin.ppl": COIN, "f5.json": json.dumps({"flips": 5})},
         ["run", "coin.ppl", "--data", "f5.json"], must_say=(r"flips", r"int\[\]|array")),
    Case("real_array_given_booleans", {"m.ppl": REGRESSION,
                                       "d.json": json.dumps({"x": [True, False], "y": [1.0, 2.0]})},
         ["run", "m.ppl", "--data", "d.json"], must_say=(r"\bx\b", r"real|bool")),
    Case("real_array_given_scalar", {"m.ppl": REGRESSION, "d.json": json.dumps({"x": 1.5, "y": [1.0, 2.0]})},
         ["run", "m.ppl", "--data", "d.json"], must_say=(r"\bx\b", r"real\[\]|array")),
    Case("data_string_for_real", {"m.ppl": REGRESSION, "d.json": json.dumps({"x": "hello", "y": [1.0]})},
         ["run", "m.ppl", "--data", "d.json"], must_say=(r"\bx\b",)),
    # --- data files -----------------------------------------------------------------
    Case("json_ragged", {"m.ppl": REGRESSION, "d.json": '{"x": [[1, 2], [3]], "y": [1.0, 2.0]}'},
         ["run", "m.ppl", "--data", "d.json"], must_say=(r"\bx\b", r"ragged|shape|length|rectangular")),
    Case("json_invalid", {"m.ppl": REGRESSION, "d.json": '{"x": [1, 2,], "y": [1.0, 2.0]}'},
         ["run", "m.ppl", "--data", "d.json"], must_say=(r"json", r"line 1")),
    Case("json_empty_file", {"m.ppl": REGRESSION, "d.json": ""},
         ["run", "m.ppl", "--data", "d.json"], must_say=(r"d\.json", r"empty|json")),
    Case("data_file_missing", {"m.ppl": REGRESSION},
         ["run", "m.ppl", "--data", "nope.json"], must_say=(r"nope\.json",)),
    Case("csv_blank_line_in_column", {"m.ppl": REGRESSION, "d.csv": "x,y\n1,2\n\n3,4\n5,6\n"},
         ["run", "m.ppl", "--data", "d.csv"], must_say=(r"d\.csv", r"line 3|blank|empty")),
    Case("csv_missing_field", {"m.ppl": REGRESSION, "d.csv": "x,y\n1,2\n3\n5,6\n"},
         ["run", "m.ppl", "--data", "d.csv"], must_say=(r"d\.csv", r"line 3|row")),
    Case("csv_bom_crlf", {"m.ppl": REGRESSION,
                          "d.csv": "\ufeffx,y\r\n0,1.0\r\n1,3.1\r\n2,4.9\r\n3,7.0\r\n4,9.1\r\n5,10.9\r\n"},
         ["run", "m.ppl", "--data", "d.csv", "--method", "nuts", "--num-samples", "400", "--num-warmup", "300",
          "--no-progress"],
         error=False, answer=_near("beta", 1.98, 0.35)),
    Case("csv_column_case", {"m.ppl": REGRESSION, "d.csv": "X,y\n1,2\n3,4\n"},
         ["run", "m.ppl", "--data", "d.csv"], must_say=(r"\bx\b", r"X")),
    # --- output and resources -------------------------------------------------------
    Case("out_dir_missing", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 0, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "nuts", "--out", "/nonexistent/dir/x.nc"],
         must_say=(r"/nonexistent/dir",)),
    Case("out_csv_is_csv", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 1, 0, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "nuts", "--num-samples", "200", "--num-warmup",
          "200", "--no-progress", "--out", "r.csv"],
         error=False, answer=lambda out, folder: _csv_has_column(folder / "r.csv", "p")),
    Case("huge_num_samples", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 0, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "nuts", "--num-samples", "1000000000"],
         must_say=(r"memory|GB|GiB", r"num-samples|fewer|thin")),
    # --- the command line -----------------------------------------------------------
    Case("method_in_capitals", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 1, 0, 1, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "IMPORTANCE", "--num-samples", "20000"],
         error=False, answer=_near("p", 5 / 7, 0.02)),
    Case("method_misspelt", {"coin.ppl": COIN},
         ["run", "coin.ppl", "--method", "nutz"], must_say=(r"nuts",)),
    # --- Stan and NumPyro habits ----------------------------------------------------
    Case("stan_target_plus_equals", {"m.ppl": "model m(y: real) {\n  mu ~ normal(0, 1)\n"
                                              "  target += normal_lpdf(y | mu, 1)\n  return mu\n}\n"},
         ["check", "m.ppl"], must_say=(r"target", r"factor|observe|~", r"line 3")),
    Case("stan_declaration", {"m.ppl": "model m(y: real) {\n  real mu;\n  mu ~ normal(0, 1)\n  return mu\n}\n"},
         ["check", "m.ppl"], must_say=(r"declar|real", r"line 2")),
    Case("stan_program", {"m.stan.ppl": "data {\n  int N;\n  vector[N] y;\n}\nparameters {\n  real mu;\n}\n"
                                        "model {\n  y ~ normal(mu, 1);\n}\n"},
         ["check", "m.stan.ppl"], must_say=(r"stan", r"model", r"line 1")),
    Case("numpyro_obs", {}, python=(
        "import jax.numpy as jnp, ppl\nfrom ppl import dist\n"
        "@ppl.model\ndef m(y):\n    mu = ppl.sample('mu', dist.Normal(0., 1.))\n"
        "    with ppl.plate('n', len(y)):\n        ppl.sample('y', dist.Normal(mu, 1.), obs=y)\n    return mu\n"
        "post = ppl.infer(m, jnp.array([1., 2., 3.]), method=ppl.Importance(num_particles=20000), seed=1)\n"
        "print('MEAN', float(post.mean('mu')))\n"),
        error=False, answer=lambda out, folder: _printed_near(out, "MEAN", 1.5, 0.05)),
    # --- recursion and errors in Python ---------------------------------------------
    Case("ppl_infinite_recursion", {"m.ppl": "def f(n) {\n  return f(n + 1)\n}\n\nmodel m() {\n"
                                             "  x ~ normal(0, 1)\n  return f(x)\n}\n"},
         ["run", "m.ppl"], must_say=(r"recurs", r"\bf\b", r"line 2")),
    Case("python_infinite_recursion", {}, python=(
        "import ppl\nfrom ppl import dist\n"
        "def f(n):\n    return f(n + 1)\n"
        "@ppl.model\ndef m():\n    x = ppl.sample('x', dist.Normal(0., 1.))\n    return f(x)\n"
        "ppl.infer(m, method=ppl.Importance(num_particles=10))\n"),
        must_say=(r"recurs", r"line 4|\bf\b")),
    Case("python_bad_parameter_one_error", {}, python=(
        "import ppl\nfrom ppl import dist\n"
        "@ppl.model\ndef m():\n    s = ppl.sample('s', dist.Normal(0., 1.))\n"
        "    ppl.observe('y', dist.Normal(0., -1.), 0.5)\n    return s\n"
        "ppl.infer(m, method=ppl.Importance(num_particles=10))\n"),
        must_say=(r"scale|sigma|positive", r"line 6|<string>|snippet")),
    # --- more variations -----------------------------------------------------------
    Case("negative_index_past_start", {"m.ppl": "y = [1.0, 2.0, 3.0]\n\nmodel m(y: real[]) {\n  mu ~ normal(0, 1)\n"
                                                "  y[-4] ~ normal(mu, 1)\n  return mu\n}\n"},
         ["run", "m.ppl", "--method", "importance"], must_say=(r"index", r"-4", r"line 5")),
    Case("matrix_column_past_end",
         {"m.ppl": "model m(X: real[,]) {\n  mu ~ normal(0, 1)\n  for i in 0..2 {\n"
                   "    X[i, 2] ~ normal(mu, 1)\n  }\n  return mu\n}\n",
          "d.json": json.dumps({"X": [[1.0, 2.0], [3.0, 4.0]]})},
         ["run", "m.ppl", "--data", "d.json", "--method", "importance"], must_say=(r"index", r"line 4")),
    Case("unknown_data_key_typo", {"coin.ppl": COIN, "d.json": json.dumps({"flip": [1, 0]})},
         ["run", "coin.ppl", "--data", "d.json"], must_say=(r"flips", r"flip\b")),
    Case("json_null_element", {"coin.ppl": COIN, "d.json": '{"flips": [1, null, 0]}'},
         ["run", "coin.ppl", "--data", "d.json"], must_say=(r"flips|null", r"null|missing")),
    Case("csv_na_value", {"m.ppl": REGRESSION, "d.csv": "x,y\n1,2\nNA,4\n"},
         ["run", "m.ppl", "--data", "d.csv"], must_say=(r"d\.csv", r"NA|missing|line 3")),
    Case("out_unknown_extension", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 0, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--out", "r.txt"], must_say=(r"r\.txt", r"\.nc|\.csv|\.json")),
    Case("zero_chains", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 0, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "nuts", "--num-chains", "0"],
         must_say=(r"num-chains",)),
    Case("init_unknown_site", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 0, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "nuts", "--init", "q=0.5"], must_say=(r"\bq\b",)),
    Case("max_depth_with_nuts", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 0, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "nuts", "--max-depth", "5"],
         must_say=(r"max-depth", r"max-tree-depth|enumerat")),
    Case("several_models_says_which",
         {"m.ppl": COIN + "\nmodel other(flips: int[]) {\n  q ~ beta(2, 2)\n  return q\n}\n",
          "d.json": json.dumps({"flips": [1, 0, 1]})},
         ["run", "m.ppl", "--data", "d.json", "--method", "importance", "--num-samples", "2000"],
         error=False, answer=lambda out, folder: "other" in out and "--model" in out),
    Case("stan_for_loop", {"m.ppl": "model m(y: real[]) {\n  mu ~ normal(0, 1)\n  for (i in 1:3) {\n"
                                    "    y[i] ~ normal(mu, 1)\n  }\n  return mu\n}\n"},
         ["check", "m.ppl"], must_say=(r"for i in|\.\.", r"line 3")),
    Case("data_only_left_of_tilde",
         {"m.ppl": "model m(y: real[]) {\n  mu ~ normal(0, 100)\n  for i in 0..len(y) {\n"
                   "    ly = log(y[i])\n    ly ~ normal(mu, 1)\n  }\n  return mu\n}\n",
          "d.json": json.dumps({"y": [1.0, 2.718281828, 7.389056099, 20.08553692]})},
         ["run", "m.ppl", "--data", "d.json", "--method", "importance", "--num-samples", "50000"],
         error=False, answer=_near("mu", 1.5, 0.08), note="log y = 0, 1, 2, 3: posterior mean of mu is 1.5"),
    Case("truncated_half_normal",
         {"m.ppl": "model m() {\n  s ~ normal(0, 1) T[0, ]\n  return s\n}\n"},
         ["run", "m.ppl", "--method", "importance", "--num-samples", "50000"],
         error=False, answer=_near("s", 0.7979, 0.02), note="E|Z| = sqrt(2/pi)"),
    Case("tug_of_war_default_method", {"t.ppl": (pathlib.Path(__file__).resolve().parents[1] / "examples" /
                                                 "tug_of_war.ppl").read_text()},
         ["run", "t.ppl"], error=False,
         answer=_near("strength[alice]", 1.166, 0.1),
         note="reference: importance sampling with 200,000 particles gives 1.1663"),
    Case("mh_stuck_chains_warn", {"m.ppl": REGRESSION,
                                  "d.json": json.dumps({"x": list(range(20)), "y": [2.0 * i + 1 for i in range(20)]})},
         ["run", "m.ppl", "--data", "d.json", "--method", "mh", "--num-samples", "100", "--num-warmup", "50"],
         error=False, answer=lambda out, folder: re.search(r"warning:.*(R-hat|ESS|accept)", out) is not None),
    Case("site_names_with_brackets", {}, python=(
        "import ppl\nfrom ppl import dist\n"
        "@ppl.model\ndef m():\n    a = ppl.sample('w[red]', dist.Normal(0., 1.))\n"
        "    b = ppl.sample('w[bold]', dist.Normal(5., 1.))\n    return a + b\n"
        "print(ppl.infer(m, method=ppl.Importance(num_particles=500)).summary())\n"),
        error=False, answer=lambda out, folder: "w[red]" in out and "w[bold]" in out),
    # --- indices the tracer cannot see: the eager engine, opaque loops, jit helpers ---------
    Case("python_eager_index_past_end", {}, python=(
        "import jax.numpy as jnp, ppl\nfrom ppl import dist\n"
        "@ppl.model\ndef m(y):\n    mu = ppl.sample('mu', dist.Normal(0., 1.))\n"
        "    if mu > 0:\n        return y[5]\n    return y[0]\n"
        "print(ppl.infer(m, jnp.array([1., 2., 3.]), method=ppl.Importance(num_particles=100)).mean())\n"),
        must_say=(r"index 5 is out of range", r"line 7"), slow=True,
        note="a dynamic model (Python `if` on a draw) runs eagerly; y[5] would read y[2]"),
    Case("python_eager_negative_index", {}, python=(
        "import jax.numpy as jnp, ppl\nfrom ppl import dist\n"
        "@ppl.model\ndef m(y):\n    mu = ppl.sample('mu', dist.Normal(0., 1.))\n"
        "    n = 1 if mu > 0 else 2\n    for i in range(n):\n"
        "        ppl.observe(f'y{i}', dist.Normal(mu, 1.), y[-4 + i])\n    return mu\n"
        "ppl.infer(m, jnp.array([1., 2., 3.]), method=ppl.Importance(num_particles=100))\n"),
        must_say=(r"index -4 is out of range", r"line 8"), slow=True),
    Case("python_fori_loop_past_end", {}, python=(
        "import jax, jax.numpy as jnp, ppl\nfrom ppl import dist\n"
        "@ppl.model\ndef m(y, n):\n    mu = ppl.sample('mu', dist.Normal(0., 10.))\n"
        "    s = jax.lax.fori_loop(0, n, lambda i, s: s + y[i], 0.)\n"
        "    ppl.observe('s', dist.Normal(mu, 1.), s)\n    return mu\n"
        "ppl.infer(m, jnp.array([1., 2., 3.]), jnp.asarray(4), method=ppl.NUTS(num_samples=50, num_warmup=50))\n"),
        must_say=(r"index 3 is out of range", r"line 6"), slow=True,
        note="a fori_loop whose trip count is an array is a while_loop: checked while it runs"),
    Case("python_jit_helper_index", {}, python=(
        "import jax, jax.numpy as jnp, ppl\nfrom ppl import dist\n"
        "@jax.jit\ndef pick(y, i):\n    return y[i]\n"
        "@ppl.model\ndef m(y, g):\n    mu = ppl.sample('mu', dist.Normal(0., 10.))\n"
        "    ppl.observe('x', dist.Normal(mu, 1.), pick(y, g))\n    return mu\n"
        "ppl.infer(m, jnp.array([1., 2., 3.]), 7, method=ppl.Importance(num_particles=100))\n"),
        must_say=(r"index 7 is out of range", r"line 5"), slow=True),
    Case("ppl_index_in_ode_right_hand_side",
         {"m.ppl": "def rhs(t, y, k) {\n  return [-k * y[3]]\n}\n\nmodel m() {\n  k ~ lognormal(0, 0.5)\n"
                   "  return ode_rk45(rhs, [1.0], 0.0, [1.0, 2.0], k)\n}\n"},
         ["run", "m.ppl", "--method", "importance"], must_say=(r"index 3", r"line 2"), slow=True),
    # --- forward-mode derivatives of the stiff solver -----------------------------------
    Case("python_jacfwd_through_ode_bdf", {}, python=(
        "import jax, jax.numpy as jnp\nfrom ppl.ode import ode_bdf\n"
        "f = lambda k: ode_bdf(lambda t, y, k: -k * y, jnp.array([1.]), 0., jnp.array([2.]), k)[0, 0]\n"
        "print('D', float(jax.jacfwd(f)(0.5)), float(jax.grad(f)(0.5)))\n"),
        error=False, slow=True,
        answer=lambda out, folder: _printed_near(out, "D", -2 * 2.718281828 ** -1, 1e-4)
        and abs(float(out.split()[-1]) + 2 * 2.718281828 ** -1) < 1e-4,
        note="d/dk e^{-2k} at k = 0.5 is -2/e, by forward and by reverse mode"),
    # --- thinning, and support walls for the default method -----------------------------
    Case("nuts_thin", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 1, 0, 1, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "nuts", "--thin", "3", "--num-samples", "300",
          "--num-warmup", "300", "--no-progress"],
         error=False, answer=_near("p", 5 / 7, 0.04), slow=True),
    Case("thin_with_importance", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 0, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "importance", "--thin", "2"],
         must_say=(r"--thin", r"nuts|mh")),
    Case("thin_zero", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [1, 0, 1]})},
         ["run", "coin.ppl", "--data", "d.json", "--method", "nuts", "--thin", "0"],
         must_say=(r"--thin", r"positive")),
    Case("uniform_support_default_method",
         {"m.ppl": "model m(y: real[]) {\n  theta ~ exponential(1)\n  for i in 0..len(y) {\n"
                   "    y[i] ~ uniform(0, theta)\n  }\n  return theta\n}\n",
          "d.json": json.dumps({"y": [0.4, 1.3, 0.9]})},
         ["run", "m.ppl", "--data", "d.json"], error=False, answer=_near("theta", 1.7041, 0.05),
         note="p(theta | y) ∝ e^-theta theta^-3 on theta > 1.3: mean 1.7041 by quadrature; NUTS cannot "
              "cross theta = 1.3"),
    Case("real_scalar_given_array", {"m.ppl": "model m(y: real) {\n  mu ~ normal(0, 1)\n  y ~ normal(mu, 1)\n"
                                              "  return mu\n}\n", "d.json": json.dumps({"y": [1.0, 2.0]})},
         ["run", "m.ppl", "--data", "d.json"], must_say=(r"\by\b", r"real|single")),
    Case("int_data_given_booleans", {"coin.ppl": COIN, "d.json": json.dumps({"flips": [True, False]})},
         ["run", "coin.ppl", "--data", "d.json"], must_say=(r"flips", r"bool|true")),
]


def _csv_has_column(path: pathlib.Path, name: str) -> bool:
    import csv

    if not path.is_file():
        return False
    text = path.read_text()
    if text.lstrip().startswith(("{", "[")):
        return False  # JSON in a .csv file
    rows = list(csv.reader(text.splitlines()))
    rows = [r for r in rows if r and not r[0].startswith("#")]
    return bool(rows) and name in rows[0] and len(rows) > 10 and all(len(r) == len(rows[0]) for r in rows)


def _printed_near(out: str, tag: str, value: float, tol: float) -> bool:
    m = re.search(rf"{tag}\s+(-?[0-9.eE+-]+)", out)
    return m is not None and abs(float(m.group(1)) - value) < tol


def _lay_out(case: Case, folder: pathlib.Path) -> None:
    for name, text in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def _run_cli(case: Case, folder: pathlib.Path) -> tuple[int | None, str, str, str | None]:
    from ppl.cli import main

    out, err = io.StringIO(), io.StringIO()
    crashed = None
    old = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("default")
            try:
                rc = main(list(case.argv))
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 2
            except BaseException:  # noqa: BLE001 - a traceback the user would see
                crashed = traceback.format_exc()
                rc = None
    finally:
        os.chdir(old)
    return rc, out.getvalue(), err.getvalue(), crashed


def _run_python(case: Case, folder: pathlib.Path) -> tuple[int | None, str, str, str | None]:
    """Run the snippet as a user's script; an escaping exception is shown as Python shows it,
    and counted as clear only when its traceback's last line is the message."""
    import subprocess

    script = folder / "snippet.py"
    script.write_text(case.python)
    env = {**os.environ, "PPL_PROGRESS": "off"}
    proc = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, env=env,
                          timeout=600)
    return proc.returncode, proc.stdout, proc.stderr, None


def run_case(case: Case) -> tuple[str, str]:
    """(classification, what the user saw)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        _lay_out(case, folder)
        if case.python is not None:
            rc, out, err, crashed = _run_python(case, folder)
            shown = out + err
            if rc != 0 and case.error:
                lines = err.count("\n")
                # A Python error is one exception: a traceback of the user's frames ending in the message,
                # with no chained internal exception and no frames of JAX's internals.
                chained = ("direct cause of the following exception" in err
                           or "During handling of the above exception" in err)
                if chained or "jax/_src" in err or lines > 25:
                    return "raw", shown
                return ("clear" if _says(err, case.must_say) else "vague"), shown
        else:
            rc, out, err, crashed = _run_cli(case, folder)
            shown = out + err + (crashed or "")
            if crashed is not None or "Traceback (most recent call last)" in err:
                return "raw", shown
        if case.error:
            if rc == 0:
                return "silent", shown
            return ("clear" if _says(err, case.must_say) else "vague"), shown
        if rc != 0:
            return "vague", shown
        return ("clear" if case.answer(out + "\n" + err, folder) else "silent"), shown


def _says(text: str, patterns) -> bool:
    return all(re.search(p, text, re.IGNORECASE) for p in patterns)


def classify_all(cases=CASES) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {"clear": [], "vague": [], "raw": [], "silent": []}
    for case in cases:
        kind, _ = run_case(case)
        table[kind].append(case.name)
    return table


if __name__ == "__main__":  # pragma: no cover
    verbose = "-v" in sys.argv
    table: dict[str, list[str]] = {"clear": [], "vague": [], "raw": [], "silent": []}
    for case in CASES:
        kind, shown = run_case(case)
        table[kind].append(case.name)
        print(f"{kind:7s} {case.name}")
        if verbose and kind != "clear":
            print("    " + "\n    ".join(shown.strip().splitlines()[-12:]))
    print()
    for kind, names in table.items():
        print(f"{kind:7s} {len(names)}")
