"""The command line's files: data in (JSON, CSV), results out (netCDF, JSON, CSV), options,
memory estimates — each bad input a clear error, in-process through ``ppl.cli.main``.

Golden cases: every data file ``tests/data_errors/NAME.*`` makes
``ppl run _model.ppl --data NAME.*`` (run inside that folder) print exactly
``NAME.expected`` on stderr and exit with status 1. Regenerate after an
intended change of a message, and review the diffs by eye:

    python tests/test_cli_io.py --regen
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pathlib
import sys
import warnings

import numpy as np
import pytest

from ppl.cli import main

HERE = pathlib.Path(__file__).resolve().parent
CASES_DIR = HERE / "data_errors"
CASES = sorted(p.name for p in CASES_DIR.iterdir()
               if not p.name.startswith("_") and p.suffix not in (".expected",))

MODEL = """\
model m(x: real[], y: real[]) {
  a ~ normal(0, 1)
  for i in 0..len(y) {
    y[i] ~ normal(a * x[i], 1)
  }
  return a
}
"""


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def golden(name: str) -> tuple[int, str]:
    """Exit status and stderr of `ppl run _model.ppl --data NAME` inside tests/data_errors."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(CASES_DIR)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["run", "_model.ppl", "--data", name, "--method", "importance", "--num-samples", "10"])
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


def expected_path(name: str) -> pathlib.Path:
    return CASES_DIR / (pathlib.Path(name).stem + ".expected")


# --------------------------------------------------------------------------- golden data errors


def test_there_are_enough_golden_cases():
    assert len(CASES) >= 25
    for name in CASES:
        assert expected_path(name).exists(), f"{name} has no .expected file"


@pytest.mark.parametrize("name", CASES)
def test_golden_data_error(name):
    code, err = golden(name)
    assert code == 1
    assert "Traceback" not in err
    expected = expected_path(name).read_text(encoding="utf-8")
    assert err == expected, f"\n--- got ---\n{err}\n--- expected ---\n{expected}"


def test_every_golden_error_says_what_to_do():
    for name in CASES:
        _, err = golden(name)
        lines = err.strip().splitlines()
        assert lines[0].startswith("Data error"), name
        assert len(lines) >= 2 and lines[-1][:1].isupper(), (name, lines[-1])  # the last line is a hint


# --------------------------------------------------------------------------- data that must be read right


def write(tmp_path, name: str, content: bytes | str) -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_bom_and_crlf_as_spreadsheets_write_them(tmp_path):
    from ppl.data import read_data

    path = write(tmp_path, "d.csv", b"\xef\xbb\xbfx,y\r\n1.5,2\r\n-0.25,3\r\n\r\n")
    assert read_data(path) == {"x": [1.5, -0.25], "y": [2, 3]}
    assert type(read_data(path)["y"][0]) is int


def test_bom_in_a_json_file(tmp_path):
    from ppl.data import read_data

    path = write(tmp_path, "d.json", b'\xef\xbb\xbf{"y": [1, 2.5]}\r\n')
    assert read_data(path) == {"y": [1, 2.5]}


def test_blank_lines_at_the_end_and_spaces_are_fine(tmp_path):
    from ppl.data import read_data

    path = write(tmp_path, "d.csv", "x , y\n 1 , 2e-1\n3,  .5\n\n\n")
    assert read_data(path) == {"x": [1, 3], "y": [0.2, 0.5]}


def test_json_values_keep_their_shapes(tmp_path):
    from ppl.data import read_data

    path = write(tmp_path, "d.json", '{"m": [[1, 2], [3, 4]], "b": true, "e": [], "n": 3}')
    assert read_data(path) == {"m": [[1, 2], [3, 4]], "b": True, "e": [], "n": 3}


