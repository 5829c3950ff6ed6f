"""The ``ppl`` command: ``ppl run`` and ``ppl check``, in-process with ``ppl.cli.main``
(and once through the installed script)."""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ppl.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
COIN = ROOT / "examples" / "coin.ppl"

COIN_SOURCE = """\
flips = [1, 1, 0, 1, 1, 1, 0, 1, 0, 1]

model coin(flips: int[]) {
  p ~ beta(1, 1)
  for i in 0..len(flips) {
    flips[i] ~ bernoulli(p)
  }
  return p
}
"""


@pytest.fixture
def coin_file(tmp_path) -> pathlib.Path:
    """examples/coin.ppl when it exists; otherwise the same model written here."""
    if COIN.exists():
        return COIN
    path = tmp_path / "coin.ppl"
    path.write_text(COIN_SOURCE)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def weighted_mean_and_se(result: dict, site: str) -> tuple[float, float]:
    """The self-normalised importance estimate of a site's mean and its Monte Carlo standard error."""
    x = np.asarray(result["samples"][site], dtype=np.float64)
    lw = np.asarray(result["log_weights"], dtype=np.float64)
    w = np.exp(lw - lw.max())
    w /= w.sum()
    mean = float(np.sum(w * x))
    return mean, float(math.sqrt(np.sum(w**2 * (x - mean) ** 2)))


def beta_mean(heads: int, tails: int) -> float:
    """Posterior mean of a Beta(1, 1)-Bernoulli coin."""
    return (1 + heads) / (2 + heads + tails)


# ---------------------------------------------------------------------------
# ppl run


def test_run_prints_a_summary_table(capsys, coin_file):
    code, out, err = run(capsys, "run", coin_file, "--method", "importance", "--num-samples", "4000")
    assert code == 0, err
    assert "Importance on 'coin' (compiled engine)" in out
    for col in ("site", "mean", "std", "5%", "50%", "95%"):
        assert col in out
    row = next(line for line in out.splitlines() if line.strip("│ ").startswith("p "))
    mean = float(row.split("│")[2])
    assert abs(mean - beta_mean(7, 3)) < 0.02        # exact 2/3; MC error ~0.003 at ESS ~4000
    assert "log evidence:" in out and "effective sample size:" in out


def test_json_data_replaces_the_files_constants(capsys, coin_file, tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"flips": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0]}))
    out_file = tmp_path / "results.json"
    code, out, err = run(capsys, "run", coin_file, "--data", data, "--method", "importance",
                         "--num-samples", "4000", "--out", out_file)
    assert code == 0, err
    assert f"wrote {out_file}" in out
    result = json.loads(out_file.read_text())
    assert result["model"] == "coin" and result["method"] == "Importance" and result["engine"] == "compiled"
    mean, se = weighted_mean_and_se(result, "p")
    assert abs(mean - beta_mean(9, 1)) < 4 * se      # z < 4 at seed 0
    assert result["summary"]["p"]["mean"] == pytest.approx(mean, rel=1e-6)
    assert math.isfinite(result["log_evidence"])


def test_csv_data_one_column_per_argument(capsys, coin_file, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("flips\n0\n0\n0\n1\n0\n")
    out_file = tmp_path / "results.json"
    code, _, err = run(capsys, "run", coin_file, "--data", data, "--method", "importance",
                       "--num-samples", "4000", "--out", out_file)
    assert code == 0, err
    mean, se = weighted_mean_and_se(json.loads(out_file.read_text()), "p")
    assert abs(mean - beta_mean(1, 4)) < 4 * se


def test_seed_and_num_samples(capsys, coin_file, tmp_path):
    def draws(seed):
        out_file = tmp_path / f"r{seed}.json"
        code, _, err = run(capsys, "run", coin_file, "--method", "importance", "--num-samples", "300",
                           "--seed", seed, "--out", out_file)
        assert code == 0, err
        return json.loads(out_file.read_text())["samples"]["p"]

    a, b, c = draws(1), draws(1), draws(2)
    assert len(a) == 300
    assert a == b and a != c


@pytest.fixture(scope="module")
def nuts_netcdf(tmp_path_factory):
    """One NUTS run (2 chains of 300 draws) written as ArviZ netCDF: (exit code, stdout, stderr, path)."""
    import contextlib
    import io

    path = tmp_path_factory.mktemp("nuts") / "results.nc"
    out, err = io.StringIO(), io.StringIO()
    source = COIN if COIN.exists() else path.with_name("coin.ppl")
    if not COIN.exists():
        source.write_text(COIN_SOURCE)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", str(source), "--method", "nuts", "--num-samples", "300", "--num-warmup", "300",
                     "--num-chains", "2", "--out", str(path)])
    return code, out.getvalue(), err.getvalue(), path


