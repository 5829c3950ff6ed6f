"""The standard library written in .ppl (``stdlib/lib``), reached by ``import stdlib.NAME``,
and the guarantee that loading a .ppl file runs no Python and opens only .ppl files."""

from __future__ import annotations

import builtins
import io
import math
import pathlib
import re

import numpy as np
import pytest

import ppl
from ppl.syntax import imports as I

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIB = ROOT / "stdlib" / "lib"


def test_the_package_finds_its_library():
    assert pathlib.Path(I.default_stdlib_dir()).resolve() == LIB.resolve()
    assert {p.stem for p in LIB.glob("*.ppl")} >= {"discrete", "mixtures"}


@pytest.mark.parametrize("path", sorted(LIB.glob("*.ppl")), ids=lambda p: p.stem)
def test_every_library_file_loads_and_explains_itself(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# stdlib.{path.stem}:"), "start with a line saying what the file is for"
    assert f"import stdlib.{path.stem}" in text, "show how to import it"
    module = ppl.load(path)
    assert module.functions or module.models


def test_loads_resolves_stdlib_through_the_package(tmp_path, monkeypatch):
    """``ppl.loads``/``ppl.load`` find ``stdlib.NAME`` where the installed package keeps it, not
    next to the source tree (a wheel puts it under ppl/stdlib/lib)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "only_here.ppl").write_text("def seven() { return 7 }\n")
    monkeypatch.setattr(I, "default_stdlib_dir", lambda: str(lib))
    m = ppl.loads("import stdlib.only_here\nmodel m() { return seven() }\n")
    assert ppl.infer(m.m).probs() == {7: 1.0}


LIBRARY_USER = """\
import stdlib.discrete
import stdlib.mixtures

model pick() {
  return uniform_draw([10, 20, 30])
}

model two_picks() {
  a = uniform_draw([0, 1])
  b = uniform_draw([0, 1])
  return a + b
}

model heads(n: int) {
  return count_heads(n, 0.3)
}

model tails() {
  return tails_before_head(0.5)
}

model mix(theta: real, y: real[]) {
  return normal_mix_log_density(theta, -1, 1, 2, 0.5, y)
}
"""


@pytest.fixture(scope="module")
def lib_user():
    return ppl.loads(LIBRARY_USER)


def test_uniform_draw_is_uniform(lib_user):
    assert ppl.infer(lib_user.pick).probs() == pytest.approx({10: 1 / 3, 20: 1 / 3, 30: 1 / 3}, abs=1e-6)
    # two calls draw independently, under 'uniform_draw' and 'uniform_draw_1'
    post = ppl.infer(lib_user.two_picks)
    assert post.probs() == pytest.approx({0: 0.25, 1: 0.5, 2: 0.25}, abs=1e-6)


def test_count_heads_is_binomial(lib_user):
    from scipy.stats import binom

    table = ppl.infer(lib_user.heads, 4).probs()
    assert table == pytest.approx({k: binom.pmf(k, 4, 0.3) for k in range(5)}, abs=1e-6)


def test_tails_before_head_is_geometric(lib_user):
    post = ppl.infer(lib_user.tails, method=ppl.Enumerate(max_depth=12))
    assert post.engine == "eager"
    kept = 1 - 0.5**12
    for n, p in post.probs().items():
        assert abs(p - 0.5 ** (n + 1) / kept) < 1e-9


def test_mixture_density_matches_scipy(lib_user):
    from scipy.stats import norm

    y = np.array([-2.0, 0.0, 1.5, 3.0])
    got = np.asarray(ppl.infer(lib_user.mix, 0.3, y.tolist()).returns)[0]
    want = np.log(0.3 * norm.pdf(y, -1, 1) + 0.7 * norm.pdf(y, 2, 0.5))
    np.testing.assert_allclose(got, want, rtol=1e-5)


# ---------------------------------------------------------------------------
# A .ppl file is data: loading it runs no Python and opens only .ppl files


def _write(folder: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_loading_opens_only_the_ppl_files_it_imports(tmp_path, monkeypatch):
    _write(tmp_path, "lib/helpers.ppl", "let scale = 2.0\ndef double(x) { return x * scale }\n")
    _write(tmp_path, "secret.txt", "do not read")
    _write(tmp_path, "lib/__init__.py", "raise RuntimeError('a .ppl import ran Python')\n")
    main = _write(tmp_path, "main.ppl",
                  'import "lib/helpers.ppl"\nimport stdlib.mixtures\n'
                  "model m(y: real[]) {\n  mu ~ normal(0, double(1))\n  y ~ normal(mu, 1)\n}\n")
    opened: list[str] = []
    real_builtin_open, real_io_open = builtins.open, io.open

    def spy(real):
        def open_(file, *args, **kwargs):
            opened.append(str(file))
            return real(file, *args, **kwargs)
        return open_

    def forbidden(*args, **kwargs):
        raise AssertionError("loading a .ppl file ran Python code")

    monkeypatch.setattr(builtins, "open", spy(real_builtin_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    for name in ("exec", "eval", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    module = ppl.load(main)
    monkeypatch.undo()
    assert sorted(pathlib.Path(p).name for p in opened) == ["helpers.ppl", "main.ppl", "mixtures.ppl"]
    assert module.models["m"].name == "m"
    assert ppl.infer(module.m, [0.5], method=ppl.Importance(num_particles=200)).engine == "compiled"


@pytest.mark.parametrize("payload", [
    '__import__("os").system("touch PWNED")',
    'exec("open(\'PWNED\', \'w\')")',
    'open("PWNED", "w")',
])
def test_python_in_a_ppl_file_is_only_text(tmp_path, monkeypatch, payload):
    """Python written in a .ppl file is rejected by the parser or the checker; nothing runs."""
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, "evil.ppl", f"x = {payload}\nmodel m() {{ return x }}\n")
    with pytest.raises(ppl.PPLError):
        ppl.load(path)
    assert not (tmp_path / "PWNED").exists()


def test_no_python_evaluation_in_the_front_end_source():
    """The front end (parser, checker, imports, evaluator, REPL, CLI) never evaluates text as Python."""
    files = [*(ROOT / "ppl" / "syntax").rglob("*.py"), *(ROOT / "ppl" / "evaluate").glob("*.py"),
             *(ROOT / "ppl" / "repl").glob("*.py"), ROOT / "ppl" / "cli.py"]
    assert len(files) > 30  # the folders are there
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?<![\w.])(eval|exec|compile)\(", text), path.name
        assert "literal_eval" not in text and "__import__" not in text and "import_module" not in text, path.name
        assert "pickle" not in text, path.name


def test_log_mix_is_stable_far_in_the_tails(lib_user):
    # exp(-1e4) underflows; the log-sum-exp form keeps the answer finite
    got = float(np.asarray(ppl.infer(lib_user.mix, 0.5, [200.0]).returns).ravel()[0])
    assert math.isfinite(got)
