"""Trace Metropolis–Hastings: single-site, block, and user proposals written as models.

The state is a trace (the values of the latent sites). A move proposes a new
trace ``x'`` from the current ``x`` and accepts it with probability
``min(1, alpha)``::

    log alpha = log p(x') + log q(x | x') - log p(x) - log q(x' | x)

Three kinds of moves:

- **Single site** (default): one *address* is regenerated from its prior
  given the rest of the trace (Wingate et al. 2011). Addresses are those of
  the eager engine: a site outside loops is one address (a plated site is
  one address, regenerated whole); a site inside a loop has one address per
  step (``z[3]``). Sites whose existence depends on random values (inside
  an ``If``, or in a dynamic model) are handled as in trace MH: those that
  come into existence are drawn from the prior (*fresh*), those that
  disappear (*stale*) enter the reverse proposal. With the prior as
  proposal the ratio reduces to::

      log alpha = W(x') - W(x),   W(t) = sum of the log densities, in t, of the sites
                                         kept from the other trace + the observations

  plus ``log |addresses(x)| - log |addresses(x')|`` for the uniform choice
  of the address when the number of addresses varies (dynamic models).
  One iteration is a sweep: as many single-site moves as there are
  addresses, each choosing its address uniformly (``order="random"``) or
  in program order (``order="sweep"``).
- **Block** (``selection=[...]``): every address of the named sites
  (sub-model prefixes ``"sub"`` select ``"sub/..."``) is regenerated at once.
  One move per iteration.
- **User proposal** (``proposal=prop``): ``prop`` is a model called as
  ``prop(choices, *model_args, **model_kwargs)``, where ``choices`` maps the
  current trace's latent addresses to values; each of its random choices
  names a latent address of the model and proposes its new value (it may
  not observe or factor). ``q(x' | x)`` is ``prop``'s density of its choices
  when run on ``x``; the reverse density ``q(x | x')`` is ``prop``'s density
  of the *current* values at those addresses when run on ``x'`` — so a
  non-symmetric proposal is corrected exactly. One move per iteration.

Static programs run compiled: an iteration is one transition of the kernel
``mh_kernel.TraceMH`` (the contract of ``kernel``: ``init(choices)``,
``step(key, state)``), and the chains run in the one MCMC driver
(``trace_chains``, ``driver``): all chains ``vmap``-ed, one ``jit``. A single-site move evaluates only the terms of the
regenerated site and its children (``semantics.graph``); the rest of the
joint cancels in the ratio and is dead code under ``jit``. When the
regenerated site can change which branch of an ``If`` runs, the move uses
the whole joint. User proposals evaluate the whole joint.

Dynamic programs (recursion, random-length structure) run in the eager
engine on the *traced* representation: each move re-runs the model with a
handler that replays the kept addresses and draws the others (``mh_eager``).

Law (each move preserves the posterior): checked in ``tests/test_mh.py``
against exact enumeration and conjugate posteriors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ppl.inference.mcmc import checks, trace_chains, warmup
from ppl.inference.mcmc.mh_eager import run_eager
from ppl.inference.mcmc.mh_kernel import MHState, TraceMH
from ppl.inference.mcmc.trace_chains import INIT_TRIES, prior_init
from ppl.inference.result import Result
from ppl.semantics import ir
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["MH", "MHState", "prior_init", "INIT_TRIES"]


@dataclass(frozen=True, kw_only=True)
class MH:
    """Trace Metropolis–Hastings (see the module docstring).

    ``num_samples`` draws per chain are kept after ``num_warmup`` iterations,
    keeping every ``thin``-th iteration. ``selection``: site names for block
    moves; ``proposal``: a model proposing new values (see above); ``order``:
    ``"random"`` or ``"sweep"`` for single-site moves.
    """

    num_samples: int = 1000
    num_warmup: int = 500
    num_chains: int = 4
    selection: Any = None
    proposal: Any = None
    thin: int = 1
    order: str = "random"

    name = "MH"

    def __post_init__(self):
        if isinstance(self.selection, str):
            object.__setattr__(self, "selection", (self.selection,))
        elif self.selection is not None:
            object.__setattr__(self, "selection", tuple(self.selection))

    def _check(self):
        for field in ("num_samples", "num_chains", "thin"):
            if int(getattr(self, field)) < 1:
                raise ModelError(f"MH needs {field} >= 1, not {getattr(self, field)}")
        if int(self.num_warmup) < 0:
            raise ModelError(f"MH needs num_warmup >= 0, not {self.num_warmup}")
        if self.order not in ("random", "sweep"):
            raise ModelError(f"MH(order=...) must be 'random' or 'sweep', not {self.order!r}")
        if self.selection is not None and self.proposal is not None:
            raise ModelError("MH takes a selection or a proposal, not both")
        if self.selection is not None and not self.selection:
            raise ModelError("MH(selection=...) names no site")
        if self.proposal is not None and not hasattr(self.proposal, "program"):
            raise ModelError(f"MH(proposal=...) must be a model (decorated with @ppl.model), not "
                             f"{type(self.proposal).__name__}")

    def run(self, program, args, key) -> Result:
        self._check()
        if isinstance(program, Dynamic):
            return run_eager(self, program, key)
        return _run_compiled(self, program, args, key)


def _run_compiled(method: MH, program: ir.Program, args, key) -> Result:
    from ppl.inference.marginalize import refuse_subsampling

    refuse_subsampling(program, "MH")  # its rows would be a latent site: p(theta, rows | y) is not the posterior
    options = ("mh", method.selection, method.proposal, method.order)
    return trace_chains.run("MH", options, lambda: TraceMH(method, program, args), warmup.Fixed(), program, args,
                            key, num_chains=method.num_chains, num_warmup=method.num_warmup,
                            num_samples=method.num_samples, thin=method.thin, min_acceptance=checks.MIN_ACCEPTANCE)

