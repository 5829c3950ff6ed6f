"""What an inference run returns, before the front end wraps it as a Posterior."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Result"]


@dataclass
class Result:
    """Draws (or an exact table) of latent values and return values.

    ``samples`` maps addresses to arrays whose leading axis indexes draws
    (or ``(chains, draws)`` when ``chains`` is true). ``log_weights`` is set
    for weighted methods (importance, SMC, enumeration: the exact log
    probability of each outcome up to a constant); ``log_evidence`` where the
    method estimates (or computes) the marginal likelihood.
    """

    samples: dict[str, np.ndarray]
    returns: Any
    method: str
    engine: str  # "compiled" or "eager"
    log_weights: np.ndarray | None = None
    log_evidence: float | None = None
    chains: bool = False
    sample_stats: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    truncated_mass: float = 0.0
    # ``() -> (samples, returns)`` where they are made on first read (SMC's ancestral paths);
    # ``samples`` and ``returns`` are None until ``materialize()`` (the Posterior calls it)
    deferred: Any = None

    def materialize(self) -> None:
        """Make the samples and return values that were left to the first read."""
        if self.deferred is not None:
            self.samples, self.returns = self.deferred()
            self.deferred = None

    def __getstate__(self) -> dict:
        """Pickled with its samples made (the deferred reader holds device arrays and a program)."""
        self.materialize()
        return dict(self.__dict__)