def test_nuts_with_netcdf_output(nuts_netcdf):
    xr = pytest.importorskip("xarray")
    code, out, err, path = nuts_netcdf
    assert code == 0, err
    assert "NUTS on 'coin'" in out and "r_hat" in out and "ess_bulk" in out
    assert "Traceback" not in err
    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as posterior:
        p = posterior["p"]
        assert p.size == 600
        assert abs(float(p.mean()) - beta_mean(7, 3)) < 0.05   # sd 0.13 and ESS > 100: 4 standard errors


def test_netcdf_keeps_the_chains(nuts_netcdf):
    xr = pytest.importorskip("xarray")
    *_, path = nuts_netcdf
    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as posterior:
        assert posterior["p"].dims == ("chain", "draw") and posterior["p"].shape == (2, 300)


def test_importance_netcdf_reads_back_with_arviz(capsys, coin_file, tmp_path):
    az = pytest.importorskip("arviz")
    out_file = tmp_path / "results.nc"
    code, _, err = run(capsys, "run", coin_file, "--method", "importance", "--num-samples", "500",
                       "--out", out_file)
    assert code == 0, err
    data = az.from_netcdf(out_file)
    p = np.asarray(data["posterior"]["p"])
    assert p.shape == (1, 4000) and np.all((p > 0) & (p < 1))  # resampled to ARVIZ_DRAWS equal-weight draws


def test_enumeration_and_model_selection(capsys, tmp_path):
    src = tmp_path / "two.ppl"
    src.write_text(
        "model first() {\n  a ~ bernoulli(0.5)\n  return a\n}\n\n"
        "model second() {\n  a ~ bernoulli(0.5)\n  b ~ bernoulli(0.5)\n"
        "  condition(a == 1 or b == 1)\n  return a\n}\n"
    )
    code, out, err = run(capsys, "run", src)            # default: the last model, exact enumeration
    assert code == 0, err
    assert "Enumerate on 'second'" in out and "0.6667" in out
    code, out, _ = run(capsys, "run", src, "--model", "first", "--method", "enumerate")
    assert code == 0 and "Enumerate on 'first'" in out and "0.5" in out
    code, _, err = run(capsys, "run", src, "--model", "third")
    assert code == 1 and "no model named 'third'" in err and "first, second" in err


def test_dynamic_model_says_so(capsys, tmp_path):
    src = tmp_path / "geo.ppl"
    src.write_text(
        "def geometric(p) {\n  if flip(p) { return 0 }\n  return 1 + geometric(p)\n}\n\n"
        "model g() {\n  n = geometric(0.5)\n  return n\n}\n"
    )
    code, out, err = run(capsys, "run", src, "--method", "importance", "--num-samples", "300")
    assert code == 0, err
    assert "(eager engine)" in out and "is dynamic" in out


def mcmc_mean_and_se(result: dict, site: str) -> tuple[float, float]:
    """The mean of MCMC draws (chains, draws) and its standard error from the bulk effective sample size."""
    from ppl.inference.diagnostics import ess_bulk

    x = np.asarray(result["samples"][site], dtype=np.float64)
    ess = float(np.min(ess_bulk(x)))
    return float(x.mean()), float(x.std() / math.sqrt(ess))


@pytest.mark.parametrize("method", ["enumerate", "importance", "smc", "nuts", "hmc", "mh", "gibbs"])
def test_every_method_runs_end_to_end(capsys, tmp_path, method):
    """`ppl run --method M` for each method: the table names the method, and the answer is right."""
    from ppl.cli import METHODS

    assert method in METHODS
    out_file = tmp_path / "r.json"
    if method == "enumerate":   # exact: P(disease | positive test) by Bayes' rule
        data = tmp_path / "d.json"
        data.write_text('{"positive": 1}')
        code, out, err = run(capsys, "run", ROOT / "examples" / "medical.ppl", "--data", data,
                             "--method", method, "--out", out_file)
        assert code == 0, err
        assert "Enumerate on 'diagnosis'" in out
        result = json.loads(out_file.read_text())
        mean, _ = weighted_mean_and_se(result, "disease")
        assert abs(mean - 0.0095 / (0.0095 + 0.99 * 0.08)) < 1e-6
        return
    code, out, err = run(capsys, "run", COIN, "--method", method, "--num-samples", "400", "--num-warmup", "200",
                         "--num-chains", "2", "--seed", "1", "--out", out_file)
    assert code == 0, err
    assert "Traceback" not in err
    result = json.loads(out_file.read_text())
    name = {"nuts": "NUTS", "hmc": "HMC", "mh": "MH", "smc": "SMC"}.get(method, method.capitalize())
    assert f"{name} on 'coin'" in out and result["method"] == name
    if method in ("importance", "smc"):
        mean, se = weighted_mean_and_se(result, "p")
    else:
        assert np.asarray(result["samples"]["p"]).shape == (2, 400)
        mean, se = mcmc_mean_and_se(result, "p")
    assert abs(mean - beta_mean(7, 3)) < 4 * se          # z < 4 at seed 1


