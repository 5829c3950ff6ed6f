"""Pathfinder (Zhang, Carpenter, Gelman and Vehtari, JMLR 2022): normal approximations along an L-BFGS path.

In the model's unconstrained coordinates ``u`` (target ``log p(u) = log p(T(u), y) + log|det J_T(u)|``, discrete
sites summed out where ``inference/marginalize/`` can), one path is:

1. L-BFGS (``optax.lbfgs``, zoom line search) maximises ``log p`` from a point drawn uniformly in
   ``(-init_radius, init_radius)``, recording the iterates ``x_0..x_L`` and their gradients ``g_l``;
2. at each iterate, the inverse-Hessian estimate ``H_l`` of L-BFGS from the last ``history`` pairs
   ``s = x_{i+1} - x_i``, ``y = g_i - g_{i+1}`` that satisfy the curvature condition ``s.y > 1e-12 |y|^2``
   (BFGS updates applied to ``H_0 = (s.y / y.y) I`` of the newest pair, as a dense matrix), gives the normal
   ``q_l = N(x_l + H_l g_l, H_l)`` (one quasi-Newton step from ``x_l``);
3. the path's answer is the ``q_l`` with the largest ELBO, estimated from ``num_elbo_draws`` draws each.

``num_paths`` paths run in parallel (vmap); each contributes ``draws_per_path`` draws of its best normal
(multi-path Pathfinder, the paper's Algorithm 2). The pooled draws are weighted against the *mixture* of the
paths' normals, ``w = p(u) / q̄(u)`` with ``q̄ = (1/P) sum_p q_p`` (multiple importance sampling with the
balance heuristic: Veach and Guibas 1995; Elvira, Martino, Luengo and Bugallo 2019), rather than each draw
against its own path's normal as the paper does. Both are unbiased for ``p(y)``; the mixture's weights never
have a larger variance, and a path whose normal is too narrow in some direction no longer gives the pool a
heavy tail wherever another path covers that direction. The weights are Pareto-smoothed (``psis.py``) and
``num_samples`` draws are resampled from them. The result's ``log_evidence`` is the importance estimate
``log mean w`` over the pooled draws, and its
``sample_stats`` record the Pareto ``k`` (above 0.7 the resampled draws are unreliable: warned).
``pathfinder_init`` gives NUTS its initial points this way (``NUTS(init="pathfinder")``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics.cache import cached
from ppl.inference.marginalize import recover_discrete, refuse_subsampling
from ppl.inference._common import refuse_partial_continuous
from ppl.inference.result import Result
from ppl.inference.vi.autoguides import UnconstrainedGuide
from ppl.inference.vi.psis import psis
from ppl.semantics.program import Dynamic
from ppl.inference.mcmc.checks import SamplingWarning
from ppl.stdlib.errors import ModelError

__all__ = ["Pathfinder", "pathfinder_init", "single_path", "lbfgs_inverse_hessian", "mixture_log_density"]

_LOG_2PI = math.log(2 * math.pi)


def lbfgs_inverse_hessian(S, Y, mask):
    """The L-BFGS inverse Hessian (dense) from pairs ``S[j], Y[j]`` (oldest first) where ``mask[j]``:
    ``H_0 = gamma I`` with ``gamma = s.y / y.y`` of the newest kept pair, then one BFGS update per kept pair."""
    d = S.shape[1]
    sy = jnp.sum(S * Y, axis=1)
    yy = jnp.sum(Y * Y, axis=1)
    newest = jnp.max(jnp.where(mask, jnp.arange(S.shape[0]), -1))
    gamma = jnp.where(newest >= 0, sy[jnp.maximum(newest, 0)] / yy[jnp.maximum(newest, 0)], 1.0)
    eye = jnp.eye(d, dtype=S.dtype)

    def update(H, pair):
        s, y, keep, rho_inv = pair
        rho = 1.0 / jnp.where(keep, rho_inv, 1.0)
        V = eye - rho * jnp.outer(y, s)
        new = V.T @ H @ V + rho * jnp.outer(s, s)
        return jnp.where(keep, new, H), None

    H, _ = jax.lax.scan(update, gamma * eye, (S, Y, mask, sy))
    return 0.5 * (H + H.T)


def _lbfgs_path(log_p, x0, max_iters):
    """Iterates ``x_0..x_L`` of L-BFGS maximising ``log_p`` and the gradients of ``log_p`` there."""
    import optax

    loss = lambda x: -log_p(x)  # noqa: E731
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry, _):
        x, state = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=loss)
        new = optax.apply_updates(x, updates)
        new = jnp.where(jnp.all(jnp.isfinite(new)), new, x)  # a failed line search stays put
        return (new, state), (x, -grad, -value)

    (last, _), (xs, gs, fs) = jax.lax.scan(step, (x0, opt.init(x0)), None, length=max_iters)
    f_last, g_last = jax.value_and_grad(log_p)(last)
    return (jnp.concatenate([xs, last[None]]), jnp.concatenate([gs, g_last[None]]),
            jnp.concatenate([fs, f_last[None]]))


def _running(fs, rel_tol):
    """``live[l]``: iterate ``l`` was reached before L-BFGS converged (a relative change of ``log p``
    below ``rel_tol``); iterates after that only repeat the mode in rounding noise."""
    change = jnp.abs(fs[1:] - fs[:-1]) <= rel_tol * jnp.maximum(1.0, jnp.abs(fs[1:]))
    change = change | ~jnp.isfinite(fs[1:])
    stopped = jnp.cumsum(change) > 0  # stopped[l - 1]: the step into iterate l, or one before it, changed nothing
    return jnp.concatenate([jnp.ones(1, bool), ~stopped])


def _normal_draws(key, mean, H, n):
    L = jnp.linalg.cholesky(H)
    eps = jax.random.normal(key, (n, mean.shape[0]), mean.dtype)
    x = mean + eps @ L.T
    log_q = jnp.sum(-0.5 * eps ** 2, axis=1) - 0.5 * mean.shape[0] * _LOG_2PI - jnp.sum(jnp.log(jnp.diagonal(L)))
    return x, log_q


def mixture_log_density(x, means, covs):
    """``log (1/P') sum_p N(x; means[p], covs[p])`` at each row of ``x`` (N, D), over the P' of the P normals
    whose mean and covariance are finite (a path that failed contributes no draws and no component)."""
    ok = jnp.all(jnp.isfinite(means), axis=1) & jnp.all(jnp.isfinite(covs), axis=(1, 2))
    eye = jnp.eye(means.shape[1], dtype=means.dtype)

    def one(mean, cov, good):
        L = jnp.linalg.cholesky(jnp.where(good, cov, eye))
        z = jax.scipy.linalg.solve_triangular(L, (x - jnp.where(good, mean, 0.0)).T, lower=True)
        log_q = -0.5 * jnp.sum(z ** 2, axis=0) - 0.5 * mean.shape[0] * _LOG_2PI - jnp.sum(jnp.log(jnp.diagonal(L)))
        return jnp.where(good, log_q, -jnp.inf)

    each = jax.vmap(one)(means, covs, ok)  # (P, N)
    return jax.scipy.special.logsumexp(each, axis=0) - jnp.log(jnp.sum(ok))


def single_path(log_p, key, dim, *, max_iters, history, num_elbo_draws, num_draws, init_radius):
    """One Pathfinder path: ``(draws, log_p(draws), log_q(draws), best index, ELBO per iterate, the best
    normal's mean and covariance)``. Pure."""
    k_init, k_elbo, k_draw = jax.random.split(key, 3)
    x0 = jax.random.uniform(k_init, (dim,), minval=-init_radius, maxval=init_radius)
    xs, gs, fs = _lbfgs_path(log_p, x0, max_iters)
    live = _running(fs, 10 * jnp.finfo(xs.dtype).eps)
    S, Y = xs[1:] - xs[:-1], gs[:-1] - gs[1:]  # y = grad f(x_{i+1}) - grad f(x_i) for f = -log p
    ok = jnp.sum(S * Y, axis=1) > 1e-12 * jnp.sum(Y * Y, axis=1)
    ok = ok & jnp.all(jnp.isfinite(S), axis=1) & jnp.all(jnp.isfinite(Y), axis=1) & live[1:]
    n = max_iters
    idx = jnp.arange(n)

    def fit(l):  # the normal at iterate l, from the pairs before it
        window = l - history + jnp.arange(history)  # pairs j in [l - history, l)
        valid = (window >= 0) & ok[jnp.clip(window, 0, n - 1)]
        Sw, Yw = S[jnp.clip(window, 0, n - 1)], Y[jnp.clip(window, 0, n - 1)]
        H = lbfgs_inverse_hessian(jnp.where(valid[:, None], Sw, 0.0), jnp.where(valid[:, None], Yw, 1.0), valid)
        return xs[l] + H @ gs[l], H

    def elbo(l, k):
        mean, H = fit(l)
        x, log_q = _normal_draws(k, mean, H, num_elbo_draws)
        value = jnp.mean(jax.vmap(log_p)(x) - log_q)
        return jnp.where(jnp.isfinite(value) & live[l], value, -jnp.inf)

    elbos = jax.vmap(elbo)(idx + 1, jax.random.split(k_elbo, n))  # iterates 1..L (0 has no pair yet)
    best = jnp.argmax(elbos) + 1
    mean, H = fit(best)
    x, log_q = _normal_draws(k_draw, mean, H, num_draws)
    return x, jax.vmap(log_p)(x), log_q, best, elbos, mean, H


class _Target(UnconstrainedGuide):
    """The model's unconstrained density over one flat vector (discrete sites summed out)."""

    def flat_log_p(self, args):
        def log_p(x):
            value = self.density(self.unravel(x), args)
            return jnp.where(jnp.isnan(value), -jnp.inf, value)

        return log_p


def _paths_fn(program, target, options):
    """The compiled paths of ``program`` for ``options``, kept in the program's cache (freed with it)."""
    max_iters, history, num_elbo_draws, num_draws, init_radius = options

    def paths(keys, args):
        run = lambda k: single_path(target.flat_log_p(args), k, target.dim, max_iters=max_iters,  # noqa: E731
                                    history=history, num_elbo_draws=num_elbo_draws, num_draws=num_draws,
                                    init_radius=init_radius)
        x, log_p, _, best, _, means, covs = jax.vmap(run)(keys)
        flat = x.reshape(-1, x.shape[-1])
        return flat, log_p.reshape(-1), mixture_log_density(flat, means, covs), best

    return cached(program, ("pathfinder", options), lambda: jax.jit(paths))


def run_paths(program, args, key, *, num_paths, max_iters, history, num_elbo_draws, draws_per_path,
              init_radius):
    """``(target, draws (P*M, D), log_p, log_q, best iterate per path)`` of ``num_paths`` paths, where
    ``log_q`` is the density of the mixture of the paths' best normals (see the module docstring)."""
    if isinstance(program, Dynamic):
        raise ModelError(program.describe() + " Pathfinder needs a static model.", span=program.span)
    refuse_subsampling(program, "Pathfinder")  # its L-BFGS paths and importance weights need the exact density
    for name, v in (("num_paths", num_paths), ("max_iters", max_iters), ("history", history),
                    ("num_elbo_draws", num_elbo_draws), ("draws_per_path", draws_per_path)):
        if int(v) < 1:
            raise ModelError(f"Pathfinder needs {name} >= 1, not {v}")
    target = _Target(program, args)
    options = (int(max_iters), int(history), int(num_elbo_draws), int(draws_per_path), float(init_radius))
    fn = _paths_fn(program, target, options)
    x, log_p, log_q, best = fn(jax.random.split(key, int(num_paths)), list(args))
    return target, x, np.asarray(log_p), np.asarray(log_q), np.asarray(best)


@dataclass(frozen=True, kw_only=True)
class Pathfinder:
    """Multi-path Pathfinder (see the module docstring); a method for ``ppl.infer``."""

    num_paths: int = 4
    max_iters: int = 100
    history: int = 6
    num_elbo_draws: int = 25
    draws_per_path: int = 1000
    num_samples: int = 1000
    init_radius: float = 2.0

    name = "Pathfinder"

    def run(self, program, args, key) -> Result:
        refuse_partial_continuous(program, "Pathfinder")
        k_paths, k_resample, k_discrete = jax.random.split(key, 3)
        target, x, log_p, log_q, best = run_paths(
            program, args, k_paths, num_paths=self.num_paths, max_iters=self.max_iters, history=self.history,
            num_elbo_draws=self.num_elbo_draws, draws_per_path=self.draws_per_path, init_radius=self.init_radius)
        log_w = log_p - log_q
        finite = np.isfinite(log_w)
        if not finite.any():
            raise ModelError(f"Pathfinder found no draw with a finite log density in '{program.name}'",
                             span=program.span, hint="Check the model, or start from a smaller init_radius.")
        log_evidence = float(np.logaddexp.reduce(log_w[finite]) - math.log(log_w.size))
        smoothed, k = psis(log_w)
        if k > 0.7:
            warnings.warn(f"Pathfinder's Pareto k is {k:.2f} (> 0.7): the normal approximations fit the posterior "
                          "poorly and the resampled draws are unreliable", SamplingWarning, stacklevel=2)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(k_resample)).ravel())
        pick = rng.choice(log_w.size, size=int(self.num_samples), replace=True, p=np.exp(smoothed))
        u = target.unravel(jnp.asarray(x[pick]))
        args = list(args)
        discrete = recover_discrete(program, k_discrete, u, args) if target.discrete else None
        choices, retval = jax.jit(target.push)(u, discrete, args, k_discrete)
        return Result(
            samples={a: np.asarray(v) for a, v in choices.items()},
            returns=jax.tree.map(np.asarray, retval),
            method="Pathfinder",
            engine="compiled",
            log_evidence=log_evidence,
            sample_stats={"pareto_k": np.asarray(k), "best_iteration": best},
            notes=[f"Pathfinder: {self.num_paths} paths, Pareto k = {k:.2f}; log_evidence is the importance "
                   f"estimate over {log_w.size} draws"],
        )


def pathfinder_init(program, args, key, num_chains: int):
    """Initial unconstrained points for ``num_chains`` chains: Pathfinder's resampled draws (one per chain)."""
    k_paths, k_pick = jax.random.split(key)
    d = Pathfinder()  # the defaults: the same compiled paths as ppl.Pathfinder()
    target, x, log_p, log_q, _ = run_paths(program, args, k_paths, num_paths=d.num_paths, max_iters=d.max_iters,
                                          history=d.history, num_elbo_draws=d.num_elbo_draws,
                                          draws_per_path=d.draws_per_path, init_radius=d.init_radius)
    smoothed, _ = psis(log_p - log_q)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(k_pick)).ravel())
    p = np.exp(smoothed)
    pick = rng.choice(log_p.size, size=int(num_chains), replace=bool(np.sum(p > 0) < num_chains), p=p)
    return target.unravel(jnp.asarray(x[pick]))
