"""The pieces of a sequential cut as pure JAX functions of one particle.

Each function runs one piece of the cut (``init``, ``step``, ``final``) with
the compiled interpreter of ``semantics.compile`` and returns the piece's
outputs, its random choices and its log weight. They are written for one
particle; the filter vmaps them over the population.

Specifications (``p`` the program's density; ``y`` the observations of the piece):

- ``init(key, args)``: draws the sites before the loop from their prior;
  weight ``log p(y_init | x_init)``.
- ``step(key, consts, carry, x_t)``, bootstrap: draws the step's sites from
  their prior given the carry; weight ``log p(y_t | x_t, carry)``.
- ``step`` with a proposal ``q``: draws the proposal's sites from ``q`` (the
  other sites of the step from their prior); weight
  ``log p(x_t, y_t | carry) - log q(x_t) - log p(unproposed sites)``, i.e.
  ``p(x, y) / q(x)`` over the proposed sites.
- ``final(key, live, outs)``: the statements after the loop, sites drawn from
  their prior; weight ``log p(y_final | ...)``.
- ``replay(...)``: the log density of the sites before the loop and of the
  steps up to ``t`` at given values (what rejuvenation targets), with the
  values (carry, live values, ``y``) that those choices determine.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.stdlib.errors import AddressError, ModelError
from ppl.stdlib.particle_keys import particle_keys  # the step's per-particle keys, re-exported

__all__ = ["Piece", "particle_keys", "run_init", "run_step", "run_final", "Proposal", "replay", "unconstrain",
           "PRESENT", "split_present"]

# A site inside a branch is made in some particles only. Its flag (did the branch run) travels among
# the choices, under the key PRESENT + address, so that resampling, backtracking and packing carry it
# with the value; ``split_present`` takes it out when the draws reach the host, where an absent draw
# reads NaN (as in every engine) instead of the compiled trace's placeholder.
PRESENT = "\x00present:"


class Piece(NamedTuple):
    """What running one piece for one particle gives."""

    outs: list  # the block's returned values
    choices: dict  # its random choices (and recorded deterministic values)
    log_weight: Any
    valid: Any  # every distribution's parameters were inside their domains


def _choices(acc) -> dict:
    """A run's choices with the present flag of each of its sites inside a branch."""
    out = dict(acc.choices)
    out.update({PRESENT + a: p for a, p in acc.present.items() if a in acc.choices})
    return out


def split_present(samples: dict) -> tuple[dict, dict]:
    """``(choices, present flags by address)`` of a piece's (or the population's) choices."""
    values = {a: v for a, v in samples.items() if not a.startswith(PRESENT)}
    flags = {a[len(PRESENT):]: v for a, v in samples.items() if a.startswith(PRESENT)}
    return values, flags


def branch_sites(block: ir.Block) -> set:
    """The sites of ``block`` inside a branch (those whose choices carry a present flag)."""
    return {s.address for s in ir.sites_of(block) if s.in_branch and s.kind in ("sample", "deterministic")}


def _num_samples(block: ir.Block) -> int:
    return sum(isinstance(s, ir.Sample) for s in ir.walk(block.stmts))


def _run(block, mode, args, key=None, inputs=None):
    interp = C.Interpreter(mode, dict(inputs or {}), key)
    # loops inside a piece stay scans: the population is already the vmapped axis, and the
    # steps side by side would hold particles x steps values at once
    interp.vectorize_loops = False
    return interp.run_block(block, list(args))


def run_init(block: ir.Block, key, args) -> Piece:
    """The statements before the loop, drawn from the prior (the keys of ``Importance``)."""
    outs, acc = _run(block, C.Simulate(), args, key)
    return Piece(outs, _choices(acc), acc.log_likelihood, acc.valid)


def run_init_at(block: ir.Block, key, args, u: dict) -> Piece:
    """The statements before the loop with the sites of ``u`` at ``T(u)``: weight ``log p(T(u)) |J| + log p(y_init | ...)``."""
    outs, acc = _run(block, C.Unconstrained(frozenset(u), C.Simulate()), args, key, inputs=u)
    return Piece(outs, _choices(acc), acc.log_given + acc.log_likelihood, acc.valid)


def run_final(block: ir.Block, key, args) -> Piece:
    outs, acc = _run(block, C.Drawn(_num_samples(block) == 1), args, key)
    return Piece(outs, _choices(acc), acc.log_likelihood, acc.valid)


