"""Every Python example runs: each ``main()`` asserts its own expected result."""

import pathlib
import runpy

import pytest

HERE = pathlib.Path(__file__).parent
SCRIPTS = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("test_"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_python_example(path):
    runpy.run_path(str(path), run_name="__main__")
