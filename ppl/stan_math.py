"""JAX implementations of the Stan-named builtins of ``ppl.syntax.builtins_stan``.

Each is a pure, elementwise (unless its doc says otherwise), differentiable
function of JAX arrays; ``ppl.evaluate`` adds ``PURE`` to its table of builtins.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy import special as sp

__all__ = ["PURE"]


def _real(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.result_type(float))


def log1m(x):
    return jnp.log1p(-_real(x))


def log1m_exp(x):
    """log(1 - exp(x)), accurate for x near 0 and for x very negative (Mächler's rule)."""
    x = _real(x)
    near_zero = x > -math.log(2.0)
    safe_small = jnp.where(near_zero, x, -1.0)
    safe_large = jnp.where(near_zero, -1.0, x)
    return jnp.where(near_zero, jnp.log(-jnp.expm1(safe_small)), jnp.log1p(-jnp.exp(safe_large)))


def log_diff_exp(x, y):
    """log(exp(x) - exp(y)); -inf when x == y, NaN when x < y (as in Stan)."""
    x, y = _real(x), _real(y)
    d = y - x
    safe = jnp.where(d < 0, d, -1.0)
    out = x + log1m_exp(safe)
    return jnp.where(d < 0, out, jnp.where(d == 0, -jnp.inf, jnp.nan))


def log_sum_exp(x, y=None):
    if y is None:
        return sp.logsumexp(_real(x))
    return jnp.logaddexp(_real(x), _real(y))


def lchoose(n, k):
    n, k = _real(n), _real(k)
    return sp.gammaln(n + 1) - sp.gammaln(k + 1) - sp.gammaln(n - k + 1)


def phi_approx(x):
    x = _real(x)
    return jax.nn.sigmoid(0.07056 * x**3 + 1.5976 * x)


def inv_cloglog(x):
    return -jnp.expm1(-jnp.exp(_real(x)))


def step(x):
    x = _real(x)
    return jnp.where(x < 0, 0.0, 1.0).astype(x.dtype)


def int_step(x):
    return (jnp.asarray(x) > 0).astype(jnp.int32)


def dot_self(x):
    x = _real(x)
    return jnp.dot(x, x)


def _sizes(ns):
    return tuple(int(n) for n in ns)


def rep_vector(x, n):
    return jnp.full(_sizes([n]), _real(x))


def rep_array(x, *ns):
    x = jnp.asarray(x)
    return jnp.broadcast_to(x, _sizes(ns) + x.shape)


PURE = {
    "log10": lambda x: jnp.log10(_real(x)),
    "log2": lambda x: jnp.log2(_real(x)),
    "exp2": lambda x: jnp.exp2(_real(x)),
    "log1m": log1m,
    "log1p_exp": lambda x: jnp.logaddexp(0.0, _real(x)),
    "log1m_exp": log1m_exp,
    "inv_logit": jax.nn.sigmoid,
    "log_inv_logit": jax.nn.log_sigmoid,
    "log1m_inv_logit": lambda x: jax.nn.log_sigmoid(-_real(x)),
    "inv_cloglog": inv_cloglog,
    "Phi": lambda x: sp.ndtr(_real(x)),
    "Phi_approx": phi_approx,
    "inv_Phi": lambda x: sp.ndtri(_real(x)),
    "tgamma": lambda x: sp.gamma(_real(x)),
    "trigamma": lambda x: sp.polygamma(1, _real(x)),
    "erfc": lambda x: sp.erfc(_real(x)),
    "fabs": lambda x: jnp.abs(_real(x)),
    "cbrt": lambda x: jnp.cbrt(_real(x)),
    "inv": lambda x: 1.0 / _real(x),
    "inv_sqrt": lambda x: jax.lax.rsqrt(_real(x)),
    "inv_square": lambda x: 1.0 / jnp.square(_real(x)),
    "step": step,
    "log_diff_exp": log_diff_exp,
    "lbeta": lambda a, b: sp.betaln(_real(a), _real(b)),
    "lchoose": lchoose,
    "binomial_coefficient_log": lchoose,
    "fmin": lambda x, y: jnp.fmin(_real(x), _real(y)),
    "fmax": lambda x, y: jnp.fmax(_real(x), _real(y)),
    "hypot": lambda x, y: jnp.hypot(_real(x), _real(y)),
    "fmod": lambda x, y: jnp.fmod(_real(x), _real(y)),
    "int_step": int_step,
    "fma": lambda x, y, z: _real(x) * y + z,
    "log_sum_exp": log_sum_exp,
    "cumulative_sum": lambda x: jnp.cumsum(x, axis=0),
    "dot_product": jnp.dot,
    "dot_self": dot_self,
    "rep_vector": rep_vector,
    "rep_array": rep_array,
}