class Proposal:
    """A proposal model for the steps of a loop, checked against the step it proposes for.

    Convention: the proposal is a model called with the step's carry and its
    slice of ``xs`` as flat positional arguments, ``proposal(*carry, *x_t)``
    (for a loop ``scan(step, init, xs)`` with an array carry and array ``xs``
    that is ``proposal(carry, x_t)``); it samples some or all of the step's
    latent sites *by the same addresses* and observes nothing.
    """

    def __init__(self, model, body: ir.Block, num_consts: int, name: str):
        self.model = model
        example = [jnp.zeros(v.shape, v.dtype) for v in body.params[num_consts:]]
        got = model.program(*example)
        program = got[0] if isinstance(got, tuple) else got
        label = getattr(model, "name", repr(model))
        if not isinstance(program, ir.Program):
            reason = program.describe() if hasattr(program, "describe") else "it could not be traced"
            raise ModelError(f"the SMC proposal '{label}' must be a static model: {reason}",
                             span=getattr(program, "span", None))
        if len(program.block.params) != len(example):
            raise ModelError(f"the SMC proposal '{label}' takes {len(example)} array arguments "
                             f"(the step's carry and x_t), but traced with {len(program.block.params)}")
        step_sites = {s.address: s for s in ir.sites_of(body) if s.kind == "sample"}
        for s in program.sites.values():
            if s.kind in ("observe", "factor"):
                raise ModelError(f"the SMC proposal '{label}' observes or factors at '{s.address}'; a proposal "
                                 "only draws the step's random choices", span=s.span)
            if s.kind != "sample":
                continue
            want = step_sites.get(s.address)
            if want is None:
                raise AddressError(
                    f"the SMC proposal '{label}' samples '{s.address}', but the step of '{name}' has no random "
                    f"choice of that name; its random choices are {sorted(step_sites)}", span=s.span,
                    hint="A proposal samples the step's sites by the same addresses.")
            if tuple(s.stacked_shape) != tuple(want.stacked_shape):
                raise AddressError(f"the SMC proposal '{label}' samples '{s.address}' with shape "
                                   f"{tuple(s.stacked_shape)}, but the step's site has shape "
                                   f"{tuple(want.stacked_shape)}", span=s.span)
        if not program.latent_sites():
            raise ModelError(f"the SMC proposal '{label}' makes no random choice")
        self.program = program

    def draw(self, key, carry, x):
        """Proposed values and ``log q`` of them."""
        trace = C.run(self.program, C.Simulate(), list(carry) + list(x), key=key)
        latent = {a: v for a, v in trace.choices.items() if self.program.sites[a].kind == "sample"}
        return latent, trace.log_prior, trace.valid


def run_step(body: ir.Block, num_consts: int, num_carry: int, key, consts, carry, x,
             proposal: Proposal | None = None, proposal_key=None) -> Piece:
    """One step of the loop for one particle; ``outs`` = new carry then ``y_t``."""
    if proposal is None:
        outs, acc = _run(body, C.Drawn(_num_samples(body) == 1), list(consts) + list(carry) + list(x), key)
        return Piece(outs, _choices(acc), acc.log_likelihood, acc.valid)
    proposed, log_q, q_ok = proposal.draw(proposal_key, carry, x)
    mode = C.Drawn(_num_samples(body) - len(proposed) <= 1)
    outs, acc = _run(body, mode, list(consts) + list(carry) + list(x), key, inputs=proposed)
    return Piece(outs, _choices(acc), acc.log_given + acc.log_likelihood - log_q, acc.valid & q_ok)


# ---------------------------------------------------------------------------
# Replay: the partial posterior's density at given values (for rejuvenation)


def replay(cut, args, u: dict, fixed: dict, path: dict, t, loop_args):
    """``log p(x_init, y_init) + sum_{s <= t} log p(x_s, y_s | ...)`` at the given values.

    ``u``: unconstrained values of the moved sites before the loop; ``fixed``:
    the other sites before the loop; ``path``: the step sites' values stacked
    over all steps (those after ``t`` are ignored). ``loop_args(live) ->
    (consts, carry0, xs)`` resolves the loop's inputs. Returns ``(log density,
    live values, choices before the loop, carry after step t, ys stacked, the present flags of the
    path's sites inside branches at these values (those of ``path`` after step ``t``))``.
    """
    mode = C.Unconstrained(frozenset(u), C.Given())
    outs, acc = _run(cut.init, mode, args, inputs={**fixed, **u})
    total = acc.log_prior + acc.log_likelihood
    loop = cut.loop
    consts, carry0, xs = loop_args(outs)
    k = loop.num_carry
    last = jnp.asarray(t)

    def body(state, inp):
        carry, lp = state
        s, x, values = inp
        o, a = _run(loop.body, C.Given(), list(consts) + list(carry) + list(x), inputs=values)
        active = (s >= last) if loop.reverse else (s <= last)
        carry = [jnp.where(active, n, c) for n, c in zip(o[:k], carry)]
        flags = {b: jnp.where(active, v, values[b]) for b, v in _choices(a).items()
                 if b in values and b.startswith(PRESENT)}
        return (carry, lp + jnp.where(active, a.log_prior + a.log_likelihood, 0.0)), (o[k:], flags)

    steps = jnp.arange(loop.length)
    (carry, lp), (ys, flags) = jax.lax.scan(body, (list(carry0), total), (steps, list(xs), path),
                                            reverse=loop.reverse)
    return lp, outs, _choices(acc), carry, ys, flags


def same_branches(choices: dict, new_choices: dict, path: dict, flags: dict):
    """Whether the sites made (the branches taken) are the same in both runs: before the loop
    (``choices`` against ``new_choices``) and along the path (its flags against ``flags``)."""
    same = jnp.asarray(True)
    for old, new in ((choices, new_choices), (path, flags)):
        for b, v in new.items():
            if b.startswith(PRESENT):
                same = same & jnp.all(v == old[b])
    return same


def unconstrain(block: ir.Block, args, choices: dict, names: frozenset) -> dict:
    """The unconstrained coordinates of the sites ``names`` of ``block`` at ``choices``."""
    mode = C.Inverted(names)
    _run(block, mode, args, inputs=choices)
    return dict(mode.u)
