"""Progress of a run as a Reporter: a live bar on a terminal, one full line per generation anywhere else.

On a terminal: one bar per generation with evaluations done, evaluations/s, busy workers, the run's
best objectives and the run's remaining time. Piped into a file or a CI log, a live bar would be
redrawn, cut to 80 columns (``16…``) or lost, so each generation ends in one complete line instead.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from evo.records import GenerationRecord, Individual, Reporter

__all__ = ["Limits", "ProgressReporter"]


@dataclass(frozen=True)
class Limits:
    """The run's stopping caps the ETA counts down to (0 = no cap), as ``evolution`` sets them: a run capped by
    sample-steps (equal-budget comparisons) may end long before its generation cap."""

    generations: int
    max_samples: int = 0
    max_steps: int = 0
    max_seconds: float = 0.0


class ProgressReporter(Reporter):
    """Per generation: evaluations done, the run's best objectives, evaluations/s, busy workers and the ETA.

    Args:
        per_generation: evaluations per generation (the bar's length).
        console: where to draw; its ``is_terminal`` chooses bar or lines.
        backend: may expose ``stats()`` (with ``in_flight``) to show busy workers.
        limits: the run's stopping caps, for the ETA; None = no ETA.
    """

    def __init__(self, per_generation: int, console: Console | None = None, backend: Any = None,
                 limits: Limits | None = None) -> None:
        self.per_generation = per_generation
        self.backend = backend
        self.limits = limits
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
        self.eta = self._eta(record)
        if self._task is None:
            line = (f"gen {record.generation}: {len(record.evaluated)} evaluated, {record.failures} failed, "
                    f"{record.evaluations_per_second:.2f} eval/s, {record.seconds:.1f} s, "
                    f"best #{record.best_id} {self.best}" + (f", {self.eta}" if self.eta else ""))
            self.console.print(line, soft_wrap=True, highlight=False, markup=False)
            return
        self.progress.update(self._task, total=len(record.evaluated), completed=len(record.evaluated),
                             rate=record.evaluations_per_second, best=f"#{record.best_id} {self.best}", busy="",
                             eta=self.eta)

    def _eta(self, record: GenerationRecord) -> str:
        """``eta 1:23``: the mean generation time × the generations left before the first cap that binds (a
        target fitness may stop the run sooner)."""
        left = self._generations_left(record)
        if not left:
            return ""
        minutes, seconds = divmod(round(sum(self._seconds) / len(self._seconds) * left), 60)
        return f"eta {minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"eta {minutes}:{seconds:02d}"

    def _generations_left(self, record: GenerationRecord) -> int:
        """Generations until a cap binds, each budget cap at its mean use per generation so far (the run stops
        at the end of the generation that reaches it)."""
        if self.limits is None:
            return 0
        limits, budget = self.limits, record.budget_used
        done = record.generation + 1  # budget_used counts generations 0..g, those before a resume too
        elapsed = sum(self._seconds)  # (this process's generations: what its mean time is taken over)
        left = [limits.generations - record.generation]
        for cap, used, per_generation in ((limits.max_samples, budget.samples, budget.samples / done),
                                          (limits.max_steps, budget.steps, budget.steps / done),
                                          (limits.max_seconds, elapsed, elapsed / len(self._seconds))):
            if cap and per_generation > 0:
                left.append(math.ceil((cap - used) / per_generation))
        return max(0, min(left))

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