def test_a_bom_crlf_csv_runs_end_to_end(capsys, tmp_path):
    """The case of the issue: column 'x' was "missing" behind the byte-order mark."""
    model = write(tmp_path, "m.ppl", MODEL)
    data = write(tmp_path, "d.csv", b"\xef\xbb\xbfx,y\r\n1.0,1.2\r\n2.0,1.9\r\n3.0,3.2\r\n")
    out_file = tmp_path / "r.json"
    code, out, err = run(capsys, "run", model, "--data", data, "--method", "importance",
                         "--num-samples", "4000", "--out", out_file)
    assert code == 0, err
    result = json.loads(out_file.read_text())
    a = np.asarray(result["samples"]["a"])
    w = np.exp(np.asarray(result["log_weights"]) - max(result["log_weights"]))
    w /= w.sum()
    mean = float(np.sum(w * a))
    # conjugate: a | y ~ normal(sum(x y) / (1 + sum(x^2)), 1 / sqrt(1 + sum(x^2)))
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.2, 1.9, 3.2])
    exact = float(x @ y / (1 + x @ x))
    se = math.sqrt(float(np.sum(w**2 * (a - mean) ** 2)))
    assert abs(mean - exact) < 4 * se


def test_a_missing_data_file_and_a_folder(capsys, tmp_path):
    model = write(tmp_path, "m.ppl", MODEL)
    code, _, err = run(capsys, "run", model, "--data", tmp_path / "none.json")
    assert code == 1 and err == f"error: no such file: {tmp_path / 'none.json'}\n"
    code, _, err = run(capsys, "run", model, "--data", tmp_path)
    assert code == 1 and err.startswith(f"Data error: the data file {tmp_path} is a folder")


def test_the_data_check_runs_for_ppl_check_too(capsys, tmp_path):
    model = write(tmp_path, "m.ppl", MODEL)
    data = write(tmp_path, "d.csv", "x,y\n1,2\n\n3,4\n")
    code, out, err = run(capsys, "check", model, "--ir", "--data", data)
    assert code == 1 and "line 3 of" in err and "is blank" in err


# --------------------------------------------------------------------------- --out


@pytest.fixture
def model_file(tmp_path) -> pathlib.Path:
    path = write(tmp_path, "m.ppl", MODEL)
    write(tmp_path, "d.json", '{"x": [1.0, 2.0, 3.0], "y": [1.2, 1.9, 3.2]}')
    return path


@pytest.mark.parametrize("target, message", [
    ("/nonexistent/dir/x.nc", "Output error: --out /nonexistent/dir/x.nc: the folder /nonexistent/dir does not exist\n"
                              "Create it first (mkdir -p /nonexistent/dir), or write elsewhere.\n"),
    ("{tmp}/results.txt", "Output error: --out {tmp}/results.txt: ppl cannot write a '.txt' file\n"
                          "Name the file with one of: .nc (ArviZ netCDF), .json (JSON), .csv (CSV, one column per "
                          "coordinate).\n"),
    ("{tmp}/results", "Output error: --out {tmp}/results: ppl cannot write a file without an extension\n"
                      "Name the file with one of: .nc (ArviZ netCDF), .json (JSON), .csv (CSV, one column per "
                      "coordinate).\n"),
    ("{tmp}/sub.json", "Output error: --out {tmp}/sub.json is a folder\nGive the name of a file to write.\n"),
    ("{tmp}/m.ppl/x.json", "Output error: --out {tmp}/m.ppl/x.json: {tmp}/m.ppl is not a folder\n"
                           "Write into an existing folder.\n"),
])
def test_a_bad_out_path_is_refused_before_sampling(capsys, model_file, monkeypatch, target, message):
    import ppl

    tmp = model_file.parent
    (tmp / "sub.json").mkdir()
    ran = []
    monkeypatch.setattr(ppl, "infer", lambda *a, **k: ran.append(1))
    code, out, err = run(capsys, "run", model_file, "--data", tmp / "d.json", "--out", target.format(tmp=tmp))
    assert code == 1 and out == "" and not ran
    assert err == message.format(tmp=tmp)


