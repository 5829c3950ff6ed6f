"""Which method ``ppl.infer`` picks by default for continuous static models."""

from __future__ import annotations

__all__ = ["default_continuous"]


def default_continuous():
    """NUTS when the MCMC family is available, else None (importance sampling is used)."""
    try:
        from ppl.inference.mcmc.methods import NUTS
    except ImportError:
        return None
    return NUTS()
