"""Cumulative distribution functions of the univariate families, in stable log forms.

One table, ``FAMILIES``, maps each family to its functions of ``(dist, x)``:

- ``cdf``    P(X <= x)
- ``lcdf``   log P(X <= x)        (Stan's ``_lcdf``)
- ``lccdf``  log P(X > x)         (Stan's ``_lccdf``)
- ``icdf``   the quantile function, where it has a closed form (else ``None``:
  ``Distribution.icdf`` then solves ``cdf(x) = p`` by bisection)
- ``isf``    the inverse of the survival function P(X > x), where closed form

For discrete families the functions are of ``floor(x)``: ``cdf(2.5) == cdf(2)``.
The log forms avoid ``log(1 - cdf)`` where it loses digits (``log_ndtr`` for the
normal; ``atan2`` for the Cauchy; ``log1p``/``expm1`` elsewhere), so tails far
beyond where ``cdf`` rounds to 0 or 1 keep their digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, erf, gammainc, gammaincc, log_ndtr, ndtr, ndtri

__all__ = ["Family", "FAMILIES", "log1mexp", "logdiffexp", "family_of", "bisect_quantile", "betainc_ad"]

_LOG2 = math.log(2.0)
_LOG_PI = math.log(math.pi)


def log1mexp(a):
    """log(1 - exp(a)) for a <= 0, accurate near 0 and for very negative a."""
    a = jnp.minimum(a, 0.0)
    return jnp.where(a > -_LOG2, jnp.log(-jnp.expm1(a)), jnp.log1p(-jnp.exp(a)))


def logdiffexp(a, b):
    """log(exp(a) - exp(b)) for a >= b (``-inf`` when they are equal)."""
    safe_b = jnp.where(jnp.isneginf(b), 0.0, b)
    diff = jnp.where(jnp.isneginf(b), -jnp.inf, safe_b - a)
    return jnp.where(jnp.isneginf(b), a, a + log1mexp(diff))


@jax.custom_jvp
def betainc_ad(a, b, x):
    """The regularised incomplete beta I_x(a, b), differentiable in all three arguments.

    JAX's ``betainc`` has no derivative in ``a`` and ``b``; here those are central differences
    (relative step 1e-3 in float32, 1e-6 in float64). The derivative in ``x`` is exact. An
    approximate gradient keeps MCMC exact (the accept step uses the density itself), so a
    latent degrees-of-freedom under a truncated Student's t samples correctly.
    """
    return betainc(a, b, x)


@betainc_ad.defjvp
def _betainc_jvp(primals, tangents):
    a, b, x = primals
    da, db, dx = tangents
    a, b, x = jnp.broadcast_arrays(*(jnp.asarray(v, jnp.result_type(a, b, x, float)) for v in (a, b, x)))
    out = betainc(a, b, x)
    eps = 1e-6 if out.dtype == jnp.float64 else 1e-3
    ha, hb = eps * jnp.maximum(1.0, jnp.abs(a)), eps * jnp.maximum(1.0, jnp.abs(b))
    ha, hb = jnp.minimum(ha, 0.5 * a), jnp.minimum(hb, 0.5 * b)  # stay in a, b > 0
    d_a = (betainc(a + ha, b, x) - betainc(a - ha, b, x)) / (2 * ha)
    d_b = (betainc(a, b + hb, x) - betainc(a, b - hb, x)) / (2 * hb)
    log_pdf = jax.scipy.special.xlogy(a - 1, x) + jax.scipy.special.xlog1py(b - 1, -x) - jax.scipy.special.betaln(a, b)
    d_x = jnp.where((x > 0) & (x < 1), jnp.exp(log_pdf), 0.0)

    def t(v, dv):
        return jnp.zeros_like(out) if type(dv).__name__ == "SymbolicZero" else jnp.asarray(dv) * v

    return out, t(d_a, da) + t(d_b, db) + t(d_x, dx)


def _log(p):
    return jnp.log(jnp.clip(p, 0.0, 1.0))


def _log1m(p):
    return jnp.log1p(-jnp.clip(p, 0.0, 1.0))


@dataclass(frozen=True)
class Family:
    """The distribution functions of one family (see the module docstring)."""

    cdf: Callable
    lcdf: Callable | None = None
    lccdf: Callable | None = None
    icdf: Callable | None = None
    isf: Callable | None = None

    def log_cdf(self, d, x):
        return self.lcdf(d, x) if self.lcdf is not None else _log(self.cdf(d, x))

    def log_ccdf(self, d, x):
        return self.lccdf(d, x) if self.lccdf is not None else _log1m(self.cdf(d, x))


# ------------------------------------------------------------------ continuous


def _z(d, x):
    return (x - d.loc) / d.scale


def _normal_icdf(d, p):
    return d.loc + d.scale * ndtri(p)


def _normal_isf(d, q):
    return d.loc - d.scale * ndtri(q)


NORMAL = Family(
    cdf=lambda d, x: ndtr(_z(d, x)),
    lcdf=lambda d, x: log_ndtr(_z(d, x)),
    lccdf=lambda d, x: log_ndtr(-_z(d, x)),
    icdf=_normal_icdf,
    isf=_normal_isf,
)


def _half_z(d, x):
    return jnp.maximum(x, 0.0) / d.scale


def _half_normal_lcdf(d, x):
    z = _half_z(d, x)
    # P = erf(z / sqrt 2) = 1 - 2 ndtr(-z): the first is exact for small z, the second for large
    small = jnp.log(erf(z / math.sqrt(2.0)))
    large = jnp.log1p(-2.0 * ndtr(-z))
    return jnp.where(z < 1.0, small, large)


HALF_NORMAL = Family(
    cdf=lambda d, x: erf(_half_z(d, x) / math.sqrt(2.0)),
    lcdf=_half_normal_lcdf,
    lccdf=lambda d, x: _LOG2 + log_ndtr(-_half_z(d, x)),
    icdf=lambda d, p: d.scale * ndtri(0.5 + 0.5 * p),
    isf=lambda d, q: -d.scale * ndtri(0.5 * q),
)

# 1/2 + atan(z)/pi = atan2(1, -z)/pi, which keeps its digits as z -> -inf
CAUCHY = Family(
    cdf=lambda d, x: jnp.arctan2(1.0, -_z(d, x)) / math.pi,
    lcdf=lambda d, x: jnp.log(jnp.arctan2(1.0, -_z(d, x))) - _LOG_PI,
    lccdf=lambda d, x: jnp.log(jnp.arctan2(1.0, _z(d, x))) - _LOG_PI,
    icdf=lambda d, p: d.loc + d.scale * jnp.tan(math.pi * (p - 0.5)),
    isf=lambda d, q: d.loc - d.scale * jnp.tan(math.pi * (q - 0.5)),
)

HALF_CAUCHY = Family(
    cdf=lambda d, x: 2.0 * jnp.arctan(_half_z(d, x)) / math.pi,
    lcdf=lambda d, x: jnp.log(2.0 * jnp.arctan(_half_z(d, x)) / math.pi),
    lccdf=lambda d, x: jnp.log(2.0 * jnp.arctan2(1.0, _half_z(d, x)) / math.pi),
    icdf=lambda d, p: d.scale * jnp.tan(0.5 * math.pi * p),
    isf=lambda d, q: d.scale / jnp.tan(0.5 * math.pi * q),
)


def _t_tail(d, x):
    """(P(T <= -|t|), t): the lower tail of the standardised t at -|t|, by the incomplete beta."""
    t = _z(d, x)
    df = d.df
    tail = 0.5 * betainc_ad(0.5 * df, 0.5, df / (df + t * t))
    return tail, t


def _t_cdf(d, x):
    tail, t = _t_tail(d, x)
    return jnp.where(t < 0, tail, 1.0 - tail)


def _t_lcdf(d, x):
    tail, t = _t_tail(d, x)
    return jnp.where(t < 0, jnp.log(tail), jnp.log1p(-tail))


def _t_lccdf(d, x):
    tail, t = _t_tail(d, x)
    return jnp.where(t > 0, jnp.log(tail), jnp.log1p(-tail))


STUDENT_T = Family(cdf=_t_cdf, lcdf=_t_lcdf, lccdf=_t_lccdf)


def _log_z(d, x):
    return (jnp.log(jnp.maximum(x, 0.0)) - d.loc) / d.scale


LOG_NORMAL = Family(
    cdf=lambda d, x: ndtr(_log_z(d, x)),
    lcdf=lambda d, x: log_ndtr(_log_z(d, x)),
    lccdf=lambda d, x: log_ndtr(-_log_z(d, x)),
    icdf=lambda d, p: jnp.exp(d.loc + d.scale * ndtri(p)),
    isf=lambda d, q: jnp.exp(d.loc - d.scale * ndtri(q)),
)


def _rate_x(d, x):
    return d.rate * jnp.maximum(x, 0.0)


EXPONENTIAL = Family(
    cdf=lambda d, x: -jnp.expm1(-_rate_x(d, x)),
    lcdf=lambda d, x: log1mexp(-_rate_x(d, x)),
    lccdf=lambda d, x: -_rate_x(d, x),
    icdf=lambda d, p: -jnp.log1p(-p) / d.rate,
    isf=lambda d, q: -jnp.log(q) / d.rate,
)


def _gamma_p(d, x):
    return gammainc(d.concentration, _rate_x(d, x))


def _gamma_q(d, x):
    return gammaincc(d.concentration, _rate_x(d, x))


GAMMA = Family(
    cdf=_gamma_p,
    lcdf=lambda d, x: jnp.log(_gamma_p(d, x)),
    lccdf=lambda d, x: jnp.log(_gamma_q(d, x)),
)


def _inv_gamma_arg(d, x):
    return d.rate / jnp.maximum(x, 0.0)


INVERSE_GAMMA = Family(
    cdf=lambda d, x: gammaincc(d.concentration, _inv_gamma_arg(d, x)),
    lcdf=lambda d, x: jnp.log(gammaincc(d.concentration, _inv_gamma_arg(d, x))),
    lccdf=lambda d, x: jnp.log(gammainc(d.concentration, _inv_gamma_arg(d, x))),
)


def _unit(x):
    return jnp.clip(x, 0.0, 1.0)


BETA = Family(
    cdf=lambda d, x: betainc_ad(d.concentration1, d.concentration0, _unit(x)),
    lcdf=lambda d, x: jnp.log(betainc_ad(d.concentration1, d.concentration0, _unit(x))),
    lccdf=lambda d, x: jnp.log(betainc_ad(d.concentration0, d.concentration1, 1.0 - _unit(x))),
)


def _uniform_u(d, x):
    width = jnp.where(d.high > d.low, d.high - d.low, jnp.nan)  # an empty interval is no distribution
    return jnp.clip((x - d.low) / width, 0.0, 1.0)


UNIFORM = Family(
    cdf=_uniform_u,
    lcdf=lambda d, x: jnp.log(_uniform_u(d, x)),
    lccdf=lambda d, x: jnp.log(jnp.clip((d.high - x) / jnp.where(d.high > d.low, d.high - d.low, jnp.nan), 0.0, 1.0)),
    icdf=lambda d, p: d.low + (d.high - d.low) * p,
    isf=lambda d, q: d.high - (d.high - d.low) * q,
)


# -------------------------------------------------------------------- discrete


def _k(x):
    return jnp.floor(jnp.asarray(x, jnp.result_type(float)))


def _bernoulli_cdf(d, x):
    k = _k(x)
    return jnp.where(k < 0, 0.0, jnp.where(k < 1, 1.0 - d.probs, 1.0))


def _bernoulli_lcdf(d, x):
    k = _k(x)
    _, log_q = d._log_p_and_q()
    return jnp.where(k < 0, -jnp.inf, jnp.where(k < 1, log_q, 0.0))


def _bernoulli_lccdf(d, x):
    k = _k(x)
    log_p, _ = d._log_p_and_q()
    return jnp.where(k < 0, 0.0, jnp.where(k < 1, log_p, -jnp.inf))


BERNOULLI = Family(cdf=_bernoulli_cdf, lcdf=_bernoulli_lcdf, lccdf=_bernoulli_lccdf)


def _binomial_parts(d, x):
    """(P(K <= k), P(K > k)) by the incomplete beta, with the ends exact."""
    n, p = d.total_count, d.probs
    k = _k(x)
    inside = (k >= 0) & (k < n)
    ks = jnp.clip(k, 0.0, jnp.maximum(n - 1.0, 0.0))
    a = jnp.where(inside, n - ks, 1.0)
    lower = betainc_ad(a, ks + 1.0, 1.0 - p)
    upper = betainc_ad(ks + 1.0, a, p)
    lower = jnp.where(k < 0, 0.0, jnp.where(k >= n, 1.0, lower))
    upper = jnp.where(k < 0, 1.0, jnp.where(k >= n, 0.0, upper))
    return lower, upper


BINOMIAL = Family(
    cdf=lambda d, x: _binomial_parts(d, x)[0],
    lcdf=lambda d, x: jnp.log(_binomial_parts(d, x)[0]),
    lccdf=lambda d, x: jnp.log(_binomial_parts(d, x)[1]),
)


def _poisson_parts(d, x):
    k = _k(x)
    ks = jnp.maximum(k, 0.0)
    lower = jnp.where(k < 0, 0.0, gammaincc(ks + 1.0, d.rate))
    upper = jnp.where(k < 0, 1.0, gammainc(ks + 1.0, d.rate))
    return lower, upper


POISSON = Family(
    cdf=lambda d, x: _poisson_parts(d, x)[0],
    lcdf=lambda d, x: jnp.log(_poisson_parts(d, x)[0]),
    lccdf=lambda d, x: jnp.log(_poisson_parts(d, x)[1]),
)


def _nbinom_parts(d, x):
    k = _k(x)
    ks = jnp.maximum(k, 0.0)
    n, p = d.total_count, d.probs
    lower = jnp.where(k < 0, 0.0, betainc_ad(n, ks + 1.0, p))
    upper = jnp.where(k < 0, 1.0, betainc_ad(ks + 1.0, n, 1.0 - p))
    return lower, upper


NEGATIVE_BINOMIAL = Family(
    cdf=lambda d, x: _nbinom_parts(d, x)[0],
    lcdf=lambda d, x: jnp.log(_nbinom_parts(d, x)[0]),
    lccdf=lambda d, x: jnp.log(_nbinom_parts(d, x)[1]),
)


def _geom_lccdf(d, x):
    # P(K > k) = (1 - p)^(k + 1) for k >= 0
    k = _k(x)
    _, log_q = d._log_p_and_q()
    return jnp.where(k < 0, 0.0, (jnp.maximum(k, 0.0) + 1.0) * log_q)


GEOMETRIC = Family(
    cdf=lambda d, x: -jnp.expm1(_geom_lccdf(d, x)),
    lcdf=lambda d, x: log1mexp(_geom_lccdf(d, x)),
    lccdf=_geom_lccdf,
)


FAMILIES: dict[str, Family] = {
    "Normal": NORMAL,
    "HalfNormal": HALF_NORMAL,
    "Cauchy": CAUCHY,
    "HalfCauchy": HALF_CAUCHY,
    "StudentT": STUDENT_T,
    "LogNormal": LOG_NORMAL,
    "Exponential": EXPONENTIAL,
    "Gamma": GAMMA,
    "InverseGamma": INVERSE_GAMMA,
    "Beta": BETA,
    "Uniform": UNIFORM,
    "Bernoulli": BERNOULLI,
    "Binomial": BINOMIAL,
    "Poisson": POISSON,
    "NegativeBinomial": NEGATIVE_BINOMIAL,
    "Geometric": GEOMETRIC,
}


def family_of(d) -> Family | None:
    """The distribution functions of ``d``'s family, or None if it has none here."""
    return FAMILIES.get(type(d).__name__)