def test_an_unwritable_folder_is_refused(capsys, model_file, monkeypatch):
    folder = model_file.parent / "ro"
    folder.mkdir()
    real_access = os.access
    # as a user without write permission sees it (the tests may run as root, who may write anywhere)
    monkeypatch.setattr(os, "access", lambda p, mode: False if pathlib.Path(p) == folder else real_access(p, mode))
    code, out, err = run(capsys, "run", model_file, "--out", folder / "x.json")
    assert code == 1 and out == ""
    assert err == f"Output error: --out {folder / 'x.json'}: no permission to write there\nWrite to a folder you own.\n"


def read_csv(path: pathlib.Path) -> tuple[list[str], np.ndarray]:
    import csv

    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.asarray(rows[1:], dtype=np.float64)


def test_csv_results_one_column_per_coordinate(capsys, tmp_path):
    src = write(tmp_path, "v.ppl", "model v(y: real[]) {\n  theta ~ iid(normal(0, 1), 3)\n"
                                   "  for i in 0..len(y) {\n    y[i] ~ normal(theta[i], 1)\n  }\n"
                                   "  return theta[0] + theta[2]\n}\n")
    data = write(tmp_path, "d.json", '{"y": [1.0, -1.0, 2.0]}')
    out_file = tmp_path / "r.csv"
    code, out, err = run(capsys, "run", src, "--data", data, "--method", "mh", "--num-samples", "300",
                         "--num-warmup", "100", "--num-chains", "2", "--out", out_file)
    assert code == 0, err
    header, values = read_csv(out_file)
    assert header[:5] == ["chain", "draw", "theta[0]", "theta[1]", "theta[2]"]
    assert header[5] == "return"
    assert values.shape == (600, len(header))
    assert np.array_equal(values[:, 0], np.repeat([0, 1], 300))
    assert np.array_equal(values[:, 1], np.tile(np.arange(300), 2))
    # the columns are the draws: read back and compare with the JSON writer of the same run
    code, _, err = run(capsys, "run", src, "--data", data, "--method", "mh", "--num-samples", "300",
                       "--num-warmup", "100", "--num-chains", "2", "--out", tmp_path / "r.json")
    assert code == 0, err
    theta = np.asarray(json.loads((tmp_path / "r.json").read_text())["samples"]["theta"])   # (2, 300, 3)
    np.testing.assert_allclose(values[:, 2:5], theta.reshape(600, 3), rtol=1e-6)
    np.testing.assert_allclose(values[:, 5], theta[..., 0].ravel() + theta[..., 2].ravel(), rtol=1e-5, atol=1e-6)
    # the posterior mean of theta[i] is y[i] / 2 (conjugate), within Monte Carlo error of MH draws
    from ppl.inference.diagnostics import ess_bulk

    for i, yi in enumerate([1.0, -1.0, 2.0]):
        se = math.sqrt(0.5 / float(np.min(ess_bulk(theta[..., i]))))
        assert abs(values[:, 2 + i].mean() - yi / 2) < 4.5 * se


def test_csv_results_of_a_weighted_method_carry_log_weights(capsys, model_file, tmp_path):
    out_file = tmp_path / "r.csv"
    code, _, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", "--method", "importance",
                       "--num-samples", "500", "--out", out_file)
    assert code == 0, err
    header, values = read_csv(out_file)
    assert header == ["chain", "draw", "a", "return", "log_weight"]
    assert values.shape == (500, 5) and np.all(values[:, 0] == 0) and np.array_equal(values[:, 2], values[:, 3])
    w = np.exp(values[:, 4] - values[:, 4].max())
    assert np.isfinite(w).all() and w.sum() > 0


def test_netcdf_and_json_still_written(capsys, model_file, tmp_path):
    az = pytest.importorskip("arviz")
    code, out, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", "--method", "importance",
                         "--num-samples", "200", "--out", tmp_path / "r.nc")
    assert code == 0, err
    # 200 weighted particles, resampled to ARVIZ_DRAWS (4000) equal-weight draws
    assert np.asarray(az.from_netcdf(tmp_path / "r.nc")["posterior"]["a"]).shape == (1, 4000)


# --------------------------------------------------------------------------- options


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("ppl ") and out.strip().split()[1][0].isdigit()


