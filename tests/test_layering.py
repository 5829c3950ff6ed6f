"""The four code folders form one chain; imports run down it only:
ppl (front ends, API) -> inference -> semantics -> stdlib."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = {"ppl": 3, "inference": 2, "semantics": 1, "stdlib": 0}
FOLDER_LAYER = {"ppl": "ppl", "inference": "inference", "semantics": "semantics", "stdlib": "stdlib"}


def layer_of_module(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "ppl":
        return None
    if len(parts) > 1 and parts[1] in ("inference", "semantics", "stdlib"):
        return parts[1]
    return "ppl"


def package_of(path: pathlib.Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    else:
        parts = parts[:-1]
    return ["ppl"] + (parts[1:] if parts[0] == "ppl" else parts)


def imports_of(path: pathlib.Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package_of(path)[: len(package_of(path)) - (node.level - 1)]
                yield node.lineno, ".".join(base + ([node.module] if node.module else []))
            elif node.module:
                yield node.lineno, node.module


FILES = [p for folder in FOLDER_LAYER for p in sorted((ROOT / folder).rglob("*.py"))]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_down_the_chain(path):
    own = FOLDER_LAYER[path.relative_to(ROOT).parts[0]]
    for line, module in imports_of(path):
        target = layer_of_module(module)
        if target is None:
            continue
        assert LAYERS[target] <= LAYERS[own], (
            f"{path.relative_to(ROOT)}:{line} imports {module} ({target}), "
            f"which is above {own} in the chain ppl -> inference -> semantics -> stdlib")


def test_folders_are_not_importable_under_a_second_name(monkeypatch):
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(ROOT))
    for name in ("semantics", "inference", "stdlib"):
        sys.modules.pop(name, None)
        with pytest.raises(ImportError, match=f"ppl.{name}"):
            importlib.import_module(name)
        sys.modules.pop(name, None)
