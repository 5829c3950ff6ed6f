"""The documents' code runs as written: README.md, docs/tutorial.md, docs/api.md, docs/language.md.

Each document is played in order, in a fresh folder, as a reader would:

* a fenced block preceded by ``<!-- file: NAME -->`` is saved as ``NAME`` (and,
  for a ``ppl`` block, loaded with ``ppl.load``, which must fail with a ppl error
  when the marker says ``<!-- file: NAME (has an error) -->``);
* any other ``ppl`` block is loaded with ``ppl.loads`` (parsed, checked, lowered);
* ``python`` blocks run one after another in one namespace;
* in ``console`` blocks each ``$ ppl ...`` command runs through ``ppl.cli.main``
  and must exit with 0 (or the status in a preceding ``<!-- exit: N -->``);
  ``$ ppl repl`` feeds the lines typed after ``ppl>`` / ``...`` prompts to the
  REPL, which must report no error. The output shown under a command must be
  honest: each shown line without digits or table rules (headers, messages,
  notes) must appear in the real output. Other commands (``pip``, ``python``)
  are set-up steps and are not run here;
* a block preceded by ``<!-- skip -->`` is not run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import pathlib
import re
import shlex
import warnings

import pytest

import ppl
from ppl.cli import main
from ppl.repl import run_repl

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", "docs/tutorial.md", "docs/api.md", "docs/language.md", "docs/causal.md", "docs/vi.md",
             "docs/devices.md"]

_FENCE = re.compile(r"^```([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*(file|exit|skip)\s*:?\s*(.*?)\s*-->\s*$")
_TABLE = set("┏┃┡│└━┓┩┛┳╇╋┗┻")


@dataclasses.dataclass
class Block:
    lang: str
    text: str
    line: int                 # the line of the opening fence
    file: str | None = None
    bad: bool = False         # a file that must fail to load (it shows an error message)
    exit: int = 0
    skip: bool = False


def blocks(path: pathlib.Path) -> list[Block]:
    """The fenced code blocks of a markdown file (fences at the start of a line), with their markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i, pending = [], 0, {}
    while i < len(lines):
        marker = _MARKER.match(lines[i])
        fence = _FENCE.match(lines[i])
        if marker:
            kind, value = marker.groups()
            pending[kind] = value
        elif fence:
            start = i
            i += 1
            body = []
            while i < len(lines) and lines[i].rstrip() != "```":
                body.append(lines[i])
                i += 1
            b = Block(fence.group(1), "\n".join(body) + "\n", start + 1)
            file = (pending.get("file") or "").split()
            b.file = file[0] if file else None
            b.bad = "error" in file[1:] or "error)" in file[1:]
            b.exit = int(pending.get("exit") or 0)
            b.skip = "skip" in pending
            out.append(b)
            pending = {}
        elif lines[i].strip():
            pending = {}
        i += 1
    return out


def honest(shown: list[str], actual: str) -> list[str]:
    """The shown lines (without digits or table rules) that the real output lacks."""
    real = {line.strip() for line in actual.splitlines()}
    missing = []
    for line in shown:
        text = line.strip()
        if not text or re.search(r"\d", text) or _TABLE & set(text):
            continue
        if text not in real:
            missing.append(text)
    return missing


def run_console(block: Block, where: str) -> None:
    commands: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:].strip(), []))
        elif commands:
            commands[-1][1].append(line)
    for command, shown in commands:
        argv = shlex.split(command)
        if argv[0] != "ppl":
            continue  # set-up steps (pip, python -m venv, .) are checked by hand, not here
        if argv[1:] in ([], ["repl"]):
            typed = [re.sub(r"^(ppl>|\.\.\.) ?", "", s) for s in shown if re.match(r"^(ppl>|\.\.\.)", s)]
            out = io.StringIO()
            code = run_repl(io.StringIO("\n".join(typed) + "\n"), out)
            actual = out.getvalue()
            shown = [s for s in shown if not re.match(r"^(ppl>|\.\.\.)", s)]
        else:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(argv[1:])
                except SystemExit as done:  # argparse: --help, or a usage error
                    code = done.code
            actual = out.getvalue() + err.getvalue()
        assert code == block.exit, f"{where}: `{command}` exited with {code}:\n{actual}"
        missing = honest(shown, actual)
        assert not missing, f"{where}: `{command}` did not print {missing}; it printed:\n{actual}"