@pytest.mark.parametrize("spelling", ["NUTS", "Importance", "IMPORTANCE", " mh "])
def test_method_names_in_any_case(capsys, model_file, tmp_path, spelling):
    from ppl.cli import method_name

    assert method_name(spelling) == spelling.strip().lower()


def test_method_in_capitals_runs(capsys, model_file, tmp_path):
    code, out, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", "--method", "IMPORTANCE",
                         "--num-samples", "100")
    assert code == 0, err and "Importance on 'm'" in out


@pytest.mark.parametrize("typed, suggestion", [("nutz", "nuts"), ("gibs", "gibbs"), ("enumerat", "enumerate"),
                                               ("hcm", "hmc"), ("importnce", "importance")])
def test_an_unknown_method_gets_did_you_mean(capsys, model_file, typed, suggestion):
    with pytest.raises(SystemExit) as e:
        main(["run", str(model_file), "--method", typed])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == (f"error: argument --method: unknown method '{typed}'; the methods are enumerate, importance, "
                   f"smc, nuts, hmc, chees, mh, gibbs, pmmh, vi (Did you mean '{suggestion}'?)\n"
                   "See `ppl run --help` for the options.\n")


@pytest.mark.parametrize("argv, message", [
    (["run"], "error: the following arguments are required: file\nSee `ppl run --help` for the options.\n"),
    (["run", "m.ppl", "--num-samples", "many"],
     "error: argument --num-samples: needs a whole number, not 'many'\nSee `ppl run --help` for the options.\n"),
    (["run", "m.ppl", "--num-samples", "-5"],
     "error: argument --num-samples: needs a positive whole number, not -5\nSee `ppl run --help` for the options.\n"),
    (["run", "m.ppl", "--num-warmup", "-1"],
     "error: argument --num-warmup: needs a whole number of 0 or more, not -1\n"
     "See `ppl run --help` for the options.\n"),
    (["run", "m.ppl", "--target-accept", "1.5"],
     "error: argument --target-accept: needs a number strictly between 0 and 1, not 1.5\n"
     "See `ppl run --help` for the options.\n"),
    (["run", "m.ppl", "--thin", "0"],
     "error: argument --thin: needs a positive whole number, not 0\nSee `ppl run --help` for the options.\n"),
    (["run", "m.ppl", "--plot-kind", "violin"],
     "error: argument --plot-kind: invalid choice: 'violin' (choose from 'trace', 'posterior', 'pair')\n"
     "See `ppl run --help` for the options.\n"),
    (["runn", "m.ppl"], None),
])
def test_argparse_errors_share_the_prefix(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "usage:" not in err
    if message is not None:
        assert err == message


@pytest.mark.parametrize("argv, message", [
    (["--method", "mh", "--target-accept", "0.9"],
     "error: --target-accept goes with --method nuts, hmc, chees, not with mh (--method mh)\n"
     "Leave --target-accept out, or choose --method nuts.\n"),
    (["--method", "importance", "--dense-mass"],
     "error: --dense-mass goes with --method nuts, hmc, not with importance (--method importance)\n"
     "Leave --dense-mass out, or choose --method nuts.\n"),
    (["--method", "hmc", "--max-tree-depth", "5"],
     "error: --max-tree-depth goes with --method nuts, not with hmc (--method hmc)\n"
     "Leave --max-tree-depth out, or choose --method nuts.\n"),
    (["--method", "importance", "--thin", "2"],
     "error: --thin goes with --method nuts, hmc, chees, mh, gibbs, not with importance (--method importance)\n"
     "Leave --thin out, or choose --method nuts.\n"),
    (["--method", "nuts", "--max-depth", "5"],
     "error: --max-depth bounds exact enumeration; it does not go with --method nuts\n"
     "Use --method enumerate --max-depth N, or leave --max-depth out (NUTS's tree depth is --max-tree-depth).\n"),
    (["--init", "mu"], "error: --init mu: no such file, and not NAME=VALUE\n"
                        "Write --init NAME=VALUE (e.g. --init mu=0.5) or --init FILE.json.\n"),
    (["--method", "nuts", "--init", "a=zero"],
     "error: --init a=zero: the value 'zero' is not a number or a JSON array\n"
     "Write e.g. --init mu=0.5 or --init theta=[0.1,0.2].\n"),
    (["--method", "nuts", "--init", "a b=1"],
     "error: --init a b=1: 'a b' is not a site name\n"
     "Write --init NAME=VALUE (e.g. --init mu=0.5) or --init FILE.json.\n"),
    (["--plot-kind", "pair"], "error: --plot-kind says which plot --plot FILE draws; give --plot FILE.png too\n"),
    (["--model", "mm"], "error: {file} has no model named 'mm'; it has: m\nDid you mean 'm'?\n"),
])
def test_option_errors(capsys, model_file, tmp_path, argv, message):
    code, out, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", *argv)
    assert code == 1 and out == ""
    assert err == message.format(file=model_file)


def test_the_default_method_refuses_options_it_does_not_take(capsys, tmp_path):
    src = write(tmp_path, "coin.ppl", "model c() {\n  a ~ bernoulli(0.3)\n  return a\n}\n")
    code, _, err = run(capsys, "run", src, "--target-accept", "0.9")
    assert code == 1
    assert err.startswith("error: --target-accept goes with --method nuts, hmc, chees, not with enumerate "
                          "(the method chosen for this model is enumerate)")


def test_nuts_options_reach_the_sampler(capsys, model_file, tmp_path, monkeypatch):
    import ppl
    from ppl.cli import build_method, init_values

    module = ppl.load(model_file)
    program, leaves = module.models["m"].program([1.0, 2.0], [0.5, 1.5])
    method = build_method("NUTS", program, 50, 60, 1, leaves=leaves, target_accept=0.95, max_tree_depth=4,
                          dense_mass=True, init=init_values(["a=0.25"]))
    assert isinstance(method, ppl.NUTS)
    assert (method.num_samples, method.num_warmup, method.num_chains) == (50, 60, 1)
    assert (method.target_accept, method.max_tree_depth, method.dense_mass, method.init) == (0.95, 4, True, {"a": 0.25})
    init_file = write(tmp_path, "init.json", '{"a": 0.5}')
    assert init_values([str(init_file), "a=1.5"]) == {"a": 1.5}          # later items win
    mh = build_method("mh", program, 10, thin=3)
    assert isinstance(mh, ppl.MH) and mh.thin == 3 and mh.num_samples == 10


def test_nuts_runs_with_every_option(capsys, model_file, tmp_path):
    out_file = tmp_path / "r.json"
    code, out, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", "--method", "nuts",
                         "--num-samples", "200", "--num-warmup", "200", "--num-chains", "2", "--target-accept",
                         "0.95", "--max-tree-depth", "6", "--dense-mass", "--init", "a=0.3", "--seed", "3",
                         "--out", out_file)
    assert code == 0, err
    result = json.loads(out_file.read_text())
    a = np.asarray(result["samples"]["a"])
    assert a.shape == (2, 200)
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.2, 1.9, 3.2])
    exact_mean, exact_sd = x @ y / (1 + x @ x), 1 / math.sqrt(1 + x @ x)
    from ppl.inference.diagnostics import ess_bulk

    assert abs(a.mean() - exact_mean) < 4 * exact_sd / math.sqrt(float(ess_bulk(a)))


