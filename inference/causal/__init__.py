"""Causal reasoning on the model's own diagram: identification, the diagram, surgery.

- :func:`identify` — ``P(y | do(x))`` as a formula in the observational
  distribution of the observed sites (the complete ID algorithm over the
  latent projection), or :class:`NotIdentifiable` naming the hedge.
- :func:`diagram` — the model's string diagram (text, SVG/PNG), with its
  interventions as cut edges.
- :mod:`.surgery` — what ``Model.do`` does at an intervened site (hard,
  distribution and function interventions), and :mod:`.transform`, the same
  surgery as an IR -> IR transformation of a static program (what
  ``Model.do`` uses where the interventions allow it).
"""

from ppl.inference.causal.diagram import Diagram, diagram
from ppl.inference.causal.identify import Estimand, NotIdentifiable, identify

__all__ = ["identify", "Estimand", "NotIdentifiable", "diagram", "Diagram"]