def test_pmmh_from_the_command_line(capsys, tmp_path):
    src = tmp_path / "walk.ppl"
    src.write_text("ys = [0.3, 1.1, 0.4, -0.6, -1.5, -0.2, 0.9, 1.7]\n\n"
                   "model noisy_walk(ys: real[]) {\n  q ~ half_normal(1)\n  x = 0.0\n"
                   "  for t in 0..len(ys) {\n    x ~ normal(0.9 * x, q)\n    ys[t] ~ normal(x, 0.5)\n  }\n"
                   "  return q\n}\n")
    out_file = tmp_path / "r.json"
    code, out, err = run(capsys, "run", src, "--method", "pmmh", "--num-samples", "300", "--num-warmup", "100",
                         "--num-chains", "2", "--out", out_file)
    assert code == 0, err
    assert "PMMH on 'noisy_walk'" in out and "mean acceptance" in out
    result = json.loads(out_file.read_text())
    assert np.asarray(result["samples"]["q"]).shape == (2, 300)
    assert np.asarray(result["samples"]["x"]).shape == (2, 300, 8)


def test_help_lists_every_method(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for method in ("enumerate", "importance", "smc", "nuts", "hmc", "mh", "gibbs", "pmmh"):
        assert method in out
    assert "--progress" in out and "--num-warmup" in out


def test_progress_bar_on_request(capsys):
    code, out, err = run(capsys, "run", COIN, "--method", "hmc", "--num-samples", "50", "--num-warmup", "50",
                         "--num-chains", "2", "--progress")
    assert code == 0, err
    # one bar per chain, run to the end, on stderr (stdout keeps only the results, for pipes)
    assert "chain 0" in err and "chain 1" in err and "100/100" in err
    assert "chain 0" not in out
    code, out, err = run(capsys, "run", COIN, "--method", "hmc", "--num-samples", "50", "--num-warmup", "50",
                         "--num-chains", "2", "--no-progress")
    assert code == 0, err
    assert "chain 0" not in out and "chain 0" not in err


def test_max_depth_enumerates_a_recursive_model(capsys, tmp_path):
    src = tmp_path / "geo.ppl"
    src.write_text("p = 0.5\n\ndef geometric(p) {\n  if flip(p) { return 0 }\n  return 1 + geometric(p)\n}\n\n"
                   "model tails(p: real) {\n  return geometric(p)\n}\n")
    code, out, err = run(capsys, "run", src, "--max-depth", "12")
    assert code == 0, err
    assert "Enumerate on 'tails' (eager engine)" in out and "enumeration was truncated" in out
    table = out[out.index("return value:"):].splitlines()[1:]
    probs = {int(v): float(p) for v, p in (line.split() for line in table)}
    assert sorted(probs) == list(range(12))
    for n, p in probs.items():                       # P(n) = 2^-(n+1), renormalised over the 12 kept
        assert abs(p - 0.5 ** (n + 1) / (1 - 0.5**12)) < 1e-4
    code, _, err = run(capsys, "run", src, "--max-depth", "12", "--method", "mh")
    assert code == 1 and "--max-depth bounds exact enumeration" in err


def test_the_return_value_is_summarised(capsys, tmp_path):
    src = tmp_path / "r.ppl"
    src.write_text("model sum_of_two() {\n  a ~ bernoulli(0.5)\n  b ~ bernoulli(0.5)\n  return a + b\n}\n\n"
                   "model shifted() {\n  x ~ normal(0, 1)\n  return x + 10\n}\n\n"
                   "model same() {\n  x ~ normal(0, 1)\n  return x\n}\n")
    code, out, err = run(capsys, "run", src, "--model", "sum_of_two")
    assert code == 0, err
    assert out.endswith("return value:\n  0  0.2500\n  1  0.5000\n  2  0.2500\n")
    code, out, err = run(capsys, "run", src, "--model", "shifted", "--method", "importance", "--num-samples", "2000")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("return value:"))
    assert abs(float(line.split("mean ")[1].split(",")[0]) - 10) < 0.15      # sd 1, ESS 2000: 4.5 se
    code, out, err = run(capsys, "run", src, "--model", "same", "--method", "importance", "--num-samples", "100")
    assert code == 0 and "return value" not in out      # the same as the site 'x' in the table


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.ppl")), ids=lambda p: p.stem)
def test_every_example_runs_with_its_own_data(path):
    """`ppl run examples/NAME.ppl` needs no --data: each file carries data for its default model,
    and the model builds with them (the examples' answers are checked in examples/test_examples.py)."""
    from ppl.cli import _arguments, _select_model, build_method

    import ppl

    module = ppl.load(path)
    model = _select_model(module, None, str(path))
    args = _arguments(model, dict(module.constants))
    program, _ = model.program(*args)
    assert hasattr(build_method(None, program), "run")


