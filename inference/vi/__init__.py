"""Programmable variational inference (Becker et al. PLDI 2024; ADEV, Lew et al. POPL 2023).

- ``estimators``: which gradient estimator each random choice uses, and whether it applies.
- ``adev``: the core transformation, expectation of a program -> unbiased gradient surrogate.
- ``expectation``: ``Expectation`` (estimate / grad / value_and_grad) over a ppl program.
- ``objectives``: ``ELBO``, ``IWELBO``, ``VIMCO``, ``RWS``, written from the blocks ``sim`` and ``density``.
- ``marginal``: ``Marginal``, a hierarchical guide with auxiliary sites marginalised by SIR (HVI, IWHVI, DIWHVI).
- ``paramset``: the ``ppl.param`` sites of a program (the model's own, too) as the optimiser's pytree.
- ``guides``: ``AutoNormal`` (mean-field), ``AutoDelta`` (MAP), and programs with ``ppl.param``.
- ``autoguides``, ``flows``, ``amortised``: AutoMultivariateNormal, AutoLowRank, AutoLaplace, AutoFlow, Amortized.
- ``pathfinder``: ``Pathfinder`` (Zhang et al. 2022), a method of its own and NUTS's ``init="pathfinder"``.
- ``method``: ``VI``, the compiled optimisation loop returning a posterior from the fitted guide.
"""

from ppl.inference.vi.expectation import Expectation
from ppl.inference.vi.guides import AutoDelta, AutoNormal
from ppl.inference.vi.guides import AutoFlow, AutoLaplace, AutoLowRank, AutoMultivariateNormal, Amortized
from ppl.inference.vi.pathfinder import Pathfinder
from ppl.inference.vi.method import VI
from ppl.inference.vi.objectives import ELBO, IWELBO, RWS, VIMCO, Context
from ppl.inference.vi.marginal import Marginal

__all__ = ["Expectation", "VI", "ELBO", "IWELBO", "Context", "AutoNormal", "AutoDelta"]
__all__ += ["RWS", "VIMCO", "Marginal"]
__all__ += ["AutoMultivariateNormal", "AutoLowRank", "AutoLaplace", "AutoFlow", "Amortized", "Pathfinder"]
