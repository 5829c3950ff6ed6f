"""The builtins of the .ppl language: one registry, read by the checker, the evaluator,
the language reference, the REPL and the syntax highlighter.

Each builtin is declared once, with its name, its implementation, its type rule and its
doc, in the module of its family:

==================  ==============================================================
``math``            elementwise math, reductions, conversions; the constants
``arrays``          linear algebra, orderings, building arrays
``random``          ``sample``, ``flip``, ``mem``, ``map``, ``fold`` (forms)
``dist_functions``  ``iid``, ``truncated``, ``log_density``, ``normal_lcdf`` and kin
``ode``             ``ode_rk45``, ``ode_bdf``
``stan``            Stan's math library by its Stan names
``distributions``   ``normal(loc, scale)`` and the other distributions
``supports``        the supports of ``flat``
==================  ==============================================================

``types`` holds the static types the rules compute with (``Ty``) and ``registry`` what
a builtin function is (``Builtin``). The tables here are the registry:
``FUNCTIONS`` (every builtin function), ``DISTRIBUTIONS``, ``SUPPORTS`` and
``CONSTANTS``; docs/language.md lists exactly these names (a test keeps them in sync).
"""

from __future__ import annotations

from .arrays import ARRAY_FUNCTIONS, matmul_rule
from .dist_functions import DIST_FUNCTION_BUILTINS
from .distributions import DISTRIBUTIONS, FLAT_DOC, Distribution
from .math import CONSTANTS, MATH_FUNCTIONS
from .ode import ODE_FUNCTIONS
from .random import RANDOM_FUNCTIONS
from .registry import Builtin, Constant, merge
from .stan import STAN_FUNCTIONS
from .supports import SUPPORTS, Support
from .types import (
    BOOL, BOOL_INDEX_HINT, INT, NUMERIC, REAL, STRING, TYPE_ALIASES, TYPE_NAMES, UNKNOWN, Ty, TypeProblem, broadcast,
    broadcast_shapes, describe, dist_ty, fun_ty,
)

__all__ = [
    "Ty", "TypeProblem", "UNKNOWN", "INT", "REAL", "BOOL", "STRING", "BOOL_INDEX_HINT",
    "Builtin", "Constant", "Distribution", "Support",
    "FUNCTIONS", "DISTRIBUTIONS", "SUPPORTS", "CONSTANTS", "FLAT_DOC", "TYPE_NAMES", "TYPE_ALIASES",
    "NUMERIC", "describe", "broadcast", "broadcast_shapes", "dist_ty", "fun_ty", "matmul_rule",
]

#: every builtin function, by name
FUNCTIONS: dict[str, Builtin] = merge(
    MATH_FUNCTIONS, ARRAY_FUNCTIONS, RANDOM_FUNCTIONS, DIST_FUNCTION_BUILTINS, ODE_FUNCTIONS, STAN_FUNCTIONS,
)