def test_a_closed_pipe_ends_quietly(monkeypatch, coin_file):
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["check", str(coin_file)]) == 1


# ---------------------------------------------------------------------------
# ppl check


def test_check_ok_and_ir(capsys, coin_file):
    code, out, _ = run(capsys, "check", coin_file)
    assert code == 0 and out.strip() == f"{coin_file}: ok (models: coin)"
    code, out, _ = run(capsys, "check", coin_file, "--ir")
    assert code == 0
    assert "program coin(" in out and "sample 'p' ~ Beta" in out and "observe 'flips'" in out


def test_check_ir_needs_data_for_parameters(capsys, tmp_path):
    src = tmp_path / "m.ppl"
    src.write_text("model m(y: real[]) {\n  mu ~ normal(0, 1)\n  y ~ normal(mu, 1)\n}\n")
    code, out, _ = run(capsys, "check", src, "--ir")
    assert code == 0 and "no IR without data" in out and "'y'" in out
    data = tmp_path / "d.json"
    data.write_text('{"y": [0.5, 1.5]}')
    code, out, _ = run(capsys, "check", src, "--ir", "--data", data)
    assert code == 0 and "program m(" in out and "observe 'y'" in out


# ---------------------------------------------------------------------------
# Errors: exit code 1, the rendered error on stderr, never a traceback


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_bad_file_renders_the_error(capsys, tmp_path, command):
    bad = tmp_path / "bad.ppl"
    bad.write_text("model m(y: real[]) {\n  sigma ~ half_normal(1)\n  mu ~ normal(0, 10)\n  y ~ normal(mu, sigam)\n}\n")
    code, out, err = run(capsys, command, bad)
    assert code == 1 and out == ""
    assert f"Semantic error in '{bad}', line 4, column 18" in err
    assert "  4 |   y ~ normal(mu, sigam)" in err
    assert "\n    |                  ^^^^^\n" in err
    assert "'sigam' is not defined" in err and "Did you mean 'sigma'?" in err
    assert "Traceback" not in err


def test_a_syntax_error_renders_the_caret(capsys, tmp_path):
    bad = tmp_path / "syntax.ppl"
    bad.write_text("model m() {\n  x ~ normal(0, 1\n}\n")
    code, _, err = run(capsys, "check", bad)
    assert code == 1
    assert err.startswith(f"Syntax error in '{bad}', line")
    assert "^" in err and "Traceback" not in err


def test_missing_data_names_the_key(capsys, tmp_path):
    src = tmp_path / "m.ppl"
    src.write_text("model m(y: real[], sigma: real) {\n  mu ~ normal(0, 1)\n  y ~ normal(mu, sigma)\n}\n")
    data = tmp_path / "d.json"
    data.write_text('{"y": [0.1, 0.2]}')
    code, out, err = run(capsys, "run", src, "--data", data)
    assert code == 1 and out == ""
    assert "the model 'm' needs data for 'sigma'" in err and "--data" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
])
def test_bad_data_files(capsys, coin_file, tmp_path, content, message):
    data = tmp_path / "d.json"
    data.write_text(content)
    code, _, err = run(capsys, "run", coin_file, "--data", data)
    assert code == 1 and message in err and "Traceback" not in err


