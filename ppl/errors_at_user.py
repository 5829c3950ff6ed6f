"""A user's mistake reported once, at the user's line.

An error in a model or its data (a ``PPLError``) already names the user's
file, line and column in its message. When it surfaces from deep inside an
inference run, Python would also print every internal frame it passed
through, and any internal exception it was translated from ("The above
exception was the direct cause ..."): dozens of lines for one mistake.
``user_error`` drops both, so that ``raise user_error(err) from None`` shows
the user's call and the message. ``PPL_DEBUG=1`` keeps the internal frames.
"""

from __future__ import annotations

import os

from ppl.stdlib.errors import PPLError

__all__ = ["user_error"]


def user_error(err: PPLError) -> PPLError:
    """``err`` without its internal traceback and cause (raise it ``from None``)."""
    err.__cause__ = None
    err.__context__ = None
    err.__suppress_context__ = True
    if os.environ.get("PPL_DEBUG"):
        return err
    return err.with_traceback(None)
