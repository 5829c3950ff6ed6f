"""A progress display for VI (``rich``): steps done and the objective, updated once per compiled chunk.

The optimisation returns to the host after each chunk of steps (``VI.chunk_size``), so no
callback runs inside the compiled loop. On by default only when stderr is a terminal and no
test runs (the rule of ``inference/mcmc/progress.py``); shown once a run has lasted ``delay`` s.
"""

from __future__ import annotations

import time

from ppl.inference.mcmc.progress import enabled

__all__ = ["FitProgress", "enabled"]


class FitProgress:
    def __init__(self, num_steps: int, objective: str, on: bool, delay: float = 1.0):
        self.num_steps, self.objective, self.on, self.delay = num_steps, objective, on, delay
        self._progress = None
        self._task = None
        self._start = time.perf_counter()

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def update(self, done: int, value: float) -> None:
        if not self.on:
            return
        if self._progress is None:
            if time.perf_counter() - self._start < self.delay and done < self.num_steps:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("VI"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn(f"{self.objective} {{task.fields[value]}}"), TimeElapsedColumn(),
                                      console=Console(stderr=True))
            self._task = self._progress.add_task("", total=self.num_steps, value="")
            self._progress.start()
        self._progress.update(self._task, completed=done, value=f"{value:.4g}")

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        return False
