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


# ---------------------------------------------------------------------------
# The compiled interpreter is public: nothing outside semantics/ reaches into its private names.

def _semantics_aliases(tree) -> set[str]:
    """Local names bound to a module of ppl.semantics (``from ppl.semantics import compile as C``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ppl.semantics"):
            for alias in node.names:
                names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ppl.semantics") and alias.asname:
                    names.add(alias.asname)
    return names


def private_uses_of_semantics(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ppl.semantics"):
            for part in node.module.split(".")[2:]:
                if part.startswith("_") and not part.startswith("__"):
                    found.append(f"{node.lineno}: from {node.module}")
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{node.lineno}: import {alias.name} from {node.module}")
    aliases = _semantics_aliases(tree)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


OUTSIDE_SEMANTICS = [p for folder in ("ppl", "inference", "stdlib", "benchmarks", "examples")
                     for p in sorted((ROOT / folder).rglob("*.py"))]


@pytest.mark.parametrize("path", OUTSIDE_SEMANTICS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_semantics_names_outside_it(path):
    found = private_uses_of_semantics(path)
    assert not found, f"{path.relative_to(ROOT)} uses private names of ppl.semantics: {found}"


def test_the_private_name_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from ppl.semantics import compile as C\nC._hidden()\nfrom ppl.semantics.ir import _x\n")
    assert len(private_uses_of_semantics(bad)) == 2


# ---------------------------------------------------------------------------
# JAX's internals are touched in one module only.

JAX_INTERNALS = ("jax.core", "jax.interpreters", "jax.extend", "jax._src")
COMPAT = ROOT / "stdlib" / "jax_compat.py"


def internal_jax_uses(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute):
            names = [ast.unparse(node)]
        for name in names:
            if any(name == m or name.startswith(m + ".") for m in JAX_INTERNALS):
                found.append(f"{node.lineno}: {name}")
                break
    return found


@pytest.mark.parametrize("path", [p for p in FILES if p != COMPAT], ids=lambda p: str(p.relative_to(ROOT)))
def test_jax_internals_only_in_the_compat_module(path):
    found = internal_jax_uses(path)
    assert not found, f"{path.relative_to(ROOT)} uses JAX internals outside stdlib/jax_compat.py: {found}"


def test_the_compat_module_exists_and_the_check_can_fail(tmp_path):
    assert internal_jax_uses(COMPAT), "the compatibility module is where JAX internals are used"
    bad = tmp_path / "bad.py"
    bad.write_text("import jax\nx = isinstance(1, jax.core.Tracer)\nfrom jax._src import core\n")
    assert {int(f.split(":")[0]) for f in internal_jax_uses(bad)} == {2, 3}


def test_the_repl_does_not_import_the_command_line():
    """Shared commands live in ppl/commands.py; the REPL (the package ppl/repl/) never imports
    ppl/cli.py (no cycle)."""
    files = sorted((ROOT / "ppl" / "repl").glob("*.py"))
    assert len(files) > 1
    found = [(f.name, m) for f in files for _, m in imports_of(f) if m == "ppl.cli" or m.startswith("ppl.cli.")]
    assert not found
