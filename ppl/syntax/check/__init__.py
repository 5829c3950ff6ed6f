"""The checker: finds the mistakes in a parsed program before anything runs.

``check(module, data_shapes)`` returns a list of ``CheckError`` (empty when the
program is well formed); ``CheckErrors`` holds several and renders them all.
It reports, collecting as many as it can:

* names that are not defined (with "did you mean" suggestions), names that may
  be unbound (assigned in one branch of an ``if`` only, or only inside a loop);
* calls with the wrong number of arguments (builtins, distributions, ``def``s,
  models, lambdas), unknown distributions and supports, a value that is not a
  function being called;
* types and shapes known from annotations, literals and ``data_shapes``:
  indexing a scalar, too many indices, a real where an integer is needed (loop
  bounds, indices, sizes), an array where one value is needed, shapes that do
  not broadcast, data that do not match their annotation;
* misuse of ``~``: a left side that is not a variable, a right side that is
  not a distribution, ``~`` on a name bound by ``=`` at the same level, the
  same address drawn twice, a flat prior on data;
* ``return`` outside a function or inside a loop, code after ``return``,
  ``condition``/``factor`` of the wrong kind of value, expressions whose value
  is thrown away, statements that cannot be at the top level of a file.

Rules are one method per node kind (``_stmt_Tilde``, ``_expr_Call``, ...), grouped by part of the
language: ``definitions``, ``statements``, ``tilde``, ``expressions``, ``calls``; ``checker`` joins
them into one ``Checker``, ``scopes`` holds what names mean, ``words`` how things read in a message.
The checker reads the tree only; it evaluates nothing.
"""

from .checker import check
from .errors import CheckErrors, raise_if_errors

__all__ = ["check", "CheckErrors", "raise_if_errors"]
