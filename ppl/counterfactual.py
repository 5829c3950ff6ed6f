"""``ppl.counterfactual``: the model of a counterfactual world, and the probabilities of causation.

``counterfactual(model, observed={...}, do={...})`` is a model whose sites
are the counterfactual world's and whose return value is the model's return
value there: the twin network of ``inference/causal/twin.py`` (abduction,
action, prediction in one program), run by any method of ``ppl.infer``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppl.inference.causal.twin import twin_program
from ppl.model import Model
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["counterfactual", "Counterfactual", "probabilities_of_causation", "Causation"]


class Counterfactual(Model):
    """The counterfactual world of ``base`` after ``do``, given the factual ``observed`` values."""

    def __init__(self, base: Model, observed: dict, do: dict):
        super().__init__(base.fn, base.name, source=base.source)
        self.base, self.observed, self.intervened = base, dict(observed), dict(do)
        self.coerce = None  # the base model coerces its own arguments

    def __repr__(self) -> str:
        return f"<ppl.counterfactual of {self.base.name}: do {sorted(self.intervened)} given {sorted(self.observed)}>"

    def program(self, *args, **kwargs):
        program, leaves = self.base.program(*args, **kwargs)
        if isinstance(program, Dynamic):
            raise ModelError(f"counterfactual() on the model '{self.base.name}', which is dynamic ({program.reason}): "
                             "the twin network is a transformation of the model's IR", span=program.span,
                             hint="Write its control flow with ppl.cond and ppl.scan so that it compiles.")
        twin = self._programs.get(program)
        if twin is None:
            twin = self._programs[program] = twin_program(program, self.observed, self.intervened)
        return twin, leaves

    def body(self, *args, **kwargs):
        raise ModelError(f"the counterfactual model of '{self.base.name}' is a whole program; it cannot be called "
                         "as a sub-model")

    def condition(self, data):
        raise ModelError("condition a counterfactual through observed= (the factual world's evidence)",
                         hint="ppl.counterfactual(model, observed={...}, do={...})")

    def do(self, interventions):
        raise ModelError("give a counterfactual's interventions through do=",
                         hint="ppl.counterfactual(model, observed={...}, do={...})")

    def undo(self):
        return self.base


def counterfactual(model: Model, observed: dict | None = None, do: dict | None = None) -> Counterfactual:
    """The counterfactual world: "had ``do`` been done, given that ``observed`` was seen".

    Abduction conditions the factual world on ``observed``; action is the
    surgery ``do`` in a twin world; prediction runs the twin on the noise the
    two worlds share. Sites downstream of the intervention are split: the
    factual one at ``"factual/<site>"``, the counterfactual one at its own
    address; the rest are shared. Each split site's exogenous noise is
    shared: inverse-CDF noise for discrete sites (summed out exactly where
    the support is finite), the reparameterisation (``F'^{-1}(F(x))``) for
    continuous ones. See ``docs/causal.md``, section 6.
    """
    if not isinstance(model, Model):
        raise ModelError(f"counterfactual() takes a ppl model, not {type(model).__name__}")
    observed = dict(observed or {})
    if model.conditions:  # the model's own conditions are factual evidence too
        observed = {**model.conditions, **observed}
        plain = Model(model.fn, model.name, None, model.source, model.interventions)
        plain.coerce = model.coerce
        model = plain
    return Counterfactual(model, observed, dict(do or {}))


@dataclass(frozen=True)
class Causation:
    """Pearl's probabilities of causation for a binary treatment ``x`` and outcome ``y``.

    ``pn`` = P(y_{x=0} = 0 | x = 1, y = 1) (necessity), ``ps`` = P(y_{x=1} = 1 | x = 0, y = 0)
    (sufficiency), ``pns`` = P(y_{x=1} = 1, y_{x=0} = 0) (both).
    """

    pn: float
    ps: float
    pns: float


def probabilities_of_causation(model: Model, *args, treatment: str, outcome: str, method=None,
                               **kwargs) -> Causation:
    """PN, PS and PNS of the binary site ``treatment`` for the binary site ``outcome``.

    PN and PS are counterfactual queries (:func:`counterfactual`); PNS is
    ``P(x=1, y=1) PN + P(x=0, y=0) PS`` (each unit with ``y_1 = 1, y_0 = 0``
    is, in its factual world, either treated with ``y = 1`` or untreated with
    ``y = 0``). Every query runs with ``method`` (exact enumeration by default).
    """
    from ppl.api import infer
    from ppl.inference.enumerate import Enumerate

    method = method if method is not None else Enumerate()

    def run(m):
        return infer(m, *args, method=method, **kwargs)

    def cf_mean(x, y, do_x):
        post = run(counterfactual(model, observed={treatment: x, outcome: y}, do={treatment: do_x}))
        return float(post.mean(outcome))

    joint = run(model)
    xs, ys = np.asarray(joint.samples[treatment]), np.asarray(joint.samples[outcome])
    if not (np.isin(xs, (0, 1)).all() and np.isin(ys, (0, 1)).all()):
        raise ModelError(f"probabilities_of_causation() needs a binary treatment and outcome (values 0 and 1); "
                         f"'{treatment}' or '{outcome}' takes other values")
    w = np.asarray(joint.weights, dtype=float)
    p11 = float(w[(xs == 1) & (ys == 1)].sum() / w.sum())
    p00 = float(w[(xs == 0) & (ys == 0)].sum() / w.sum())
    pn = 1.0 - cf_mean(1, 1, 0)
    ps = cf_mean(0, 0, 1)
    return Causation(pn, ps, p11 * pn + p00 * ps)
