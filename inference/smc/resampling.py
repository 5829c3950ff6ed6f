"""Resampling for the compiled filter: the shared definitions of ``semantics.resampling``.

Both engines resample and summarise weights by the same functions, which live
at the lowest layer that both need (``ppl.semantics.resampling``); this module
names them where the SMC code and its users look for them.

>>> import jax, jax.numpy as jnp
>>> stratified(jax.random.key(0), jnp.log(jnp.array([0.5, 0.5]))).tolist()
[0, 1]
"""

from ppl.semantics.resampling import (SCHEMES, ess, log_mean_exp, multinomial, normalised_cdf, stratified,
                                      summarise, systematic)

__all__ = ["multinomial", "systematic", "stratified", "SCHEMES", "normalised_cdf", "ess", "log_mean_exp",
           "summarise"]