# ---------------------------------------------------------- numerical quantiles


def bisect_quantile(log_cdf, log_ccdf, log_p, lo, hi, upper, *, integer=False, steps=None):
    """The x in [lo, hi] with log F(x) = log_p (or, where ``upper``, log S(x) = log_p).

    ``lo``/``hi`` bracket the answer in the coordinate the bisection runs in (the
    caller maps infinite ends to finite ones). With ``integer``, the smallest
    integer k in (lo, hi] with F(k) >= p (resp. S(k) <= p). Monotone and
    always terminating: a fixed number of halvings, under ``lax.fori_loop``.
    """
    dtype = jnp.result_type(lo, hi, log_p, float)
    lo = jnp.asarray(lo, dtype)
    hi = jnp.asarray(hi, dtype)
    lo, hi = jnp.broadcast_arrays(lo, hi, jnp.asarray(log_p, dtype))[:2]

    def below(x):  # the answer lies above x
        return jnp.where(upper, log_ccdf(x) > log_p, log_cdf(x) < log_p)

    if steps is None:
        steps = 40 if integer else (100 if dtype == jnp.float64 else 60)

    def body(_, bounds):
        a, b = bounds
        mid = jnp.floor(0.5 * (a + b)) if integer else 0.5 * (a + b)
        go_up = below(mid)
        return jnp.where(go_up, mid, a), jnp.where(go_up, b, mid)

    a, b = jax.lax.fori_loop(0, steps, body, (lo, hi))
    return b if integer else 0.5 * (a + b)
