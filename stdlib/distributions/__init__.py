"""Probability distributions: ``Normal(0, 1).log_density(x)``, ``Bernoulli(probs=0.3).sample(key)``.

Every distribution is a JAX pytree (its parameters are the leaves) with ``batch_shape``,
``event_shape``, ``support``, ``sample``, ``log_density``, ``expand``, ``mean``,
``variance`` and ``in_support``; finite discrete ones also ``enumerate_support``.
Concrete parameters are checked when a distribution is built (ParameterError);
pass ``validate=False`` to skip the check.

    >>> import jax.numpy as jnp
    >>> Normal(0.0, 1.0)
    Normal(loc=0.0, scale=1.0)
    >>> round(float(Normal(0.0, 1.0).log_density(0.0)), 4)
    -0.9189
    >>> float(Exponential(1.0).log_density(-1.0))
    -inf
"""

from .base import Distribution, is_concrete
from .continuous import (
    Beta,
    Cauchy,
    Exponential,
    Gamma,
    HalfCauchy,
    HalfNormal,
    InverseGamma,
    LogNormal,
    Normal,
    StudentT,
    Uniform,
)
from .delta import Delta
from .discrete import Bernoulli, Binomial, Categorical, Geometric, NegativeBinomial, Poisson
from .improper import Flat, flat
from .multivariate import Dirichlet, MultivariateNormal
from .truncated import Truncated
from .mixture import Mixture, MixtureSameFamily

__all__ = [
    "Distribution",
    "is_concrete",
    "Normal",
    "HalfNormal",
    "Cauchy",
    "HalfCauchy",
    "StudentT",
    "LogNormal",
    "Exponential",
    "Gamma",
    "InverseGamma",
    "Beta",
    "Uniform",
    "Bernoulli",
    "Binomial",
    "Categorical",
    "Poisson",
    "NegativeBinomial",
    "Geometric",
    "Dirichlet",
    "MultivariateNormal",
    "Delta",
    "Flat",
    "flat",
    "Truncated",
    "Mixture",
    "MixtureSameFamily",
]
