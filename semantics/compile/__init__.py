"""The compiled engine: static IR -> pure JAX functions.

- :mod:`.interpreter`: the one interpreter (a rule per IR node kind) and :func:`run`;
- :mod:`.modes`: what happens at a random choice, one mode per way of running a program,
  each with its law;
- :mod:`.gfi`: the generative-function interface (``simulate``, ``log_density``,
  ``generate``, ``regenerate``, ``update``, and the unconstrained forms gradient methods use),
  each with its mathematical specification;
- :mod:`.data_only`, :mod:`.data_checks`: the checks that read only the data, made once per run
  (``check_data``) so that a density compiled inside ``trusting(program)`` leaves them out.

An inference family adds a way of running programs by subclassing :class:`Mode` (or
composing the modes here) and calling :func:`run`; it never needs the interpreter's insides.
"""

from ppl.semantics.compile.data_checks import check_data
from ppl.semantics.compile.data_only import data_only_checks, trusting
from ppl.semantics.compile.gfi import (
    Regenerated,
    constrain,
    generate,
    log_density,
    log_density_unconstrained,
    regenerate,
    run_unconstrained,
    simulate,
    site_log_densities,
    unconstrained_shapes,
    update,
)
from ppl.semantics.compile.interpreter import (
    Accumulator,
    Interpreter,
    Trace,
    address_hash,
    nan_unless,
    params_ok,
    run,
    sum_terms,
)
from ppl.semantics.compile.modes import (
    Drawn,
    Generate,
    Given,
    Inverted,
    Kept,
    Mode,
    Regenerate,
    ShapeProbe,
    Simulate,
    SupportProbe,
    probe_supports,
    SupportProblem,
    Unconstrained,
)

__all__ = [
    "Trace", "Accumulator", "Interpreter", "run", "address_hash", "sum_terms", "params_ok", "nan_unless",
    "Mode", "Simulate", "Given", "Generate", "Unconstrained", "Drawn", "Inverted", "Regenerate", "Kept",
    "ShapeProbe", "SupportProbe", "SupportProblem", "probe_supports",
    "simulate", "log_density", "generate", "regenerate", "Regenerated", "update",
    "log_density_unconstrained", "constrain", "run_unconstrained", "site_log_densities", "unconstrained_shapes",
    "check_data", "data_only_checks", "trusting",
]
