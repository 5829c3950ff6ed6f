"""Programmable variational inference (Becker et al. PLDI 2024; ADEV, Lew et al. POPL 2023).

- ``estimators``: which gradient estimator each random choice uses, and whether it applies.
- ``adev``: the core transformation, expectation of a program -> unbiased gradient surrogate.
- ``expectation``: ``Expectation`` (estimate / grad / value_and_grad) over a ppl program.
- ``objectives``: ``ELBO``, ``IWELBO``, written from the blocks ``expect`` (sim) and ``density``.
- ``guides``: ``AutoNormal`` (mean-field), ``AutoDelta`` (MAP), and programs with ``ppl.param``.
- ``method``: ``VI``, the compiled optimisation loop returning a posterior from the fitted guide.
"""

from ppl.inference.vi.expectation import Expectation
from ppl.inference.vi.guides import AutoDelta, AutoNormal
from ppl.inference.vi.method import VI
from ppl.inference.vi.objectives import ELBO, IWELBO, Context

__all__ = ["Expectation", "VI", "ELBO", "IWELBO", "Context", "AutoNormal", "AutoDelta"]