def test_an_init_outside_the_support_is_a_clear_error(capsys, tmp_path):
    src = write(tmp_path, "s.ppl", "model s() {\n  sigma ~ half_normal(1)\n  return sigma\n}\n")
    code, _, err = run(capsys, "run", src, "--method", "nuts", "--init", "sigma=-1", "--num-samples", "10",
                       "--num-warmup", "10")
    assert code == 1 and "sigma" in err and "support" in err and "Traceback" not in err


def test_thin_for_mh(capsys, model_file, tmp_path):
    out_file = tmp_path / "r.json"
    code, _, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", "--method", "mh",
                       "--num-samples", "50", "--num-warmup", "20", "--num-chains", "2", "--thin", "4",
                       "--out", out_file)
    assert code == 0, err
    assert np.asarray(json.loads(out_file.read_text())["samples"]["a"]).shape == (2, 50)


def test_several_models_say_which_ran(capsys, tmp_path):
    src = write(tmp_path, "two.ppl", "model first() {\n  a ~ bernoulli(0.5)\n  return a\n}\n\n"
                                     "model second() {\n  b ~ bernoulli(0.25)\n  return b\n}\n")
    code, out, err = run(capsys, "run", src)
    assert code == 0
    assert err == (f"note: {src} has 2 models (first, second); running the last, 'second'. "
                   "Choose another with --model NAME.\n")
    assert "Enumerate on 'second'" in out
    code, out, err = run(capsys, "run", src, "--model", "first")
    assert code == 0 and err == "" and "Enumerate on 'first'" in out


