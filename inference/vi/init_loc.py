"""Where an automatic guide's location starts: ``init_loc`` of ``AutoNormal``, ``AutoMultivariateNormal``, ...

- ``"zero"``: ``u = 0`` in the model's unconstrained coordinates (``z = T(0)``: 0 for a real site, 1 for
  a positive one, the midpoint of an interval);
- ``"map"``: the mode of the unconstrained density ``log p(T(u), y) + log|det J_T(u)|``, found by
  L-BFGS (``optax.lbfgs``) from ``u = 0``, stopping when ``log p`` changes by less than a relative
  ``1e-10`` or after ``max_iters`` iterations; where it does not reach a finite point it stays at 0.
  The Gaussian guides then also start their scales at the curvature there (``curvature_scale``):
  a mode with a wide guide around it is no start at all where the posterior is narrow;
- a dict ``{site: value}`` of constrained values (sites left out start at 0), mapped through each
  site's bijector, like ``NUTS(init={...})``.

Law: ``init(...)`` is a point ``u`` with the guide's shapes (``guide.ravel`` order); the "map" point
satisfies ``density(u) >= density(0)`` (L-BFGS only accepts steps that increase it).
The mode is where Adam's fit then starts; on posteriors far from 0 in units of the step size (an
intercept of 26 with Adam at 1e-2 moves at most ~20 in 5000 steps), it is what lets the fit finish.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics import compile as C
from ppl.stdlib.bijectors import biject_to
from ppl.stdlib.errors import ModelError

__all__ = ["initial_loc", "map_point", "curvature_scale", "INIT_LOCS"]

INIT_LOCS = ("zero", "map")


def map_point(guide, args, max_iters: int = 1000):
    """The mode of ``guide.density`` over the flat unconstrained vector, by L-BFGS from 0 (see above)."""
    import optax

    x0 = jnp.zeros(guide.dim, jnp.result_type(float))

    def loss(x):
        return -guide.density(guide.unravel(x), args)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry):
        x, state, _, _, value, i = carry
        new_value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=new_value, grad=grad, value_fn=loss)
        new = optax.apply_updates(x, updates)
        ok = jnp.all(jnp.isfinite(new))
        return jnp.where(ok, new, x), state, ok, value, new_value, i + 1

    def going(carry):
        _, _, ok, prev, value, i = carry
        moved = jnp.abs(prev - value) > 1e-10 * jnp.maximum(1.0, jnp.abs(value))
        return (i < max_iters) & ok & (moved | (i < 2))

    inf = jnp.asarray(jnp.inf, x0.dtype)
    start = (x0, opt.init(x0), jnp.asarray(True), inf, inf, 0)
    x = jax.lax.while_loop(going, step, start)[0]
    good = jnp.isfinite(loss(x)) & (loss(x) <= loss(x0))
    return jnp.where(good, x, x0)


# The compiled L-BFGS search, one per (program, coordinates, max_iters), kept weakly by program: a fit
# with new data of the same shapes reuses it, and it goes with the program. It holds no guide (a guide
# holds its data): it traces a bare copy of the guide's coordinates, its program read through a weak
# reference. (``jax.jit`` with the guide as a static argument kept every guide alive and compiled anew
# for each, a new guide being unequal to the last.)
_MAPS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_COORDINATES = ("shapes", "sizes", "dim", "discrete", "rows")  # what density and unravel read, beside the program


def _compiled_map(guide, max_iters: int):
    """``fn(args) -> map_point(guide, args, max_iters)``, compiled once per what determines its program."""
    key = (type(guide), max_iters, tuple(guide.shapes.items()), guide.discrete, guide.rows)
    try:
        table = _MAPS.setdefault(guide.program, {})
    except TypeError:  # a program that cannot be weakly referenced: compile for this guide alone
        return jax.jit(lambda args: map_point(guide, args, max_iters))
    fn = table.get(key)
    if fn is None:
        fn = table[key] = jax.jit(functools.partial(_traced_map, weakref.ref(guide.program), type(guide),
                                                    {a: getattr(guide, a) for a in _COORDINATES}, max_iters))
    return fn


def _traced_map(program_ref, kind, coordinates, max_iters, args):
    program = program_ref()
    if program is None:  # pragma: no cover - the table entry dies with the program
        raise RuntimeError("the program of this compiled mode search no longer exists")
    frame = object.__new__(kind)  # the guide's coordinates and program, without its data
    frame.__dict__.update(coordinates, program=program)
    return map_point(frame, args, max_iters)


def curvature_scale(guide, x, fallback: float, args=None):
    """Per coordinate, ``1 / sqrt(H_ii)`` with ``H = -grad^2 density`` at ``x`` (the mean-field optimum's
    scale for a Gaussian posterior), where that is finite and positive; ``fallback`` elsewhere. A guide that
    starts at the mode with this scale starts at the mean-field Laplace approximation, not a guess."""
    args = guide.args if args is None else args
    h = jnp.diagonal(-jax.hessian(lambda v: guide.density(guide.unravel(v), args))(x))
    ok = jnp.isfinite(h) & (h > 0)
    return jnp.where(ok, 1.0 / jnp.sqrt(jnp.where(ok, h, 1.0)), fallback)


def initial_loc(guide, how, args=None):
    """The flat unconstrained starting location of ``guide`` for ``init_loc=how`` (see the module docstring)."""
    args = guide.args if args is None else args
    if isinstance(how, str):
        if how == "zero":
            return jnp.zeros(guide.dim, jnp.result_type(float))
        if how == "map":
            return _compiled_map(guide, 1000)(args)
    if isinstance(how, dict):
        return _from_values(guide, how, args)
    raise ModelError(f"init_loc={how!r} is not a starting point",
                     hint="Use 'zero', 'map' (the mode, by L-BFGS), or a dict of initial values by site.")


class _AtValues(C.Mode):
    """Each latent site at ``values[a]`` where given, else at ``T(0)``; records ``u[a] = T^-1(value)``
    through the bijector of the site's distribution *at that point* (its support may depend on
    earlier sites)."""

    def __init__(self, values):
        self.values, self.u = values, {}

    def sample(self, stmt, dist, inputs, key):
        if getattr(dist, "is_discrete", False):  # summed out or drawn afresh: any value of its support
            return jnp.zeros(stmt.out.shape, stmt.out.dtype), jnp.zeros(()), True
        bij = biject_to(dist.support)
        if stmt.address in self.values:
            value = jnp.broadcast_to(jnp.asarray(self.values[stmt.address], stmt.out.dtype), stmt.out.shape)
            self.u[stmt.address] = bij.inverse(value)
        else:
            value = bij.forward(jnp.zeros(stmt.out.shape, stmt.out.dtype))
        return jnp.asarray(value, stmt.out.dtype), jnp.zeros(()), True


def _from_values(guide, values, args):
    sites = guide.program.latent_sites()
    for a in values:
        if a not in guide.shapes:
            raise ModelError(f"init_loc names '{a}', which is not a continuous latent site of "
                             f"'{guide.program.name}'; they are {sorted(guide.shapes)}")
        if sites[a].loop_lengths:
            raise ModelError(f"init_loc gives '{a}', a site inside ppl.scan: give the loop's sites no value "
                             "(they start at 0)", span=sites[a].span)
    mode = _AtValues(values)
    C.run(guide.program, mode, args)
    u = dict(guide.unravel(jnp.zeros(guide.dim, jnp.result_type(float))))
    for a, x in mode.u.items():
        if not np.all(np.isfinite(np.asarray(x))):
            raise ModelError(f"init_loc gives '{a}' a value outside the interior of its support",
                             span=sites[a].span, hint=f"Give '{a}' an initial value strictly inside its support.")
        u[a] = jnp.reshape(x, guide.shapes[a])
    return guide.ravel(u)
