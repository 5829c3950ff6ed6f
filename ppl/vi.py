"""The front end of variational inference: ``ppl.expectation``, ``ppl.param`` and the VI names.

The machinery is in ``ppl.inference.vi``; this module only turns a plain Python function
into a model where an API accepts one.
"""

from __future__ import annotations

from ppl.inference.vi import ELBO, IWELBO, VI, AutoDelta, AutoNormal, Expectation
from ppl.inference.vi import RWS, VIMCO, Marginal
from ppl.inference.vi import AutoFlow, AutoLaplace, AutoLowRank, AutoMultivariateNormal, Pathfinder
from ppl.inference.vi import Amortized as _Amortized
from ppl.model import Model
from ppl.model import model as _as_model
from ppl.semantics.effects import param
from ppl.semantics.scored_call import density, sim

__all__ = ["expectation", "param", "VI", "ELBO", "IWELBO", "AutoNormal", "AutoDelta"]
__all__ += ["RWS", "VIMCO", "marginal", "sim", "density"]
__all__ += ["AutoMultivariateNormal", "AutoLowRank", "AutoLaplace", "AutoFlow", "Amortized", "Pathfinder"]


def expectation(fn) -> Expectation:
    """``E = ppl.expectation(fn)``: the expectation of the scalar a ppl program returns.

    ``E.estimate(key, *args)`` is an unbiased estimate of ``E_x[fn(*args)]`` over the program's
    random choices; ``E.grad(key, *args)`` an unbiased estimate of its gradient with respect to
    ``args`` (same structure); ``E.value_and_grad`` both. Each random choice uses its
    ``estimator=`` (``ppl.sample(name, d, estimator="reinforce")``). They jit and vmap.
    """
    return Expectation(fn if isinstance(fn, Model) else _as_model(fn))


def Amortized(guide, net):  # noqa: N802 - a constructor, named as the guide it builds
    """An amortised guide: ``guide(net, *data)`` draws the model's latent sites, with ``net`` any pytree
    (an Equinox module, a Flax parameter dict) whose floating-point arrays are trained. ``data`` are the
    model's array arguments, in order. ``guide`` is a ``@ppl.model`` or a plain function."""
    return _Amortized(guide if isinstance(guide, Model) else _as_model(guide), net)


def marginal(guide, over, K: int = 1, args: tuple = (), reverse=None) -> Marginal:
    """The guide ``guide(*args)`` with its auxiliary random choices ``over`` (a name or several)
    marginalised by SIR with ``K`` particles: a hierarchical family. With ``ppl.ELBO`` and K = 1 this
    is HVI, with K > 1 IWHVI, and with ``ppl.IWELBO`` on top DIWHVI (``docs/vi.md``).

    ``reverse``: a learned reverse model ``r(u | z)``, a ppl model (or function) taking the dict of the
    guide's other sites' values and drawing the ``over`` sites, with its own ``ppl.param``s; SIR then
    proposes from it instead of ``q(u)``, and the objective trains it (a tighter bound)."""
    if reverse is not None and not isinstance(reverse, Model):
        reverse = _as_model(reverse)
    return Marginal(guide if isinstance(guide, Model) else _as_model(guide), over, int(K), tuple(args), reverse)
