"""Builtin distributions: ``normal(loc, scale)`` and the rest, each declared once with
its parameters, the class that implements it, the type of a draw and its doc.

``flat(support, sizes...)`` is a form of its own (its first argument is a support, see
``supports``); its doc is ``FLAT_DOC``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from ppl.stdlib import distributions as D
from ppl.stdlib.errors import ModelError, PPLError, Span

from .types import Ty, TypeProblem, broadcast, describe, dist_ty

__all__ = ["Distribution", "DISTRIBUTIONS", "FLAT_DOC"]


@dataclass(frozen=True)
class Distribution:
    """A distribution constructor: ``name(params...)`` builds ``ppl.stdlib.distributions.<cls>``.

    ``params`` are the class's keyword names, in the order the language takes
    them; ``value`` is the base type of a draw; ``event_rank`` the rank of one
    draw of a single distribution (1 for a vector-valued one)."""

    name: str
    cls: str
    params: tuple[str, ...]
    value: str
    doc: str
    event_rank: int = 0

    @property
    def arity(self) -> tuple[int, int | None]:
        return len(self.params), len(self.params)

    @property
    def impl(self) -> type:
        """The implementation: the class of ``ppl.stdlib.distributions`` it builds."""
        return getattr(D, self.cls)

    def construct(self, args: list, span: Span | None):
        """The distribution of the argument values ``args`` (errors at ``span``, the call)."""
        if len(args) != len(self.params):
            raise ModelError(f"{self.name} takes {len(self.params)} argument(s) ({', '.join(self.params)}), "
                             f"but was given {len(args)}", span=span)
        real = jnp.result_type(float)
        kwargs = {p: (jnp.asarray(a, real) if p != "total_count" else jnp.asarray(a))
                  for p, a in zip(self.params, args)}
        try:
            return self.impl(**kwargs)
        except PPLError as err:
            raise err.with_span(span) from None

    def result(self, args: list[Ty]) -> Ty:
        """The type of this distribution applied to ``args`` (a ``dist`` Ty with ``elem``)."""
        if self.event_rank == 0:
            b = broadcast(args, self.value)
            return dist_ty(Ty(self.value, b.rank, b.shape))
        first = args[0]
        if self.name.startswith("multi_normal"):
            loc, mat = args
            if mat.rank is not None and mat.rank < 2:
                raise TypeProblem(
                    f"{self.name}'s {self.params[1]} must be a matrix, found {describe(mat)}")
            if loc.rank is None or mat.rank is None:
                return dist_ty(Ty("real", None))
            if loc.rank >= 1:
                return dist_ty(Ty("real", loc.rank, loc.shape))
            n = mat.shape[-1] if mat.shape else None
            return dist_ty(Ty("real", mat.rank - 1, (None,) * (mat.rank - 2) + (n,)))
        if first.rank is None:
            return dist_ty(Ty(self.value, None))
        if first.rank == 0:
            raise TypeProblem(f"{self.name}'s {self.params[0]} must be a vector, found {describe(first)}")
        if self.value == "int":  # categorical: one index per vector of probabilities
            return dist_ty(Ty("int", first.rank - 1, first.shape[:-1] if first.shape else None))
        return dist_ty(Ty(self.value, first.rank, first.shape))


def _d(name, cls, params, value, doc, event_rank=0):
    return name, Distribution(name, cls, tuple(params), value, doc, event_rank)


DISTRIBUTIONS: dict[str, Distribution] = dict([
    _d("normal", "Normal", ["loc", "scale"], "real", "normal with mean loc and standard deviation scale"),
    _d("half_normal", "HalfNormal", ["scale"], "real", "|x| for x ~ normal(0, scale); on (0, inf)"),
    _d("cauchy", "Cauchy", ["loc", "scale"], "real", "Cauchy with location loc and scale"),
    _d("half_cauchy", "HalfCauchy", ["scale"], "real", "|x| for x ~ cauchy(0, scale); on (0, inf)"),
    _d("student_t", "StudentT", ["df", "loc", "scale"], "real", "Student's t with df degrees of freedom"),
    _d("lognormal", "LogNormal", ["loc", "scale"], "real", "exp(x) for x ~ normal(loc, scale)"),
    _d("exponential", "Exponential", ["rate"], "real", "exponential with rate (mean 1 / rate)"),
    _d("gamma", "Gamma", ["concentration", "rate"], "real", "gamma with shape and rate (mean shape / rate)"),
    _d("inverse_gamma", "InverseGamma", ["concentration", "rate"], "real",
       "1 / x for x ~ gamma(concentration, rate)"),
    _d("beta", "Beta", ["concentration1", "concentration0"], "real", "beta on (0, 1): beta(a, b)"),
    _d("uniform", "Uniform", ["low", "high"], "real", "uniform on (low, high)"),
    _d("bernoulli", "Bernoulli", ["probs"], "int", "1 with probability probs, else 0"),
    _d("bernoulli_logit", "Bernoulli", ["logits"], "int", "bernoulli(logistic(logits))"),
    _d("binomial", "Binomial", ["total_count", "probs"], "int", "number of successes in total_count trials"),
    _d("binomial_logit", "Binomial", ["total_count", "logits"], "int", "binomial(n, logistic(logits))"),
    _d("categorical", "Categorical", ["probs"], "int",
       "an index 0..K-1 drawn with the probabilities in the vector probs", event_rank=1),
    _d("categorical_logit", "Categorical", ["logits"], "int", "categorical(softmax(logits))",
       event_rank=1),
    _d("poisson", "Poisson", ["rate"], "int", "Poisson counts with mean rate"),
    _d("negative_binomial", "NegativeBinomial", ["total_count", "probs"], "int",
       "number of failures before the total_count-th success, success probability probs"),
    _d("geometric", "Geometric", ["probs"], "int", "number of failures before the first success"),
    _d("dirichlet", "Dirichlet", ["concentration"], "real", "a random simplex (a probability vector)",
       event_rank=1),
    _d("multi_normal", "MultivariateNormal", ["loc", "covariance_matrix"], "real",
       "multivariate normal with mean vector loc and covariance matrix", event_rank=1),
    _d("multi_normal_cholesky", "MultivariateNormal", ["loc", "scale_tril"], "real",
       "multivariate normal with covariance L @ transpose(L), L lower triangular", event_rank=1),
])

#: ``flat(support, sizes...)`` is special: its first argument is a support, not a value.
FLAT_DOC = (
    "flat(support) or flat(support, n, ...): the improper uniform prior over a support "
    "(ppl.stdlib.distributions.Flat); only as the prior of a named random choice"
)
