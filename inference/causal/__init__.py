"""Causal reasoning on the model's own diagram: surgery, worlds, identification, estimation.

- :func:`identify` — ``P(y | do(x))`` as a formula in the observational
  distribution of the observed sites (the complete ID algorithm over the
  latent projection), or :class:`NotIdentifiable` naming the hedge.
- :func:`diagram` — the model's string diagram (text, SVG/PNG), with its
  interventions as cut edges.
- :mod:`.transform` — ``do`` as an IR -> IR transformation (what
  ``Model.do`` is), for every kind of intervention; :mod:`.surgery` parses
  the interventions; :mod:`.ops` holds the new mechanisms as IR operations.
- :mod:`.twin` — counterfactuals: the twin network of a program, IR -> IR,
  with each site's exogenous form in :mod:`.exogenous` (``ppl.counterfactual``).
- :mod:`.estimators` — IPW and doubly robust AIPW effect estimates from data.
"""

from ppl.inference.causal.diagram import Diagram, diagram
from ppl.inference.causal.identify import Estimand, NotIdentifiable, identify

__all__ = ["identify", "Estimand", "NotIdentifiable", "diagram", "Diagram"]
