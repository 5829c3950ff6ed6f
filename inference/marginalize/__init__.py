"""Exact marginalisation of discrete latent sites: a transformation of a static program.

For a program with continuous latent sites ``x`` (read in unconstrained
coordinates ``u``, ``x = T(u)``) and discrete latent sites ``d`` with finite
supports::

    marginal_log_density_unconstrained(program, u, args)
        = log  sum_d  p(T(u), d, y)  +  log |det J_T(u)|

    recover_discrete(program, key, u_draws, args)  draws  d ~ p(d | T(u), y)  for each draw of u

How the sum is done without enumerating the product of every support:

1. Each site's log-density term is recorded *per element* of the plates and
   loops around it (:class:`ElementInterpreter`), not summed.
2. A discrete site is one *variable* whose elements along its plates (and
   along the steps of a loop that does not carry it) are independent given
   the rest: the plate is a promise of conditional independence, as in
   Pyro and NumPyro. Its remaining ("free") elements are enumerated jointly.
   Evaluating the program with the site set to each value broadcast over
   the plate gives, in one pass, the term of every element for that value:
   a mixture's per-datum ``z[n]`` costs ``K`` evaluations of ``N`` elements,
   ``O(N K)``, not ``K^N``.
3. Terms are grouped by the discrete variables they read (from the
   dependency graph, ``semantics.graph``); each group is evaluated once on
   the grid of its own variables only (``vmap``), so unrelated variables do
   not multiply the work.
4. The factors are contracted by plated variable elimination (Obermeyer et
   al., *Tensor variable elimination for plated factor graphs*, 2019):
   innermost plates first, each variable summed out (log-sum-exp) where its
   plate is, then the plate's product taken (a sum of logs).
5. A loop whose discrete sites feed later steps through the carry (a hidden
   Markov chain) is summed by the forward algorithm: the joint value of the
   step's discrete sites is the chain's state, and the carried values must be
   a function of the current state (first order). ``O(T C^2)`` for ``C``
   states. Sampling then runs forward filtering, backward sampling.

Law (checked in ``tests/test_marginalize.py``): for every ``u``, the result
equals ``log sum`` over the full grid of discrete values of
``compile.log_density_unconstrained`` with those values given, i.e. exact
enumeration of the discrete sites.

Not supported (a clear error says so): discrete sites with infinite support
(Poisson, Geometric), a discrete site whose value is used outside its plate
or loop (other than as the state of a first-order chain), a plate whose terms
read other elements of the site (``cumsum``, ``roll``: found by a probe,
``independence``), carried discrete
sites in nested loops or with a state that accumulates over steps, and
chains whose per-step state has more than ``CHAIN_LIMIT`` values.
Continuous sites whose support depends on a discrete site are not
detected; their unconstrained coordinates would change meaning with it.

The parts, one module each: ``elements`` (step 1, and the forward algorithm of
step 5), ``layout`` (the axes each term keeps), ``supports`` (the values of
the discrete sites), ``plan`` (variables, chains and terms, checked once per
program), ``contract`` (steps 3 and 4); the public functions are here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics.cache import cached
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.stdlib.errors import ModelError
from ppl.inference.marginalize.contract import _align, _contract, _Factor, _factors, _run_terms
from ppl.inference.marginalize.elements import ElementInterpreter, _Unconstrained, element_log_densities
from ppl.inference.marginalize.layout import Layout, SiteAxes, site_axes, site_layout
from ppl.inference.marginalize.plan import CHAIN_LIMIT, GRID_LIMIT, _plan, _Plan, refuse_subsampling
from ppl.inference.marginalize.supports import site_supports

__all__ = [
    "can_marginalize",
    "refuse_subsampling",
    "check_marginalizable",
    "marginal_log_density_unconstrained",
    "recover_discrete",
    "constrain",
    "constrained_trace",
    "has_discrete_latents",
    "continuous_shapes",
    "ElementInterpreter",
    "element_log_densities",
    "Layout",
    "site_layout",
    "site_supports",
    "SiteAxes",
    "site_axes",
    "GRID_LIMIT",
    "CHAIN_LIMIT",
]


# ---------------------------------------------------------------------------
# Public functions


def check_marginalizable(program: ir.Program, args) -> None:
    """Raise the ``ModelError`` that says why the discrete latent sites cannot be summed out, if they cannot."""
    _plan(program, args)


def can_marginalize(program: ir.Program, args) -> bool:
    """Whether every discrete latent site of the program can be summed out exactly."""
    try:
        _plan(program, args)
    except ModelError:
        return False
    return True


def has_discrete_latents(program: ir.Program) -> bool:
    """Whether any latent site of the program is discrete (and so needs summing out for NUTS)."""
    return any(info.is_discrete for info in program.latent_sites().values())


def continuous_shapes(program: ir.Program, args) -> dict:
    """Unconstrained shapes of the continuous latent sites (stacked in loops)."""
    return {a: s for a, s in C.unconstrained_shapes(program, args).items() if s is not None}


def marginal_log_density_unconstrained(program: ir.Program, u: dict, args):
    """``log sum_d p(T(u), d, y) + log|det J_T(u)|``: the discrete latent sites summed out exactly.

    ``u`` holds the unconstrained values of the continuous latent sites only.
    Pure and differentiable in ``u``; ``jit`` it. Equals
    ``compile.log_density_unconstrained`` when there is no discrete site.
    """
    plan = _plan(program, args)
    factors, valid = _factors(plan, program, u, args)
    total, _ = _contract(plan, factors)
    return C.nan_unless(valid, total)  # a parameter outside its domain: no density (compile.log_density)


def _recover_one(plan: _Plan, program, key, u, args):
    k_vars, k_chain = jax.random.split(key)
    _, steps = _contract(plan, _factors(plan, program, u, args)[0], record=True)
    sampled: dict[str, tuple] = {}
    keys = jax.random.split(k_vars, max(len(steps), 1))
    for step, k in zip(reversed(steps), keys):
        sizes = step.table.shape[len(step.local) + len(step.remaining):]
        index: list = [slice(None)] * len(step.local)
        for v in step.remaining:
            idx, labels = sampled[v]
            index.append(jnp.broadcast_to(_align(_Factor(idx, (), labels), (), step.labels), sizes))
        grids = jnp.meshgrid(*[jnp.arange(n) for n in sizes], indexing="ij") if sizes else []
        table = step.table[tuple(index) + tuple(grids)] if (step.remaining or sizes) else step.table
        # table: (local sizes..., label sizes...)
        nloc = len(step.local)
        moved = jnp.moveaxis(table, tuple(range(nloc)), tuple(range(table.ndim - nloc, table.ndim)))
        flat = moved.reshape(tuple(sizes) + (-1,))
        draw = jax.random.categorical(k, flat, axis=-1)
        local_sizes = tuple(plan.vars[v].size for v in step.local)
        parts = jnp.unravel_index(draw, local_sizes) if local_sizes else ()
        for v, idx in zip(step.local, parts):
            sampled[v] = (idx, step.labels)
    indices = {}
    for v, var in plan.vars.items():
        idx, labels = sampled[v]
        indices[v] = _align(_Factor(idx, (), labels), (), var.labels).reshape(var.axes.label_shape)
    values = {v: plan.vars[v].value(indices[v]) for v in plan.vars}
    if plan.chains:
        _, acc = _run_terms(plan, program, u, args, indices, key=k_chain, sample_chains=True)
        for chain in plan.chains.values():
            for d in chain.tables:
                values[d] = acc.choices[d]
    return values




def recover_discrete(program: ir.Program, key, u_draws: dict, args) -> dict:
    """Draw every discrete latent site from ``p(d | T(u), y)``, for each draw of ``u``.

    ``u_draws[a]`` has leading draw axes (any number, e.g. ``(chains, draws)``)
    followed by the unconstrained shape of site ``a``. Returns the discrete
    sites' values with the same leading axes. Draws use independent keys.
    """
    shapes = continuous_shapes(program, args)
    lead = None
    for a, s in shapes.items():
        x = np.shape(u_draws[a])
        here = x[: len(x) - len(s)]
        if lead is not None and here != lead:
            raise ModelError("the draws of the continuous sites have different leading shapes")
        lead = here
    if lead is None:
        raise ModelError("recover_discrete needs the draws' leading shape; the model has no continuous site",
                         hint="Use Enumerate for a model whose latent sites are all discrete.")
    n = int(np.prod(lead, dtype=np.int64))
    flat = {a: jnp.reshape(jnp.asarray(u_draws[a]), (n,) + tuple(shapes[a])) for a in shapes}
    def batch(keys, u, a):
        plan = _plan(program, a)
        return jax.vmap(lambda k, x: _recover_one(plan, program, k, x, a))(keys, u)

    fn = cached(program, ("recover-discrete",), lambda: jax.jit(batch))
    out = fn(jax.random.split(key, n), flat, list(args))
    return {a: np.asarray(v).reshape(tuple(lead) + tuple(np.shape(v)[1:])) for a, v in out.items()}


def constrain(program: ir.Program, u: dict, discrete: dict, args) -> dict:
    """Every latent and deterministic site's value, from unconstrained ``u`` and discrete values."""
    return constrained_trace(program, u, discrete, args)[0]


def constrained_trace(program: ir.Program, u: dict, discrete: dict, args) -> tuple:
    """``(choices, retval)`` of one run with the continuous sites at ``T(u)`` and the discrete ones given."""
    mode = _Unconstrained(set(discrete))
    trace = C.run(program, _SummedMode(mode), args, inputs={**u, **discrete})
    return trace.choices, trace.retval


class _SummedMode(C.Mode):
    """An element mode made into a compiled-engine mode (log densities summed)."""

    def __init__(self, inner):
        self.inner = inner

    def sample(self, stmt, dist, inputs, key):
        value, ld, given = self.inner.sample(stmt, dist, inputs, key)
        return value, C.sum_terms(ld), given