def test_vector_and_structured_return_values_are_summarised(capsys, tmp_path):
    src = write(tmp_path, "r.ppl", "model vec() {\n  x ~ normal(0, 1)\n  return [x + 10, 2 * x]\n}\n")
    code, out, err = run(capsys, "run", src, "--model", "vec", "--method", "importance", "--num-samples", "4000")
    assert code == 0, err
    lines = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("return value")}
    assert set(lines) == {"return value[0]", "return value[1]"}
    mean0 = float(lines["return value[0]"].split("mean ")[1].split(",")[0])
    std1 = float(lines["return value[1]"].split("std ")[1].split(",")[0])
    assert abs(mean0 - 10) < 4 / math.sqrt(4000) * 1.2     # prior draws, all of weight 1: sd 1, n 4000
    assert abs(std1 - 2) < 4 * 2 / math.sqrt(2 * 4000)     # se of a normal sd: sd / sqrt(2n)

    import jax.numpy as jnp

    import ppl
    from ppl.cli import return_summary

    @ppl.model
    def pair():
        x = ppl.sample("x", ppl.dist.Normal(0.0, 1.0))
        return x - 5.0, jnp.stack([x, 3.0 * x])

    text = return_summary(ppl.infer(pair, method=ppl.Importance(num_particles=2000)))
    heads = [line.split(":")[0] for line in text.splitlines()]
    assert heads == ["return value.0", "return value.1[0]", "return value.1[1]"]
    mean0 = float(text.splitlines()[0].split("mean ")[1].split(",")[0])
    std2 = float(text.splitlines()[2].split("std ")[1].split(",")[0])
    assert abs(mean0 + 5) < 4 / math.sqrt(2000) and abs(std2 - 3) < 4 * 3 / math.sqrt(2 * 2000)


# --------------------------------------------------------------------------- memory


def test_a_billion_draws_are_refused_before_sampling(capsys, model_file, tmp_path, monkeypatch):
    import ppl

    ran = []
    monkeypatch.setattr(ppl, "infer", lambda *a, **k: ran.append(1))
    code, out, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", "--method", "nuts",
                         "--num-samples", "1000000000")
    assert code == 1 and out == "" and not ran
    assert err.startswith("Memory error: NUTS with 4 chains × 1000000000 draws would need about ")
    assert "GiB" in err and "Lower --num-samples to at most " in err and "--thin" in err
    code, _, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", "--method", "mh",
                       "--num-samples", "1000000000")
    assert code == 1 and "--thin" in err


def test_the_estimate_counts_what_a_draw_keeps(model_file):
    import jax.numpy as jnp

    import ppl
    from ppl import memory

    program, leaves = ppl.load(model_file).models["m"].program([1.0, 2.0], [0.5, 1.5])
    itemsize = jnp.zeros(()).dtype.itemsize
    est = memory.estimate(program, leaves, ppl.MH(num_samples=100, num_chains=3))
    # one site 'a' and the return value (a scalar each), made on the device and copied to the host
    assert est.draws == 300 and est.record_bytes == 2 * 2 * itemsize and est.total == 300 * 4 * itemsize
    est = memory.estimate(program, leaves, ppl.Importance(num_particles=1000))
    assert est.draws == 1000 and est.record_bytes == 2 * 3 * itemsize   # a, return value, log weight
    assert memory.estimate(program, leaves, ppl.Enumerate()) is None


