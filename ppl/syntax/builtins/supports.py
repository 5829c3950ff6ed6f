"""The supports ``flat`` takes (``flat(positive)``, ``flat(interval(0, 1))``): each a name
of ``ppl.stdlib.constraints``, with its bounds and its doc."""

from __future__ import annotations

from dataclasses import dataclass

from ppl.stdlib import constraints as cons

__all__ = ["Support", "SUPPORTS"]


@dataclass(frozen=True)
class Support:
    """A support (``ppl.stdlib.constraints`` name) for ``flat``: ``args`` how many
    bounds it takes; ``min_rank`` how many sizes ``flat`` must be given with it."""

    name: str
    args: tuple[str, ...]
    doc: str
    min_rank: int = 0
    value: str = "real"

    @property
    def impl(self):
        """The implementation: the ``ppl.stdlib.constraints`` constraint (or, with bounds, its constructor)."""
        return getattr(cons, self.name)


SUPPORTS: dict[str, Support] = {
    s.name: s
    for s in [
        Support("real", (), "all reals"),
        Support("positive", (), "(0, inf)"),
        Support("nonnegative", (), "[0, inf)"),
        Support("unit_interval", (), "(0, 1)"),
        Support("interval", ("lower", "upper"), "(lower, upper); the bounds may depend on other variables"),
        Support("greater_than", ("lower",), "(lower, inf)"),
        Support("less_than", ("upper",), "(-inf, upper)"),
        Support("simplex", (), "vectors of positive entries summing to 1 (needs a size)", min_rank=1),
        Support("ordered", (), "strictly increasing vectors (needs a size)", min_rank=1),
        Support("positive_ordered", (), "strictly increasing positive vectors (needs a size)", min_rank=1),
        Support("positive_definite", (), "symmetric positive-definite matrices (needs n, n)", min_rank=2),
        Support("lower_cholesky", (), "lower-triangular matrices with a positive diagonal (needs n, n)",
                min_rank=2),
    ]
}
