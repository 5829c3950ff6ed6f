"""Evaluating the ``.ppl`` AST: a checked module -> models, Python callables that perform ppl's effects.

This is an interpreter of the tree, not a compiler: evaluation gives every construct of the language its meaning in terms of the
effects of ``ppl.semantics.effects`` (``sample``, ``observe``, ``factor``,
``plate``, ``scan``, ``cond``, ``mem``, sub-model calls). The callable is then
traced by the same tracer as a decorated Python function, so a ``.ppl`` model
and its Python twin produce the same IR; when a program needs concrete values
(recursion on a random condition, a ``return`` inside an ``if`` on a random
value, a random loop bound), evaluation raises ``NeedsDynamic`` at the user's
text and the eager engine runs the same callable with concrete values.

No Python from the file is ever run: the evaluator (``evaluator``) interprets the tree, one rule
per node kind (``statements``, ``loops``, ``expressions``, ``calls``); ``modules`` builds a
``PplModule`` and holds ``load``/``loads``; ``values``, ``handlers``, ``facts``, ``indexing``
and ``runtime`` are the pieces they share.

Loops: a ``for`` with no carried state whose body is a straight line of
statements (no nested loops, branches, returns or calls of user functions)
runs as one vectorised ``plate`` (the loop variable is the whole index
vector); any other loop is a ``scan`` carrying the variables it rebinds, with
the names first drawn in it collected, one value per iteration.
"""

from .modules import PplModule, evaluate_module, load, loads

__all__ = ["load", "loads", "PplModule", "evaluate_module"]
