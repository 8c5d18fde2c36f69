"""A rich progress bar as a Reporter: one bar per generation with the best so far and evaluations/s."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from evo.records import GenerationRecord, Individual, Reporter

__all__ = ["ProgressReporter"]


class ProgressReporter(Reporter):
    """Per generation: evaluations done, the run's best objectives, evaluations/s, and busy workers.

    ``backend`` may expose ``stats()`` (a mapping or object with ``in_flight``) to show busy workers.
    """

    def __init__(self, per_generation: int, console: Console | None = None, backend: Any = None) -> None:
        self.per_generation = per_generation
        self.backend = backend
        self.best = "…"
        self.progress = Progress(
            TextColumn("[bold]gen {task.fields[gen]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.2f} eval/s"),
            TextColumn("{task.fields[busy]}"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: Any = None
        self._start = 0.0
        self._done = 0

    def on_generation_start(self, generation: int) -> None:
        if not self.progress.live.is_started:
            self.progress.start()
        self._start, self._done = time.perf_counter(), 0
        self._task = self.progress.add_task("", total=self.per_generation, gen=generation, best=self.best, rate=0.0, busy="")

    def on_evaluated(self, individual: Individual) -> None:
        self._done += 1
        rate = self._done / max(time.perf_counter() - self._start, 1e-9)
        self.progress.update(self._task, advance=1, rate=rate, busy=self._busy())

    def on_generation_end(self, record: GenerationRecord) -> None:
        self.best = " ".join(f"{k}={v:.4g}" for k, v in record.best_objectives.items())
        self.progress.update(self._task, total=len(record.evaluated), completed=len(record.evaluated),
                             rate=record.evaluations_per_second, best=f"#{record.best_id} {self.best}", busy="")

    def _busy(self) -> str:
        stats = getattr(self.backend, "stats", None)
        if not callable(stats):
            return ""
        s = stats()
        busy = s.get("in_flight") if isinstance(s, dict) else getattr(s, "in_flight", None)
        return "" if busy is None else f"{busy} busy"

    def close(self) -> None:
        if self.progress.live.is_started:
            self.progress.stop()