def test_ppl_infer_refuses_too_many_draws_with_a_clear_error(model_file, monkeypatch):
    import ppl
    from ppl import memory

    model = ppl.load(model_file).models["m"]
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**6)      # a machine with 1 MB free
    with pytest.raises(memory.MemoryLimitError) as e:
        ppl.infer(model, [1.0, 2.0], [0.5, 1.5], method=ppl.MH(num_samples=100_000))
    text = str(e.value)
    assert "MH with 4 chains × 100000 draws would need about 6.1 MiB" in text or "MiB" in text
    assert "976.6 KiB is free" in text and "MH(num_samples=...) of at most" in text
    assert isinstance(e.value, ppl.ModelError)
    with warnings.catch_warnings():   # a short run: its convergence warnings are not the point here
        warnings.simplefilter("ignore")
        post = ppl.infer(model, [1.0, 2.0], [0.5, 1.5], method=ppl.MH(num_samples=100, num_warmup=10))   # fits
    assert np.asarray(post.samples["a"]).shape == (4, 100)


def _regen() -> None:
    for name in CASES:
        _, err = golden(name)
        expected_path(name).write_text(err, encoding="utf-8")
        print(f"wrote {expected_path(name).name}")


if __name__ == "__main__":
    if "--regen" in sys.argv:
        _regen()
    else:
        for case in CASES:
            print(f"=== {case}\n{golden(case)[1]}")


# --------------------------------------------------------------------------- properties: never a raw traceback

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FILE_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_text(tmp_path, name: str, data: bytes):
    from ppl.data import DataError, read_data

    path = tmp_path / name
    path.write_bytes(data)
    try:
        return read_data(path)
    except DataError as err:
        text = err.render()
        assert text.startswith("Data error") and "Traceback" not in text
        return None


@_FILE_SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("xy,;.\"\r\n \t-+e1234567890aN\ufeff")), max_size=60))
def test_any_csv_text_reads_or_is_a_data_error(tmp_path, text):
    got = _read_text(tmp_path, "d.csv", text.encode("utf-8"))
    if got is not None:
        lengths = {len(v) for v in got.values()}
        assert len(lengths) == 1 and lengths.pop() >= 1          # every column has every row
        for column in got.values():
            assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in column)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
                     | st.text(max_size=3),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=2), inner, max_size=2),
                     max_leaves=8)


@_FILE_SETTINGS
@given(value=st.dictionaries(st.sampled_from(["x", "y", "z"]), _JSON, max_size=3))
def test_any_json_value_reads_as_rectangular_numbers_or_is_a_data_error(tmp_path, value):
    got = _read_text(tmp_path, "d.json", json.dumps(value).encode())
    if got is not None:
        for v in got.values():
            arr = np.asarray(v)               # rectangular: NumPy makes a numeric array, never dtype object
            assert arr.dtype.kind in "biuf", (v, arr.dtype)
            assert np.all(np.isfinite(arr))


@_FILE_SETTINGS
@given(columns=st.lists(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=3, max_size=3),
                        min_size=1, max_size=3),
       bom=st.booleans(), newline=st.sampled_from(["\n", "\r\n", "\r"]), trailing=st.integers(0, 2))
def test_csv_values_read_back_exactly(tmp_path, columns, bom, newline, trailing):
    names = [f"c{j}" for j in range(len(columns))]
    rows = [",".join(repr(col[i]) for col in columns) for i in range(3)]
    text = newline.join([",".join(names), *rows]) + newline * (1 + trailing)
    got = _read_text(tmp_path, "d.csv", (b"\xef\xbb\xbf" if bom else b"") + text.encode())
    assert got is not None
    for name, col in zip(names, columns):
        assert [float(v) for v in got[name]] == col


