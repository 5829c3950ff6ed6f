"""The data-only checks of a program (:mod:`.data_only`), made once for a run's arguments.

``check_data(program, args)`` returns when every observation computed from the data lies in
its support and every index computed from the data lies inside its array, and otherwise raises
the error a checked eager run raises there: a :class:`SupportError` naming the site (with the
step, ``y[3]``, inside loops) or an :class:`IndexRangeError` at the user's line. A method that
compiles its density inside ``data_only.trusting(program)`` calls it first, with the same
arguments.

Two ways, both outside the method's loop:

- an observation whose value is an argument itself (or its step-``t`` slice in loops) and whose
  family has a parameter-free support is checked on the host with NumPy: nothing is compiled;
  so is one whose elements are all elements of an argument (``y[g]`` in a loop over ``g``) and
  whose support is elementwise, when the whole argument passes;
- the others by one small compiled program per program, cached with it, which runs the program
  with every latent choice set to zero (the checks do not read them) and returns one flag per
  check and step; only when a flag is false is the failing step evaluated again for the error.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics import effects, index_check, ir
from ppl.semantics.cache import cached
from ppl.semantics.compile.data_only import DataObserve, DataOnly, data_only_checks
from ppl.semantics.compile.interpreter import Interpreter
from ppl.semantics.compile.modes import Mode
from ppl.stdlib.constraints import Constraint
from ppl.stdlib.errors import SupportError

__all__ = ["check_data"]


def check_data(program: ir.Program, args) -> None:
    """Raise the error naming the first data-only check that fails for ``args`` (see the module)."""
    found = data_only_checks(program)
    if not found:
        return
    args = list(args)
    flags: dict[Any, np.ndarray] = {}
    rest = [s for s in found.order if not _host_checked(found, s, args, flags)]
    if rest:
        outs = _program(program, rest, explain=False)(*args)
        flags.update({s: _on_host(v) for s, v in zip(rest, outs)})
    for s in found.order:
        bad = ~flags[s]
        if bad.any():
            _raise(program, found, s, args, tuple(int(i) for i in np.argwhere(bad)[0]))


# ----------------------------------------------------------------------------- on the host


def _on_host(x) -> np.ndarray:
    """``x`` as a NumPy array; an array split over the devices of several processes (a multi-host
    run's sharded data) is gathered from all of them first."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def _family_support(stmt: ir.Observe):
    """The support of the observation's family when the class fixes it (no parameters), else None."""
    support = getattr(stmt.dist_type, "support", None)
    if isinstance(support, Constraint) and not jax.tree.leaves(support):
        return support
    return None


def _host_checked(found: DataOnly, s, args, flags) -> bool:
    obs = found.observes.get(s)
    support = _family_support(s) if obs is not None else None
    if support is None:
        return False
    if obs.source is not None:
        value = _on_host(args[obs.source])
        ok = np.asarray(support.check_now(value))
        steps = len(obs.loops)
        flags[s] = ok.reshape(ok.shape[:steps] + (-1,)).all(axis=-1) if ok.ndim > steps else ok
        return True
    if obs.elements_of is not None and support.event_dim == 0:
        # Every element observed is an element of this argument: when all of the argument's lie in
        # the (elementwise) support, so do they; when one does not, the compiled check says whether
        # an observed one is among them, and which.
        if np.all(support.check_now(_on_host(args[obs.elements_of]))):
            flags[s] = np.ones(obs.loops, dtype=bool)
            return True
    return False


# ----------------------------------------------------------------------------- compiled


class _Zeros(Mode):
    """Every latent choice is zero (the data-only checks never read it)."""

    def sample(self, stmt, dist, inputs, key):
        return jnp.zeros(tuple(stmt.out.shape), stmt.out.dtype), jnp.zeros(()), False


_PREFIX = "\x00data-check:"


class _Checks(Interpreter):
    """Runs the program recording, for each of ``wanted``, its check (one flag per step; with
    ``explain``, the values the error is built from) as a term, so loops stack it by step."""

    def __init__(self, found: DataOnly, wanted: dict, explain: bool):
        super().__init__(_Zeros(), {}, None, record_terms=True)
        self.found, self.wanted, self.explain = found, wanted, explain

    def observe(self, s, env, acc):
        key = self.wanted.get(s)
        if key is None:
            return
        if not self.found.skips_observe(s, self._dist(s, env)):  # a latent support: checked at every run
            acc.terms[key] = jnp.asarray(True) if not self.explain else (jnp.zeros(()), [])
            return
        value = self.read(env, s.value)
        if self.explain:
            acc.terms[key] = (value, [self.read(env, a) for a in s.args])
        else:
            acc.terms[key] = jnp.all(self._dist(s, env).in_support(value))

    def prim(self, s, env, acc):
        key = self.wanted.get(s)
        if key is not None:
            args = [self.read(env, a) for a in s.args]
            acc.terms[key] = args if self.explain else index_check.in_range(jnp, s.op.name, s.params, args)
        super().prim(s, env, acc)

    def factor(self, s, env, acc):
        return None


def _program(program: ir.Program, stmts: list, explain: bool):
    """The compiled check of ``stmts`` (cached with the program): arguments -> one output per statement."""
    def build():
        found = data_only_checks(program)
        wanted = {s: f"{_PREFIX}{i:06d}" for i, s in enumerate(stmts)}

        def check(*args):
            _, acc = _Checks(found, wanted, explain).run_block(program.block, list(args))
            return [acc.terms[wanted[s]] for s in stmts]

        return jax.jit(check)

    return cached(program, ("data-check", tuple(id(s) for s in stmts), explain), build)


# ----------------------------------------------------------------------------- the error


def _raise(program, found: DataOnly, s, args, step: tuple):
    """Raise the error of the check ``s`` at loop step ``step``."""
    value = _program(program, [s], explain=True)(*args)[0]
    value = jax.tree.map(lambda v: np.asarray(v)[step], value)
    if isinstance(s, ir.Prim):
        concrete = [np.asarray(v) for v in value]
        index_check.raise_if_out_of_range(s.op.name, s.params, concrete, s.span)
        raise index_check.IndexRangeError(  # pragma: no cover - the check above found it out of range
            "an index computed from the data is out of range", span=s.span, hint=index_check.HINT)
    obs: DataObserve = found.observes[s]
    observed, dist_args = value
    dist = jax.tree.unflatten(s.treedef, [jnp.asarray(v) for v in dist_args])
    address = s.address + "".join(f"[{t}]" for t in step)
    site = effects.Site("observe", address, dist, observed, s.span, ())
    from ppl.semantics.interpret.free import outside_support

    computed_in_plates = () if obs.source is not None else tuple(tuple(f)[:3] for f in s.plates)
    err = outside_support(site, computed_in_plates)
    if err is None:  # pragma: no cover - the flag said otherwise
        err = SupportError(f"the observed value at '{address}' is outside the support of {obs.stmt.dist_type.__name__}",
                           span=s.span, hint="Check the data, or choose a distribution whose support contains it.")
    raise err