def play(document: str, tmp_path: pathlib.Path, monkeypatch) -> None:
    from ppl.inference.mcmc.base import SamplingWarning

    path = ROOT / document
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc__"}
    ran = 0
    for b in blocks(path):
        where = f"{document}, line {b.line}"
        if b.skip:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplingWarning)  # diagnostics of short runs, printed for readers
            if b.file:
                (tmp_path / b.file).write_text(b.text, encoding="utf-8")
                if b.lang == "ppl" and b.bad:
                    with pytest.raises(ppl.PPLError):
                        ppl.load(tmp_path / b.file)
                elif b.lang == "ppl":
                    ppl.load(tmp_path / b.file)
            elif b.lang == "ppl":
                ppl.loads(b.text, f"{document}#{b.line}")
            elif b.lang == "python":
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(b.text, where, "exec"), namespace)
            elif b.lang == "console":
                run_console(b, where)
            else:
                continue
        ran += 1
    assert ran, f"{document} has no code to run"


# The chapters on causal reasoning, variational inference and devices are played by
# tests/test_docs_chapters.py: a file of its own, so the two test workers (xdist, one file each)
# share the longest documents.
CHAPTERS = ["docs/causal.md", "docs/vi.md", "docs/devices.md"]


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d not in CHAPTERS])
def test_document_runs_as_written(document, tmp_path, monkeypatch):
    play(document, tmp_path, monkeypatch)


# ---------------------------------------------------------------------------
# The harness itself


def test_honest_ignores_numbers_and_rules_but_not_words():
    actual = "NUTS on 'coin' (compiled engine)   \n│ p │ 0.66 │\nwrote out.json\n"
    assert honest(["NUTS on 'coin' (compiled engine)", "│ p │ 0.7 │", "log evidence: -7.2"], actual) == []
    assert honest(["HMC on 'coin' (compiled engine)"], actual) == ["HMC on 'coin' (compiled engine)"]


def test_markers_attach_to_the_next_block(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("text\n<!-- file: a.ppl -->\n```ppl\nx = 1\n```\n\n<!-- exit: 1 -->\n```console\n$ ppl\n```\n"
                   "<!-- skip -->\n\n```python\nboom\n```\nwords\n```python\nok = 1\n```\n"
                   "<!-- file: b.ppl (has an error) -->\n```ppl\nx = \n```\n")
    a, b, c, d, e = blocks(doc)
    assert (a.lang, a.file, a.text, a.bad) == ("ppl", "a.ppl", "x = 1\n", False)
    assert (e.file, e.bad) == ("b.ppl", True)
    assert (b.lang, b.exit, b.file) == ("console", 1, None)
    assert c.skip and not d.skip and d.text == "ok = 1\n"


def test_a_failing_command_fails_the_check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="exited with 1"):
        run_console(Block("console", "$ ppl check missing.ppl\n", 1), "here")
    (tmp_path / "m.ppl").write_text("model m() {\n  x ~ normal(0, 1)\n}\n")
    with pytest.raises(AssertionError, match="did not print"):
        run_console(Block("console", "$ ppl check m.ppl\nm.ppl: fine\n", 1), "here")
    run_console(Block("console", "$ ppl check m.ppl\nm.ppl: ok (models: m)\n", 1), "here")


@pytest.mark.parametrize("document", DOCUMENTS)
def test_ppl_blocks_highlight_without_errors(document):
    """The pygments lexer (used by the REPL, and for ```ppl blocks) knows every token of the documents."""
    from ppl.syntax.highlight import PplLexer

    lexer = PplLexer()
    for b in blocks(ROOT / document):
        if b.lang == "ppl":
            bad = [v for t, v in lexer.get_tokens(b.text) if "Error" in str(t)]
            assert not bad, f"{document}, line {b.line}: {bad}"