def test_a_failed_write_after_sampling_keeps_the_results(capsys, model_file, tmp_path, monkeypatch):
    from ppl import output

    real = output._write
    calls = []

    def full_disk(post, file):
        calls.append(file)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        real(post, file)

    monkeypatch.setattr(output, "_write", full_disk)
    target = tmp_path / "r.json"
    code, out, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", "--method", "importance",
                         "--num-samples", "50", "--out", target)
    assert code == 1 and "Importance on 'm'" in out          # the summary was printed before
    spare = calls[1]
    assert err == (f"Output error: could not write {target}: No space left on device; the results are saved in "
                   f"{spare} instead\nMove {spare} where you want it.\n")
    assert len(json.loads(pathlib.Path(spare).read_text())["samples"]["a"]) == 50
    pathlib.Path(spare).unlink()


def test_out_never_overwrites_an_input(capsys, model_file, tmp_path):
    data = tmp_path / "d.json"
    before = data.read_text()
    code, out, err = run(capsys, "run", model_file, "--data", data, "--out", data)
    assert code == 1 and out == ""
    assert err == (f"error: --out {data} is the data file: writing there would overwrite it\n"
                   "Give --out another file name.\n")
    assert data.read_text() == before


def test_an_out_of_memory_device_is_said_in_words(model_file, monkeypatch, capsys, tmp_path):
    import jax

    import ppl
    from ppl import memory

    model = ppl.load(model_file).models["m"]

    def exhausted(self, program, args, key):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 21264000000 "
                                         "bytes.\nBufferAssignment OOM Debugging.")

    monkeypatch.setattr(ppl.Importance, "run", exhausted)
    with pytest.raises(memory.MemoryLimitError) as e:
        ppl.infer(model, [1.0, 2.0], [0.5, 1.5], method=ppl.Importance(num_particles=1000))
    assert str(e.value) == ("Memory error: Importance ran out of device memory (its draws alone need about "
                            "23.4 KiB): Out of memory while trying to allocate 21264000000 bytes.\n"
                            "Use fewer particles (Importance(num_particles=...)), or run on a machine with more "
                            "memory.")
    code, out, err = run(capsys, "run", model_file, "--data", tmp_path / "d.json", "--method", "importance")
    assert code == 1 and err.startswith("Memory error: Importance ran out of device memory") and "Traceback" not in err
    assert err.endswith("Use fewer particles (--num-samples), or run on a machine with more memory.\n")

    def other(self, program, args, key):
        raise jax.errors.JaxRuntimeError("INTERNAL: something else")

    monkeypatch.setattr(ppl.Importance, "run", other)
    with pytest.raises(jax.errors.JaxRuntimeError):       # not ours to reword
        ppl.infer(model, [1.0, 2.0], [0.5, 1.5], method=ppl.Importance(num_particles=10))


@pytest.mark.parametrize("item, message", [
    ("theta=[1,2]", "error: --init gives 'theta' shape (2,), but the site 'theta' has shape (3,)\n"
                    "Give 'theta' a value of shape (3,).\n"),
    ("theta=1", "error: --init gives 'theta' a single number, but the site 'theta' has shape (3,)\n"
                "Give 'theta' a value of shape (3,).\n"),
    ("thetta=[1,2,3]", "error: --init thetta=...: the model 'v' has no latent site 'thetta'; its latent sites are "
                       "theta\nDid you mean 'theta'?\n"),
])
def test_init_values_are_checked_against_the_sites(capsys, tmp_path, item, message):
    src = write(tmp_path, "v.ppl", "model v(y: real[]) {\n  theta ~ iid(normal(0, 1), 3)\n"
                                   "  for i in 0..len(y) {\n    y[i] ~ normal(theta[i], 1)\n  }\n}\n")
    data = write(tmp_path, "d.json", '{"y": [1.0, -1.0, 2.0]}')
    code, out, err = run(capsys, "run", src, "--data", data, "--method", "nuts", "--init", item)
    assert code == 1 and out == "" and err == message
