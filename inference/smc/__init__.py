"""Sequential Monte Carlo as a program transformation.

- ``cut``: the sequential cut of a static program (init ; step^T ; final).
- ``kernels``: the cut's pieces as JAX functions of one particle.
- ``resampling``: multinomial, systematic and stratified resampling (pure JAX).
- ``compiled``: the vectorised filter, one jitted function.
- ``population``: the compiled filter's particle state and its resampling (when, by which ancestors).
- ``output``: what a run of it computes, packed for the host; the ancestral paths' backtrack.
- ``eager``: Population over Sequential, for dynamic programs.
- ``rejuvenation``: MCMC kernels for resample-move (``RandomWalk``, ``HMCMove``, ``NUTSMove``); ``TraceMH``
  (in ``eager``) moves whole traces, for dynamic models.
- ``methods``: the ``SMC`` method.
- ``pmmh``: particle marginal Metropolis-Hastings (``PMMH``), the filter inside an MH chain, run by the
  MCMC driver; ``pmmh_kernel``: its transition as a kernel of the MCMC contract (``init``/``step``).
"""

from ppl.inference.smc.cut import SequentialCut, sequential_cut
from ppl.inference.smc.eager import TraceMH
from ppl.inference.smc.methods import SMC
from ppl.inference.smc.pmmh import PMMH
from ppl.inference.smc.rejuvenation import HMCMove, NUTSMove, RandomWalk

__all__ = ["SMC", "PMMH", "RandomWalk", "HMCMove", "NUTSMove", "TraceMH", "SequentialCut", "sequential_cut"]
