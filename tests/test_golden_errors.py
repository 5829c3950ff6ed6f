"""Golden tests: every bad program in tests/errors/NAME.ppl renders exactly NAME.expected.

A first line ``# data: {...}`` (JSON) gives the ``data_shapes`` for the check.
Files whose name starts with ``_`` are helpers (imported by another program).

After an intended change of a message, regenerate and review every diff by eye:

    /work/venv/bin/python tests/test_golden_errors.py --regen
"""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

from ppl.stdlib.errors import PPLError
from ppl.syntax import CheckErrors, check, parse, resolve_imports

ERRORS = pathlib.Path(__file__).parent / "errors"
CASES = sorted(p.stem for p in ERRORS.glob("*.ppl") if not p.name.startswith("_"))


def render(name: str) -> str:
    """What the front end says about tests/errors/NAME.ppl."""
    text = (ERRORS / f"{name}.ppl").read_text(encoding="utf-8")
    data = None
    first = text.splitlines()[0] if text else ""
    if first.startswith("# data:"):
        data = json.loads(first[len("# data:"):])
    try:
        module = parse(text, f"{name}.ppl")
        module = resolve_imports(module, ERRORS, stdlib_dir=ERRORS / "stdlib")
        errors = check(module, data)
    except PPLError as e:
        return e.render()
    return CheckErrors(errors).render() if errors else "no errors"


def test_there_are_enough_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", CASES)
def test_golden_error(name):
    expected = (ERRORS / f"{name}.expected").read_text(encoding="utf-8")
    got = render(name)
    assert got != "no errors", f"{name}.ppl is expected to be wrong but checks clean"
    assert got + "\n" == expected, f"\n--- got ---\n{got}\n--- expected ---\n{expected}"


def test_every_error_names_its_place():
    # the message shape: a located head, a numbered excerpt with a caret, words
    for name in CASES:
        got = render(name)
        head = got.splitlines()[0]
        assert head.startswith(("Syntax error in '", "Semantic error in '")), name
        assert ", line " in head and ", column " in head, name
        assert "^" in got and " | " in got, name
        for word in ("__ANON", "RBRACE", "LPAR", "_SEP", "$END", "Token("):
            assert word not in got, (name, word)


def _regen() -> None:
    for name in CASES:
        (ERRORS / f"{name}.expected").write_text(render(name) + "\n", encoding="utf-8")
        print(f"wrote {name}.expected")


if __name__ == "__main__":
    if "--regen" in sys.argv:
        _regen()
    else:
        for case in CASES:
            print(f"=== {case}\n{render(case)}\n")
