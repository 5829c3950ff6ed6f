"""Automatic guides: variational families over the model's unconstrained coordinates.

Every automatic guide draws the *unconstrained* values ``u`` of the model's continuous latent
sites (``z_a = T_a(u_a)``, ``T_a`` the bijector onto site ``a``'s support) from a family
``q_phi(u)`` with a reparameterised sampler, and hands the objective ``u`` with ``log q_phi(u)``.
Its ``density(u, args)`` is the model's log density in the same coordinates, Jacobian included::

    density(u) - log q(u)  =  log p(T(u), y) + log|det J_T(u)| - log q(u)  =  log p(z, y) - log q(z)

so every objective (the ELBO, IWELBO, ...) takes the same value as in the model's own coordinates,
and constrained sites (positive, interval, simplex, ...) need nothing more. Where the model has
discrete latent sites that ``inference/marginalize/`` can sum out, ``density`` is the marginal
``log sum_d p(T(u), d, y) + log|det J_T(u)|``: the guide covers the continuous sites and the
discrete ones are drawn back from their exact conditional ``p(d | z, y)`` for the posterior.

Each Gaussian family's location starts at ``init_loc`` (``init_loc.py``): ``"zero"`` (the default,
``u = 0``), ``"map"`` (the mode of ``density``, by L-BFGS) or a dict of values by site.

The families (``D`` the total unconstrained dimension, ``eps ~ N(0, I)``):

- :class:`AutoNormal`: ``u_a = loc_a + scale_a * eps_a`` per site (mean-field);
- :class:`AutoMultivariateNormal`: ``u = loc + L eps``, ``L`` lower triangular with a positive diagonal;
- :class:`AutoLowRank`: ``u = loc + W eps_1 + d * eps_2`` (``W`` is ``D x rank``): covariance
  ``W W^T + diag(d^2)``, its density by the Woodbury identity in ``O(D rank^2)``;
- :class:`AutoDelta`: a point mass at ``z = T(u)``; ``log q(u) = log|det J_T(u)|`` so that the ELBO is
  ``log p(z, y)`` and the fit is the mode in the model's coordinates (MAP);
- :class:`AutoLaplace`: fits the mode ``u*`` of ``density`` (a point mass in ``u``: ``log q(u) = 0``), then
  becomes ``N(u*, H^{-1})`` with ``H = -grad^2 density(u*)`` (``finish``), the Laplace approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference import marginalize as M
from ppl.inference.vi.init_loc import curvature_scale, initial_loc
from ppl.inference.vi.subsample import subsample_sites
from ppl.semantics import compile as C
from ppl.stdlib.bijectors import biject_to
from ppl.stdlib.errors import ModelError

__all__ = ["AutoNormal", "AutoDelta", "AutoMultivariateNormal", "AutoLowRank", "AutoLaplace",
           "UnconstrainedGuide", "ToSupport"]

_LOG_2PI = math.log(2 * math.pi)


def _float():
    return jnp.result_type(float)


def _is_rows(dist) -> bool:
    return type(dist).__name__ == "SubsampleIndices"


class ToSupport(C.Mode):
    """Law: a latent choice takes ``x = T(u[a])`` (``T`` its support's bijector); its term is
    ``log |det J_T(u[a])|``, given. Discrete choices (summed out elsewhere) take ``inputs[a]``
    when given, else the first value of their support; their term is 0."""

    vectorizable = True

    def sample(self, stmt, dist, inputs, key):
        if getattr(dist, "is_discrete", False):
            value = inputs.get(stmt.address)
            if value is None:  # a subsampled plate's rows have no support to list: any rows do (term 0)
                first = 0 if _is_rows(dist) else dist.enumerate_support()[0]
                value = jnp.broadcast_to(first, stmt.out.shape)
            return jnp.asarray(value, stmt.out.dtype), jnp.zeros((), _float()), True
        bij = biject_to(dist.support)
        u = inputs[stmt.address]
        return bij.forward(u), C.sum_terms(bij.log_det_jacobian(u)), True


class UnconstrainedGuide:
    """A guide bound to a model: a family over the model's unconstrained continuous coordinates.

    Subclasses give ``init(key)``, ``sample_u(phi, key, args) -> (u, log q(u))`` and ``constrained(phi)``.
    """

    def __init__(self, program, args, init_loc="zero"):
        self.program, self.args, self.init_loc = program, args, init_loc
        shapes = C.unconstrained_shapes(program, args)
        self.rows = frozenset(subsample_sites(program))  # subsampled plates' rows: drawn afresh (subsample.py)
        self.discrete = tuple(a for a, s in shapes.items() if s is None and a not in self.rows)
        if self.discrete and self.rows:
            raise ModelError(f"the model '{program.name}' subsamples a plate and has discrete latent sites to sum "
                             "out; an automatic guide does not do both yet", span=program.span,
                             hint="Use all rows (no subsample_size), or write the guide as a program.")
        if self.rows and isinstance(init_loc, str) and init_loc == "map":
            self.refuse_rows("init_loc='map' starts at the mode of the full data's density")
        if self.discrete:
            M.check_marginalizable(program, args)  # the error says why the discrete sites cannot be summed
        self.shapes = {a: tuple(s) for a, s in shapes.items() if s is not None}
        if not self.shapes:
            first = program.latent_sites()[self.discrete[0]] if self.discrete else None
            raise ModelError(f"the model '{program.name}' has no continuous latent site for an automatic guide",
                             span=getattr(first, "span", None) or program.span,
                             hint="Use ppl.Enumerate for a model whose latent sites are all discrete.")
        self.sizes = {a: int(np.prod(s, dtype=np.int64)) for a, s in self.shapes.items()}
        self.dim = int(sum(self.sizes.values()))

    def refuse_rows(self, what: str):
        """Raise: ``what`` needs the density of every row, which a subsampled plate never computes."""
        info = self.program.latent_sites()[min(self.rows)]
        raise ModelError(f"{what}, but plate '{min(self.rows)}' subsamples its rows (subsample_size=): the model's "
                         "density is only ever estimated from a subsample", span=info.span,
                         hint="Start from init_loc='zero' or a dict of values, fit AutoNormal/AutoMultivariateNormal, "
                              "or drop subsample_size to use every row.")

    def initial_loc(self):
        """The flat unconstrained point the location starts at (``init_loc.py``)."""
        return initial_loc(self, self.init_loc)

    def initial_scales(self, loc, init_scale):
        """Flat per-coordinate starting scales: ``init_scale``, or at the mode (``init_loc="map"``) the
        curvature's (``init_loc.curvature_scale``)."""
        if isinstance(self.init_loc, str) and self.init_loc == "map":
            return curvature_scale(self, loc, init_scale)
        return jnp.full(self.dim, init_scale, _float())

    # -- flat vectors and site dictionaries
    def unravel(self, flat) -> dict:
        out, i = {}, 0
        for a, s in self.shapes.items():
            out[a] = jnp.reshape(flat[..., i:i + self.sizes[a]], flat.shape[:-1] + s)
            i += self.sizes[a]
        return out

    def ravel(self, u: dict):
        return jnp.concatenate([jnp.reshape(u[a], (-1,)) for a in self.shapes]) if self.shapes else jnp.zeros(0)

    # -- what an objective asks of a guide
    def density(self, u, args):
        """The model's log density at unconstrained ``u`` (Jacobian included; discrete sites summed out)."""
        if self.discrete:
            return M.marginal_log_density_unconstrained(self.program, u, args)
        if self.rows:  # the rows given with u (subsample.Subsampled draws them)
            mode = C.Unconstrained(frozenset(self.shapes), rest=C.Given())
            return C.run(self.program, mode, args, inputs=u).log_joint
        return C.log_density_unconstrained(self.program, u, args)

    def expect(self, phi, key, f, baseline, args=None):
        u, log_q = self.sample_u(phi, key, self.args if args is None else args)
        value = f(u, log_q)
        return value, value

    def expect_many(self, phi, keys, f, baseline, args=None):
        args = self.args if args is None else args
        u, log_q = jax.vmap(lambda k: self.sample_u(phi, k, args))(keys)
        value = f(u, log_q)
        return value, value

    def draw(self, phi, key, args=None):
        """One draw of the guide in its own coordinates (the unconstrained ``u`` that ``density`` reads)."""
        return self.sample_u(phi, key, self.args if args is None else args)[0]

    def constrain(self, u, args=None):
        """The continuous latent sites at ``T(u)``, in the model's coordinates."""
        trace = C.run(self.program, ToSupport(), self.args if args is None else args, inputs=u)
        return {a: trace.choices[a] for a in self.shapes}

    def draw_u(self, phi, keys, args):
        """Unconstrained draws, one per key (stacked); pure (``jit`` it)."""
        return jax.vmap(lambda k: self.sample_u(phi, k, args)[0])(keys)

    def push(self, u, discrete, args, key):
        """``(choices, retval)`` of the model for stacked draws ``u`` (and of the discrete sites); pure.
        ``key``: the run's stream for the subsampled plates' rows, drawn afresh for each draw (they are
        not part of the fit); unused without them."""
        if self.discrete:
            return jax.vmap(lambda x, d: M.constrained_trace(self.program, x, d, args))(u, discrete)
        if self.rows:  # each draw with rows of its own, from the run's key
            mode = C.Unconstrained(frozenset(self.shapes), rest=C.Generate())
            n = jax.tree.leaves(u)[0].shape[0]
            keys = jax.random.split(key, n)
            trace = jax.vmap(lambda x, k: C.run(self.program, mode, args, inputs=x, key=k))(u, keys)
            return trace.choices, trace.retval
        trace = jax.vmap(lambda x: C.run(self.program, C.Unconstrained(), args, inputs=x))(u)
        return trace.choices, trace.retval

    def finish(self, phi, args):
        """The parameters after training (AutoLaplace adds its curvature); by default ``phi``. Pure."""
        return phi

    def check(self, phi):
        """Raise a ModelError if the finished parameters are unusable (concrete values); by default nothing."""


def _normal_log_q(eps, log_scale_sum):
    return jnp.sum(-0.5 * eps ** 2) - 0.5 * eps.size * _LOG_2PI - log_scale_sum


# ---------------------------------------------------------------------------
# Mean-field and point mass


@dataclass(frozen=True)
class AutoNormal:
    """Mean-field normal guide in unconstrained coordinates (see the module docstring)."""

    init_scale: float = 0.1
    init_loc: object = "zero"

    def bind(self, program, args):
        return _AutoNormal(program, args, float(self.init_scale), self.init_loc)


class _AutoNormal(UnconstrainedGuide):
    def __init__(self, program, args, init_scale, init_loc):
        super().__init__(program, args, init_loc)
        self.log_init_scale = math.log(init_scale)

    def init(self, key):
        loc = self.initial_loc()
        scale = self.initial_scales(loc, math.exp(self.log_init_scale))
        return {"loc": self.unravel(loc), "log_scale": self.unravel(jnp.log(scale))}

    def constrained(self, phi):
        return {"loc": phi["loc"], "scale": jax.tree.map(jnp.exp, phi["log_scale"])}

    def sample_u(self, phi, key, args):
        # one draw of the flat standard normal for all sites (one hash, not a key folded in per site)
        noise = self.unravel(jax.random.normal(key, (self.dim,), _float()))
        u, log_q = {}, jnp.zeros((), _float())
        for a in self.shapes:
            loc, log_scale = phi["loc"][a], phi["log_scale"][a]
            eps = noise[a].astype(loc.dtype)
            u[a] = loc + jnp.exp(log_scale) * eps
            log_q = log_q + _normal_log_q(eps, jnp.sum(log_scale))
        return u, log_q

    def log_density(self, phi, u, args=None):
        """``log q_phi(u)`` at given unconstrained values."""
        eps = {a: (u[a] - phi["loc"][a]) * jnp.exp(-phi["log_scale"][a]) for a in self.shapes}
        return sum(_normal_log_q(eps[a], jnp.sum(phi["log_scale"][a])) for a in self.shapes)


@dataclass(frozen=True)
class AutoDelta:
    """Point-mass guide: VI with it is MAP estimation in the model's coordinates."""

    init_loc: object = "zero"

    def bind(self, program, args):
        return _AutoDelta(program, args, self.init_loc)


class _AutoDelta(UnconstrainedGuide):
    point_mass = True  # no density on the sites: VI with it reports no evidence bound (method.py)

    def init(self, key):
        return self.unravel(self.initial_loc())

    def constrained(self, phi):
        return self.constrain(phi)

    def sample_u(self, phi, key, args):
        log_det = C.run(self.program, ToSupport(), args, inputs=phi).log_given
        return dict(phi), log_det


# ---------------------------------------------------------------------------
# Full-rank, low-rank and Laplace: a Gaussian over the flat vector of all coordinates


def _tril(raw_lower, log_diag):
    return jnp.tril(raw_lower, -1) + jnp.diag(jnp.exp(log_diag))


def _readable_gaussian(guide, loc, cov, scale_tril=None):
    out = {"loc": guide.unravel(loc), "covariance": cov, "sites": tuple(guide.shapes)}
    if scale_tril is not None:
        out["scale_tril"] = scale_tril
    return out


@dataclass(frozen=True)
class AutoMultivariateNormal:
    """Full-covariance normal guide over all unconstrained coordinates: ``u = loc + L eps``.

    ``post.params``: ``loc`` (per site), ``scale_tril`` ``L`` and ``covariance`` ``L L^T`` over the
    flat vector whose blocks are the sites in ``sites`` order (row-major within a site)."""

    init_scale: float = 0.1
    init_loc: object = "zero"

    def bind(self, program, args):
        return _AutoMVN(program, args, float(self.init_scale), self.init_loc)


class _AutoMVN(UnconstrainedGuide):
    def __init__(self, program, args, init_scale, init_loc):
        super().__init__(program, args, init_loc)
        self.log_init_scale = math.log(init_scale)

    def init(self, key):
        d = self.dim
        loc = self.initial_loc()
        if isinstance(self.init_loc, str) and self.init_loc == "map":  # the Laplace approximation, if it exists
            H = -jax.hessian(lambda v: self.density(self.unravel(v), self.args))(loc)
            L = jnp.linalg.cholesky(jnp.linalg.inv(0.5 * (H + H.T)))
            if bool(jnp.all(jnp.isfinite(L))):
                return {"loc": loc, "lower": jnp.tril(L, -1), "log_diag": jnp.log(jnp.diagonal(L))}
        return {"loc": loc, "lower": jnp.zeros((d, d), _float()),
                "log_diag": jnp.log(self.initial_scales(loc, math.exp(self.log_init_scale)))}

    def constrained(self, phi):
        L = _tril(phi["lower"], phi["log_diag"])
        return _readable_gaussian(self, phi["loc"], L @ L.T, L)

    def sample_u(self, phi, key, args):
        eps = jax.random.normal(key, (self.dim,), _float())
        L = _tril(phi["lower"], phi["log_diag"])
        return self.unravel(phi["loc"] + L @ eps), _normal_log_q(eps, jnp.sum(phi["log_diag"]))

    def log_density(self, phi, u, args=None):
        L = _tril(phi["lower"], phi["log_diag"])
        eps = jax.scipy.linalg.solve_triangular(L, self.ravel(u) - phi["loc"], lower=True)
        return _normal_log_q(eps, jnp.sum(phi["log_diag"]))


@dataclass(frozen=True)
class AutoLowRank:
    """Normal guide with low-rank-plus-diagonal covariance ``W W^T + diag(d^2)`` (``W``: ``D x rank``)."""

    rank: int = 2
    init_scale: float = 0.1
    init_loc: object = "zero"

    def bind(self, program, args):
        if int(self.rank) < 1:
            raise ModelError(f"AutoLowRank needs rank >= 1, not {self.rank}")
        return _AutoLowRank(program, args, int(self.rank), float(self.init_scale), self.init_loc)


class _AutoLowRank(UnconstrainedGuide):
    def __init__(self, program, args, rank, init_scale, init_loc):
        super().__init__(program, args, init_loc)
        self.rank, self.init_scale = rank, init_scale

    def init(self, key):
        d = self.dim
        # W = 0 is a stationary point of the objective in W (it enters through W W^T): start off it
        factor = 0.01 * self.init_scale * jax.random.normal(key, (d, self.rank), _float())
        return {"loc": self.initial_loc(), "factor": factor,
                "log_diag": jnp.full(d, math.log(self.init_scale), _float())}

    def constrained(self, phi):
        W, d2 = phi["factor"], jnp.exp(2 * phi["log_diag"])
        return {**_readable_gaussian(self, phi["loc"], W @ W.T + jnp.diag(d2)), "cov_factor": W,
                "cov_diag": jnp.exp(phi["log_diag"])}

    def sample_u(self, phi, key, args):
        k1, k2 = jax.random.split(key)
        W, log_d = phi["factor"], phi["log_diag"]
        e1 = jax.random.normal(k1, (self.rank,), _float())
        e2 = jax.random.normal(k2, (self.dim,), _float())
        x = W @ e1 + jnp.exp(log_d) * e2
        return self.unravel(phi["loc"] + x), _low_rank_log_density(x, W, log_d)

    def log_density(self, phi, u, args=None):
        return _low_rank_log_density(self.ravel(u) - phi["loc"], phi["factor"], phi["log_diag"])


def _low_rank_log_density(x, W, log_d):
    """``log N(x; 0, W W^T + diag(exp(2 log_d)))`` by the Woodbury identity and the matrix determinant lemma."""
    d_inv = jnp.exp(-2 * log_d)
    Wd = W * d_inv[:, None]                                  # D^-1 W
    A = jnp.eye(W.shape[1], dtype=W.dtype) + W.T @ Wd        # I + W^T D^-1 W
    chol = jnp.linalg.cholesky(A)
    b = jax.scipy.linalg.solve_triangular(chol, Wd.T @ x, lower=True)
    quad = jnp.sum(x * x * d_inv) - jnp.sum(b * b)
    log_det = 2 * jnp.sum(jnp.log(jnp.diagonal(chol))) + 2 * jnp.sum(log_d)
    return -0.5 * (quad + log_det + x.shape[0] * _LOG_2PI)


@dataclass(frozen=True)
class AutoLaplace:
    """The Laplace approximation: the mode ``u*`` of the unconstrained posterior, found by the optimiser
    (the objective is then ``density(u)``), and ``N(u*, H^{-1})``, ``H`` the negative Hessian there.

    ``post.params``: ``loc`` (per site), ``covariance`` ``H^{-1}``, ``scale_tril`` its Cholesky factor."""

    init_loc: object = "zero"

    def bind(self, program, args):
        return _AutoLaplace(program, args, self.init_loc)


class _AutoLaplace(UnconstrainedGuide):
    def __init__(self, program, args, init_loc):
        super().__init__(program, args, init_loc)
        if self.rows:
            self.refuse_rows("AutoLaplace's covariance is the curvature of the full data's density at its mode")

    def init(self, key):
        return {"loc": self.initial_loc()}

    def finish(self, phi, args):
        loc = phi["loc"]
        H = -jax.hessian(lambda x: self.density(self.unravel(x), args))(loc)
        cov = jnp.linalg.inv(0.5 * (H + H.T))
        return {"loc": loc, "scale_tril": jnp.linalg.cholesky(cov)}

    def check(self, phi):
        if not bool(jnp.all(jnp.isfinite(phi["scale_tril"]))):
            raise ModelError(
                f"the Laplace approximation of '{self.program.name}' failed: the negative Hessian of the log "
                "density at the fitted mode is not positive definite (the optimiser did not reach a mode, or "
                "the posterior is flat in some direction)", span=self.program.span,
                hint="Run more steps, or use ppl.AutoMultivariateNormal().")

    def constrained(self, phi):
        L = phi.get("scale_tril")
        return _readable_gaussian(self, phi["loc"], None if L is None else L @ L.T, L)

    def sample_u(self, phi, key, args):
        if "scale_tril" not in phi:  # training: a point mass at the mode of the unconstrained density
            return self.unravel(phi["loc"]), jnp.zeros((), _float())
        eps = jax.random.normal(key, (self.dim,), _float())
        L = phi["scale_tril"]
        return self.unravel(phi["loc"] + L @ eps), _normal_log_q(eps, jnp.sum(jnp.log(jnp.diagonal(L))))
