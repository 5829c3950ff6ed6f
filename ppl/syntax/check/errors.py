"""How the checker reports: ``CheckErrors`` (several errors at once) and the limit on how many it collects."""

from __future__ import annotations

from ppl.stdlib.errors import PPLError

__all__ = ["CheckErrors", "raise_if_errors", "MAX_ERRORS", "TooMany", "error_order"]


#: after this many errors the checker stops collecting
MAX_ERRORS = 50


class CheckErrors(PPLError):
    """Several check errors at once; ``errors`` is the list, ``render()`` shows them all."""

    kind = "Semantic error"

    def __init__(self, errors: list[PPLError]):
        self.errors = list(errors)
        n = len(self.errors)
        super().__init__(f"{n} error{'s' if n != 1 else ''} found", None)

    def render(self) -> str:
        parts = [e.render() for e in self.errors]
        if len(parts) > 1:
            parts.append(f"{len(parts)} errors found.")
        return "\n\n".join(parts)


def raise_if_errors(errors: list[PPLError]) -> None:
    """Raise ``CheckErrors(errors)`` when the list is not empty."""
    if errors:
        raise CheckErrors(errors)


def error_order(e: PPLError):
    s = e.span
    return (s.file, s.line, s.column) if s is not None else ("", 0, 0)


class TooMany(Exception):
    pass
