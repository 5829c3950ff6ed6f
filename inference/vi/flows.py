"""A normalizing-flow guide (flowjax): ``u = F_phi(eps)``, ``eps ~ N(0, I)``, over the model's unconstrained
coordinates.

The flow is flowjax's masked autoregressive flow (Papamakarios et al. 2017) with affine or
rational-quadratic-spline transformers, oriented so that *sampling* is one parallel pass (the
direction VI needs: each step draws ``u`` and evaluates ``log q(u) = log N(eps) - log|det dF/deps|``).
The flow is an Equinox module; its trainable arrays are the guide's parameters ``phi`` (a pytree),
its other leaves (activation functions, frozen arrays) are held aside and recombined at each use.
Everything else (constraints, discrete sites summed out, draws) is :class:`UnconstrainedGuide`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ppl.inference.vi.autoguides import UnconstrainedGuide
from ppl.stdlib.errors import ModelError

__all__ = ["AutoFlow"]


def _flowjax():
    try:
        import equinox as eqx
        import paramax
        from flowjax import bijections, distributions, flows
    except ImportError as e:  # pragma: no cover - flowjax is a dependency
        raise ModelError("ppl.AutoFlow needs the flowjax package", hint="pip install flowjax") from e
    return eqx, paramax, bijections, distributions, flows


@dataclass(frozen=True)
class AutoFlow:
    """Masked autoregressive flow guide: ``num_layers`` layers of ``transformer`` (``"affine"`` or
    ``"spline"``), each conditioner an MLP of ``width`` units and ``depth`` hidden layers."""

    num_layers: int = 4
    width: int = 32
    depth: int = 1
    transformer: str = "affine"

    def bind(self, program, args):
        if self.transformer not in ("affine", "spline"):
            raise ModelError(f"AutoFlow's transformer must be 'affine' or 'spline', not {self.transformer!r}")
        return _AutoFlow(program, args, self)


class _AutoFlow(UnconstrainedGuide):
    def __init__(self, program, args, spec: AutoFlow):
        super().__init__(program, args)
        self.spec = spec
        eqx, paramax, *_ = _flowjax()
        flow = self._build(jax.random.key(0))
        frozen = lambda leaf: isinstance(leaf, paramax.NonTrainable)  # noqa: E731
        _, self.static = eqx.partition(flow, eqx.is_inexact_array, is_leaf=frozen)

    def _build(self, key):
        eqx, _, bijections, distributions, flows = _flowjax()
        base = distributions.StandardNormal((self.dim,))
        if self.dim == 1:  # an autoregressive flow needs two coordinates; one is an affine map of eps
            return distributions.Transformed(base, bijections.Affine(jnp.zeros(1), jnp.ones(1)))
        spline = bijections.RationalQuadraticSpline(knots=8, interval=4)
        return flows.masked_autoregressive_flow(
            key, base_dist=base, transformer=spline if self.spec.transformer == "spline" else None,
            flow_layers=int(self.spec.num_layers), nn_width=int(self.spec.width), nn_depth=int(self.spec.depth),
            invert=False)

    def init(self, key):
        eqx, paramax, *_ = _flowjax()
        frozen = lambda leaf: isinstance(leaf, paramax.NonTrainable)  # noqa: E731
        return eqx.partition(self._build(key), eqx.is_inexact_array, is_leaf=frozen)[0]

    def flow(self, phi):
        eqx, paramax, *_ = _flowjax()
        return paramax.unwrap(eqx.combine(phi, self.static))

    def constrained(self, phi):
        return {"flow": self.flow(phi), "sites": tuple(self.shapes)}

    def sample_u(self, phi, key, args):
        u, log_q = self.flow(phi).sample_and_log_prob(key)
        return self.unravel(u), jnp.asarray(log_q, jnp.result_type(float))

    def log_density(self, phi, u, args=None):
        return jnp.asarray(self.flow(phi).log_prob(self.ravel(u)), jnp.result_type(float))
