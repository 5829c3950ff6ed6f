"""docs/architecture.md names modules by path; every path it names must exist, so the
document cannot go stale silently when a module is moved, split or renamed.

A backticked word that looks like a path is checked: with a ``/`` (``semantics/ir.py``,
``inference/smc/``, ``ppl/syntax/grammar.lark``) it must exist relative to the repository
root (a leading ``../`` is outside the repository and is skipped); a bare module name
(``driver.py``) must exist somewhere under the four code folders, ``tests/`` or
``benchmarks/``. A ``: name`` after a path (``ppl/trace.py: trace``) is not part of it."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
FOLDERS = ("ppl", "inference", "semantics", "stdlib", "tests", "benchmarks")
SUFFIXES = (".py", ".md", ".lark", ".toml")


def named_paths(text: str) -> list[str]:
    """The path-like words of ``text``'s code spans (each span cut at whitespace, ':' or '(')."""
    out = []
    for span in re.findall(r"`([^`\n]+)`", text):
        for word in re.split(r"[\s:(),]+", span):
            word = word.rstrip(".")
            if not re.search(r"\w", word) or word.startswith("../") or "<" in word or "*" in word:
                continue
            if word.endswith(SUFFIXES) or (word.endswith("/") and re.fullmatch(r"[\w./-]+", word)):
                out.append(word)
    return out


def _exists(word: str) -> bool:
    if "/" in word.rstrip("/"):
        return (ROOT / word).exists()
    if word.endswith("/"):
        return (ROOT / word).is_dir() or any(p.is_dir() for f in FOLDERS for p in (ROOT / f).rglob(word.rstrip("/")))
    return (ROOT / word).exists() or any(True for f in FOLDERS for _ in (ROOT / f).rglob(word))


def test_the_check_sees_paths():
    words = named_paths("run `semantics/ir.py` and `inference/smc/`, `driver.py: build`, `../elsewhere/X.md`, `x += e`")
    assert words == ["semantics/ir.py", "inference/smc/", "driver.py"]
    assert not _exists("semantics/no_such_module.py") and not _exists("no_such_module.py")


def test_every_path_in_architecture_md_exists():
    words = named_paths(DOC.read_text())
    assert len(words) > 50  # the document names its modules
    missing = sorted({w for w in words if not _exists(w)})
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
