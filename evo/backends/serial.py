"""The serial backend: one evaluation after another in this process, for debugging and tests."""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Iterable, Iterator

import torch

from evo import interrupts
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
    """Evaluates jobs in order in the calling process.

    Args:
        device: the torch device evaluations run on.
        threads: torch threads during evaluations (restored afterwards), as a Ray worker with
            ``num_cpus`` gets; None leaves torch's setting alone. Small networks train fastest on one.
    """

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        self.device = device
        self.threads = threads
        self._meter = StatsMeter()

    def map(self, task: Task, jobs: Iterable[Job]) -> Iterator[Evaluation]:
        self._meter.begin()
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            for job in jobs:
                interrupts.check()  # a Ctrl-C swallowed during the last evaluation stops the run here
                self._meter.in_flight = 1
                evaluation = run_job(task, job, self.device)
                self._meter.finished(evaluation.ok)
                yield evaluation
        finally:
            torch.set_num_threads(previous)
            self._meter.end()

    def stats(self) -> BackendStats:
        return self._meter.snapshot()
