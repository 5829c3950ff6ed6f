"""ppl: a probabilistic programming language for Python, compiled by JAX.

>>> import ppl, jax
>>> @ppl.model
... def coin(flips):
...     p = ppl.sample("p", ppl.dist.Beta(1.0, 1.0))
...     with ppl.plate("flips", len(flips)):
...         ppl.observe("y", ppl.dist.Bernoulli(probs=p), flips)
...     return p
>>> post = ppl.infer(coin, [1, 1, 0, 1], method=ppl.Importance(num_particles=2000))
>>> round(float(post.mean()), 1)
0.7
"""

from ppl.stdlib import distributions as dist
from ppl.stdlib import constraints
from ppl.stdlib.errors import (
    PPLError,
    ModelError,
    ParameterError,
    SupportError,
    ShapeError,
    AddressError,
    DensityError,
    CheckError,
    SyntaxError_ as SyntaxError,
)
from ppl.semantics.effects import sample, observe, factor, deterministic, plate, scan, cond, mem
from ppl.semantics.index_check import IndexRangeError
from ppl.syntax.data_check import DataError
from ppl.model import Model, model, Trace
from ppl.posterior import Posterior
from ppl.inference.enumerate import Enumerate
from ppl.inference.importance import Importance
from ppl.inference.mcmc.methods import NUTS, HMC, ChEES
from ppl.inference.mcmc.checks import SamplingWarning
from ppl.inference.mcmc.mh import MH
from ppl.inference.mcmc.gibbs import Gibbs
from ppl.inference.smc import SMC, PMMH
from ppl.api import infer
from ppl.inference.causal import identify, NotIdentifiable, diagram
from ppl.counterfactual import counterfactual, probabilities_of_causation
from ppl.inference.causal.estimators import ipw, aipw
from ppl.config import config, enable_default_cache
from ppl.evaluate import load, loads
from ppl.vi import expectation, param, VI, ELBO, IWELBO, AutoNormal, AutoDelta
from ppl.vi import RWS, VIMCO, marginal, sim, density
from ppl.vi import AutoMultivariateNormal, AutoLowRank, AutoLaplace, AutoFlow, Amortized, Pathfinder

__all__ = [
    "dist",
    "constraints",
    "model",
    "Model",
    "Trace",
    "sample",
    "observe",
    "factor",
    "deterministic",
    "plate",
    "scan",
    "cond",
    "mem",
    "param",
    "expectation",
    "VI",
    "ELBO",
    "IWELBO",
    "RWS",
    "VIMCO",
    "marginal",
    "sim",
    "density",
    "AutoNormal",
    "AutoDelta",
    "AutoMultivariateNormal",
    "AutoLowRank",
    "AutoLaplace",
    "AutoFlow",
    "Amortized",
    "Pathfinder",
    "infer",
    "identify",
    "NotIdentifiable",
    "diagram",
    "counterfactual",
    "probabilities_of_causation",
    "ipw",
    "aipw",
    "Posterior",
    "Enumerate",
    "Importance",
    "NUTS",
    "HMC",
    "ChEES",
    "MH",
    "Gibbs",
    "SMC",
    "PMMH",
    "SamplingWarning",
    "config",
    "load",
    "loads",
    "PPLError",
    "ModelError",
    "ParameterError",
    "SupportError",
    "ShapeError",
    "AddressError",
    "DensityError",
    "CheckError",
    "SyntaxError",
    "IndexRangeError",
    "DataError",
]

__version__ = "0.1.0"

enable_default_cache()
