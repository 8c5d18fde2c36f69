"""Progress of a run as a Reporter: a live bar on a terminal, one full line per generation anywhere else.

On a terminal: one bar per generation with evaluations done, evaluations/s, busy workers, the run's
best objectives and the run's remaining time. Piped into a file or a CI log, a live bar would be
redrawn, cut to 80 columns (``16…``) or lost, so each generation ends in one complete line instead.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from evo.records import GenerationRecord, Individual, Reporter

__all__ = ["ProgressReporter"]


class ProgressReporter(Reporter):
    """Per generation: evaluations done, the run's best objectives, evaluations/s, busy workers and the ETA.

    Args:
        per_generation: evaluations per generation (the bar's length).
        console: where to draw; its ``is_terminal`` chooses bar or lines.
        backend: may expose ``stats()`` (with ``in_flight``) to show busy workers.
        generations: the run's last generation, for the ETA; None = no ETA.
    """

    def __init__(self, per_generation: int, console: Console | None = None, backend: Any = None,
                 generations: int | None = None) -> None:
        self.per_generation = per_generation
        self.backend = backend
        self.generations = generations
        self.console = console or Console()
        self.best = "…"
        self.eta = ""
        self.progress = Progress(
            TextColumn("[bold]gen {task.fields[gen]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.2f} eval/s"),
            TextColumn("{task.fields[busy]}"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=self.console,
        )
        self._task: Any = None
        self._start = 0.0
        self._done = 0
        self._seconds: list[float] = []

    def on_generation_start(self, generation: int) -> None:
        self._start, self._done = time.perf_counter(), 0
        if not self.console.is_terminal:
            return
        if not self.progress.live.is_started:
            self.progress.start()
        self._task = self.progress.add_task("", total=self.per_generation, gen=generation, best=self.best, rate=0.0,
                                            busy="", eta=self.eta)

    def on_evaluated(self, individual: Individual) -> None:
        self._done += 1
        if self._task is None:
            return
        rate = self._done / max(time.perf_counter() - self._start, 1e-9)
        self.progress.update(self._task, advance=1, rate=rate, busy=self._busy())

    def on_generation_end(self, record: GenerationRecord) -> None:
        self.best = " ".join(f"{k}={v:.4g}" for k, v in record.best_objectives.items())
        self._seconds.append(record.seconds)
        self.eta = self._eta(record.generation)
        if self._task is None:
            line = (f"gen {record.generation}: {len(record.evaluated)} evaluated, {record.failures} failed, "
                    f"{record.evaluations_per_second:.2f} eval/s, {record.seconds:.1f} s, "
                    f"best #{record.best_id} {self.best}" + (f", {self.eta}" if self.eta else ""))
            self.console.print(line, soft_wrap=True, highlight=False, markup=False)
            return
        self.progress.update(self._task, total=len(record.evaluated), completed=len(record.evaluated),
                             rate=record.evaluations_per_second, best=f"#{record.best_id} {self.best}", busy="",
                             eta=self.eta)

    def _eta(self, generation: int) -> str:
        """``eta 1:23``: the mean generation time × generations left (a target or budget may stop it sooner)."""
        if self.generations is None or generation >= self.generations:
            return ""
        left = sum(self._seconds) / len(self._seconds) * (self.generations - generation)
        minutes, seconds = divmod(round(left), 60)
        return f"eta {minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"eta {minutes}:{seconds:02d}"

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
