"""A progress display for compiled MCMC runs (``rich``), fed by ``jax.debug.callback``.

The compiled program calls ``report(transitions, divergences)`` only when the
total number of finished transitions crosses a multiple of ``interval(...)``
(about 200 reports per run), never once per step. The host side shows one
row per chain (phase, draws done, divergences after warm-up) once the run
has lasted ``delay`` seconds, so short runs stay silent.

Progress is on when the caller asks (``progress=True``), and by default
(``progress=None``) only when stdout is a terminal and no test is running.
Programs compiled without progress contain no callback at all.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import jax
import numpy as np

__all__ = ["enabled", "interval", "report", "ChainProgress"]

_ACTIVE: list["ChainProgress"] = []
_LOCK = threading.Lock()
REPORTS_PER_RUN = 200


def enabled(progress: bool | None) -> bool:
    """Whether a run should carry progress callbacks."""
    if progress is not None:
        return bool(progress)
    if "PYTEST_CURRENT_TEST" in os.environ:
        return False
    stream = sys.stderr  # the display goes to stderr, so results on stdout can be piped
    return bool(getattr(stream, "isatty", lambda: False)())


def interval(num_chains: int, num_transitions: int) -> int:
    """Finished transitions (summed over chains) between two reports."""
    return max(1, (num_chains * num_transitions) // REPORTS_PER_RUN)


def _host_report(transitions: Any, divergences: Any, first: Any = None) -> None:
    with _LOCK:
        if _ACTIVE:
            share = () if first is None else (int(first),)  # a device's share of the chains, from chain `first`
            _ACTIVE[-1].update(np.asarray(transitions), np.asarray(divergences), *share)


def report(transitions: jax.Array, divergences: jax.Array, first: Any = None) -> None:
    """Inside a traced program: send per-chain transition and divergence counts to the display
    (``first``: the index of the first of these chains, when a device reports its share)."""
    if first is None:
        jax.debug.callback(_host_report, transitions, divergences)
    else:
        jax.debug.callback(_host_report, transitions, divergences, first)


class ChainProgress:
    """Host-side display; use as a context manager around one run of a compiled program."""

    def __init__(self, num_chains: int, num_warmup: int, num_samples: int, delay: float = 1.0):
        self.num_chains = num_chains
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.delay = delay
        self._progress = None
        self._tasks: list[Any] = []
        self._start = time.perf_counter()

    def __enter__(self) -> "ChainProgress":
        self._start = time.perf_counter()
        with _LOCK:
            _ACTIVE.append(self)
        return self

    def __exit__(self, *exc) -> None:
        with _LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        if self._progress is not None:
            if exc[0] is None:
                total = self.num_warmup + self.num_samples
                for task in self._tasks:
                    self._progress.update(task, completed=total, phase="done")
            self._progress.stop()
            self._progress = None

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("chain {task.fields[chain]}"),
            TextColumn("{task.fields[phase]:>8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[divergences]} divergent"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
            console=Console(stderr=True),
        )
        total = self.num_warmup + self.num_samples
        self._tasks = [
            self._progress.add_task("", total=total, chain=c, phase="warm-up", divergences=0)
            for c in range(self.num_chains)
        ]
        self._progress.start()

    def update(self, transitions: np.ndarray, divergences: np.ndarray, first: int = 0) -> None:
        if self._progress is None:
            if time.perf_counter() - self._start < self.delay:
                return
            self._open()
        for c in range(len(transitions)):
            if not 0 <= first + c < len(self._tasks):
                continue
            task = self._tasks[first + c]
            done = int(transitions[c])
            phase = "warm-up" if done < self.num_warmup else "sampling"
            self._progress.update(task, completed=done, phase=phase, divergences=int(divergences[c]))
