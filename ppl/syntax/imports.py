"""Loading the modules a .ppl file imports.

``import "path/to/file.ppl"`` is relative to the importing file's folder (``..``
is allowed; absolute paths are not, and the path must end in ``.ppl``).
``import stdlib.name`` (or ``stdlib.a.b``) loads ``name.ppl`` (``a/b.ppl``) from
the standard library folder, ``stdlib/lib`` of the installed package.

An import makes the imported file's own top-level definitions (models,
functions, constants) visible; it does not re-export what that file imports.
Each file is read once per resolution, even if several files import it; an
import cycle is an error that shows the chain. Nothing but the imported .ppl
files is opened, and nothing in them is run.
"""

from __future__ import annotations

import dataclasses
import os
from importlib.util import find_spec

from ppl.stdlib.errors import CheckError, PPLError

from . import ast
from .annotate import annotate
from .check import check, raise_if_errors
from .parser import parse, parse_file

__all__ = ["resolve_imports", "load_file", "load_source", "default_stdlib_dir"]


def default_stdlib_dir() -> str:
    """The folder of the standard library's .ppl files (``stdlib/lib`` of the package)."""
    spec = find_spec("ppl.stdlib")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    base = locations[0] if locations else os.path.join(os.path.dirname(__file__), "..", "..", "stdlib")
    return os.path.join(base, "lib")


def resolve_imports(module: ast.Module, base_dir: str | os.PathLike, stdlib_dir: str | os.PathLike | None = None
                    ) -> ast.Module:
    """``module`` with every ``Import.module`` loaded (recursively) and re-annotated.

    ``base_dir`` is the folder of ``module``'s file; ``stdlib_dir`` the folder of
    ``import stdlib.NAME`` (default: the package's). Raises ``SyntaxError_`` if
    an imported file does not parse, and ``CheckErrors`` for imports that cannot
    be loaded (missing file, absolute path, not .ppl, a cycle).
    """
    resolver = _Resolver(os.fspath(stdlib_dir) if stdlib_dir is not None else default_stdlib_dir())
    top = _disk_key(os.fspath(base_dir), os.path.basename(module.file) or "<string>")
    out = resolver.resolve(module, os.fspath(base_dir), (top,))
    raise_if_errors(resolver.errors)
    return out


def load_source(source: str, file: str = "<string>", base_dir: str | os.PathLike = ".",
                data_shapes: dict | None = None, stdlib_dir: str | os.PathLike | None = None) -> ast.Module:
    """Parse, resolve imports and check; return the module or raise the errors."""
    module = parse(source, file)
    module = resolve_imports(module, base_dir, stdlib_dir)
    raise_if_errors(check(module, data_shapes))
    return module


def load_file(path: str | os.PathLike, data_shapes: dict | None = None,
              stdlib_dir: str | os.PathLike | None = None) -> ast.Module:
    """Read a .ppl file, load its imports and check it; return the module or raise
    ``SyntaxError_`` / ``CheckErrors``."""
    path = os.fspath(path)
    module = parse_file(path)
    module = resolve_imports(module, os.path.dirname(path) or ".", stdlib_dir)
    raise_if_errors(check(module, data_shapes))
    return module


def _disk_key(folder: str, name: str) -> str:
    return os.path.normpath(os.path.abspath(os.path.join(folder, name)))


class _Resolver:
    def __init__(self, stdlib_dir: str):
        self.stdlib_dir = stdlib_dir
        self.cache: dict[str, ast.Module] = {}
        self.errors: list[PPLError] = []

    def resolve(self, module: ast.Module, folder: str, chain: tuple[str, ...]) -> ast.Module:
        items = []
        imported_constants: set[str] = set()
        changed = False
        for item in module.items:
            if isinstance(item, ast.Import):
                loaded = self._load(item, module, folder, chain)
                if loaded is not None:
                    item = dataclasses.replace(item, module=loaded)
                    imported_constants |= set(loaded.constants)
                    changed = True
            items.append(item)
        if not changed:
            return module
        out = dataclasses.replace(module, items=tuple(items))
        return annotate(out, imported_constants)

    def _load(self, imp: ast.Import, importer: ast.Module, folder: str, chain: tuple[str, ...]):
        path = imp.path
        if imp.stdlib:
            parts = path[: -len(".ppl")].split("/")
            if not all(p.isidentifier() for p in parts):
                self._error(f"'{'.'.join(parts)}' is not a standard library name", imp)
                return None
            disk_folder, display_folder = self.stdlib_dir, "stdlib"
        else:
            if os.path.isabs(path) or path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
                self._error(
                    f"cannot import '{path}': import paths are relative to the importing file",
                    imp, "Write the path from this file's folder, e.g. import \"lib/helpers.ppl\".",
                )
                return None
            if not path.endswith(".ppl"):
                self._error(f"cannot import '{path}': only .ppl files can be imported", imp)
                return None
            disk_folder = folder
            display_folder = os.path.dirname(importer.file) if importer.file and not importer.file.startswith("<") else ""
        disk = _disk_key(disk_folder, path)
        display = os.path.normpath(os.path.join(display_folder, path)) if display_folder else os.path.normpath(path)
        if disk in chain:
            start = chain.index(disk)
            cycle = [os.path.basename(c) for c in chain[start:]] + [os.path.basename(disk)]
            self._error(f"import cycle: {' -> '.join(cycle)}", imp,
                        "Move the shared definitions into a file that both can import.")
            return None
        if disk in self.cache:
            return self.cache[disk]
        try:
            with open(disk, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            if imp.stdlib:
                self._error(f"cannot import stdlib.{path[:-4].replace('/', '.')}: the standard library has no "
                            f"file '{path}'", imp)
            else:
                self._error(f"cannot import '{path}': there is no file '{display}'", imp,
                            "Import paths are relative to the folder of the importing file.")
            return None
        except UnicodeDecodeError:
            self._error(f"cannot import '{path}': the file is not UTF-8 text", imp)
            return None
        except OSError as e:
            self._error(f"cannot import '{path}': {e.strerror or 'the file cannot be read'}", imp)
            return None
        sub = parse(text, display)
        sub = self.resolve(sub, os.path.dirname(disk), chain + (disk,))
        self.cache[disk] = sub
        return sub

    def _error(self, message: str, imp: ast.Import, hint: str | None = None) -> None:
        self.errors.append(CheckError(message, imp.span, hint))

