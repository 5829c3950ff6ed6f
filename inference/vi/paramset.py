"""The ``ppl.param`` sites of one program, as the pytree an optimiser updates.

Law: ``constrained(init(key))[a] == the init of param a`` (its value outside VI), and
``constrained(u)[a] == T_a(u[a])`` with ``T_a`` the bijector of ``a``'s constraint
(real numbers: the identity), so an optimiser moves ``u`` freely and every value it
reaches lies inside the constraint. Values are bound for a run with ``params.bound``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics import params as P
from ppl.stdlib import constraints as K
from ppl.stdlib.bijectors import biject_to
from ppl.stdlib.errors import ModelError

__all__ = ["ParamSet"]


class ParamSet:
    """The parameters of ``program`` run on ``args`` (see the module docstring)."""

    def __init__(self, program: ir.Program, args):
        self.infos = P.params_of(program)
        for info in self.infos.values():
            if info.in_loop:
                raise ModelError(f"the parameter '{info.address}' is declared inside a loop", span=info.span,
                                 hint="Declare parameters outside ppl.scan (a vector parameter, indexed in the loop).")
        inits: dict = {}
        if self.infos:
            with P.recording_inits() as inits:
                C.run(program, C.Simulate(), args, key=jax.random.key(0))
        self.inits = {a: jnp.asarray(v, jnp.result_type(float)) for a, v in inits.items()}
        self.bijectors = {a: biject_to(info.constraint or K.real) for a, info in self.infos.items()}

    def __bool__(self):
        return bool(self.infos)

    def init(self):
        return {a: self.bijectors[a].inverse(v) for a, v in self.inits.items()}

    def constrained(self, u):
        return {a: self.bijectors[a].forward(v) for a, v in u.items()}


class WithModelParams:
    """A bound guide together with the model's own parameters ``theta`` (``ppl.param`` in the model):
    the optimiser's pytree is ``{"guide": phi, "model": u_theta}``; every guide method sees ``phi``,
    and ``model_values`` gives the objective's ``density`` the model's (constrained) values. So an
    objective fits both (maximum marginal likelihood with the ELBO; wake-p with RWS)."""

    def __init__(self, guide, model_params: ParamSet):
        self.inner, self.model_params = guide, model_params

    def init(self, key):
        return {"guide": self.inner.init(key), "model": self.model_params.init()}

    def constrained(self, phi):
        return {"guide": self.inner.constrained(phi["guide"]), "model": self.model_values(phi)}

    def model_values(self, phi):
        return self.model_params.constrained(phi["model"])

    def expect(self, phi, *a, **k):
        return self.inner.expect(phi["guide"], *a, **k)

    def expect_many(self, phi, *a, **k):
        return self.inner.expect_many(phi["guide"], *a, **k)

    def draw(self, phi, *a, **k):
        return self.inner.draw(phi["guide"], *a, **k)


def with_model_params(guide, program, args):
    """``guide`` itself when the model has no parameters, else a :class:`WithModelParams`."""
    params = ParamSet(program, args)
    if not params:
        return guide
    if hasattr(guide, "density") or not hasattr(guide, "expect"):
        info = next(iter(params.infos.values()))
        raise ModelError(f"the model '{program.name}' has a parameter '{info.address}' (ppl.param); fitting it "
                         "needs a guide written as a ppl model", span=info.span,
                         hint="Write the guide as a @ppl.model with ppl.param sites, or make the parameter data.")
    return WithModelParams(guide, params)