def test_missing_files(capsys, coin_file, tmp_path):
    code, _, err = run(capsys, "run", tmp_path / "nope.ppl")
    assert code == 1 and "no such file" in err and "nope.ppl" in err
    code, _, err = run(capsys, "run", coin_file, "--data", tmp_path / "nope.json")
    assert code == 1 and "no such file" in err and "nope.json" in err


def test_a_model_error_at_run_time(capsys, tmp_path):
    src = tmp_path / "neg.ppl"
    src.write_text("model m() {\n  x ~ normal(0, -1)\n  return x\n}\n")
    code, _, err = run(capsys, "run", src, "--method", "importance", "--num-samples", "10")
    assert code == 1
    assert f"'{src}', line 2" in err and "scale" in err and "Traceback" not in err


def test_unknown_method_is_refused_by_the_parser(capsys, coin_file):
    with pytest.raises(SystemExit) as e:
        main(["run", str(coin_file), "--method", "magic"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --method: unknown method 'magic'") and "nuts, hmc" in err


# ---------------------------------------------------------------------------
# The installed script


def test_the_installed_ppl_script(coin_file, tmp_path):
    script = shutil.which("ppl", path=os.path.dirname(sys.executable)) or shutil.which("ppl")
    if script is None:
        pytest.skip("the ppl console script is not installed")
    done = subprocess.run([script, "run", str(coin_file), "--method", "importance", "--num-samples", "1000"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Importance on 'coin'" in done.stdout and "│ p " in done.stdout
    bad = tmp_path / "bad.ppl"
    bad.write_text("model m() {\n  x ~ normal(0, 1)\n  y ~ normal(x, oops)\n}\n")
    done = subprocess.run([script, "check", str(bad)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 1
    assert "line 3" in done.stderr and "^" in done.stderr and "Traceback" not in done.stderr


def test_support_bound_enumerates_an_infinite_support_and_says_it_cut_it(capsys, tmp_path):
    src = tmp_path / "pk.ppl"
    src.write_text("model pk() {\n  k ~ poisson(3)\n  return k\n}\n")
    code, _, err = run(capsys, "run", str(src), "--method", "enumerate")
    assert code == 1 and "Give --support-bound K to enumerate its first K values" in err
    code, out, err = run(capsys, "run", str(src), "--support-bound", "5")
    assert code == 0, err
    assert "'k' took only 5 values" in out + err
    p = np.array([math.exp(-3.0) * 3.0**k / math.factorial(k) for k in range(5)])
    assert f"{p[3] / p.sum():.4f}" in out  # P(k = 3 | k < 5), renormalised
    code, _, err = run(capsys, "run", str(src), "--support-bound", "5", "--method", "nuts")
    assert code == 1 and "--support-bound bounds exact enumeration" in err


def test_data_replace_the_file_constants_and_what_is_computed_from_them(capsys, tmp_path):
    """--data y=[...] replaced the argument y only: a model reading the constant y, and N = len(y), kept
    the file's values (mu 0.01 for 5.99; four of six observations dropped without a word)."""
    src = tmp_path / "consts.ppl"
    src.write_text(
        "y = [0.0, 0.0]\nN = len(y)\nybar = mean(y)\n\n"
        "model reads_global() {\n  mu ~ normal(0, 10)\n  y ~ normal(mu, 1)\n  return ybar\n}\n\n"
        "model takes_n(N: int, y: real[]) {\n  mu ~ normal(0, 10)\n  for i in 0..N {\n"
        "    y[i] ~ normal(mu, 1)\n  }\n  return N\n}\n")
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"y": [0.0, 0.0, 9.0, 9.0, 9.0, 9.0], "unused": 3}))
    precision = 6 + 0.01  # normal-normal: prior sd 10, noise 1
    for name, returned in (("reads_global", "6.0"), ("takes_n", "6")):  # mean(new y); len(new y)
        code = main(["run", str(src), "--model", name, "--data", str(data), "--method", "importance",
                     "--num-samples", "4000", "--seed", "0"])
        out, err = capsys.readouterr()
        assert code == 0, err
        mean = float(next(line for line in out.splitlines() if "│ mu" in line).split("│")[2])
        ess = float(out.split("effective sample size:")[1].split()[0])
        assert abs(mean - 36.0 / precision) < 4 * precision ** -0.5 / math.sqrt(ess), out
        assert out.split("return value:")[1].split()[0] == returned, out
        assert "'unused'" in err and "not used" in err
