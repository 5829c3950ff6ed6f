"""The .ppl language front end: text -> checked AST.

    parse(source, file)      text -> ast.Module (SyntaxError_ on bad text)
    parse_file(path)         the same for a file on disk
    resolve_imports(m, dir)  load the modules that m imports
    check(m, data_shapes)    the list of CheckError in m (empty when well formed)
    load_file(path)          all three; raises SyntaxError_ or CheckErrors

The language is described in docs/language.md; the AST in ``ppl.syntax.ast``;
the builtin names (functions, distributions, supports) in ``ppl.syntax.builtins``.
"""

from . import ast, builtins
from .check import CheckErrors, check, raise_if_errors
from .imports import default_stdlib_dir, load_file, load_source, resolve_imports
from .parser import parse, parse_file

__all__ = [
    "ast", "builtins", "parse", "parse_file", "resolve_imports", "check", "CheckErrors",
    "raise_if_errors", "load_file", "load_source", "default_stdlib_dir",
]
