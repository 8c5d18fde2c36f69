"""The serial backend: one evaluation after another in this process, for debugging and tests."""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Iterable, Iterator

from evo.backends._base import Backend
from evo.backends.stats import BackendStats, StatsMeter
from evo.tasks import Evaluation, Job, Task

__all__ = ["SerialBackend", "run_job"]


def run_job(task: Task, job: Job, device: str = "cpu") -> Evaluation:
    """Evaluate one job, turning any exception into a failed Evaluation stamped with the job's id."""
    try:
        evaluation = task.evaluate(job.genome, job.budget, device, job.seed)
    except Exception as err:  # noqa: BLE001 - a failing individual must never stop the run
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        evaluation = task.failed(last)
    return dataclasses.replace(evaluation, individual_id=job.individual_id)


class SerialBackend(Backend):
    """Evaluates jobs in order in the calling process."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._meter = StatsMeter()

    def map(self, task: Task, jobs: Iterable[Job]) -> Iterator[Evaluation]:
        self._meter.begin()
        try:
            for job in jobs:
                self._meter.in_flight = 1
                evaluation = run_job(task, job, self.device)
                self._meter.finished(evaluation.ok)
                yield evaluation
        finally:
            self._meter.end()

    def stats(self) -> BackendStats:
        return self._meter.snapshot()
