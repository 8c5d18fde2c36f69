"""The serial backend: one evaluation after another in this process, for debugging and tests."""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Iterable, Iterator, Sequence

import torch

from evo import interrupts
from evo.backends._base import Backend
from evo.backends.config import BackendConfig
from evo.backends.stats import BackendStats, StatsMeter
from evo.tasks import Task
from evo.tasks._base import batches
from evo.types import Evaluation, Job

__all__ = ["SerialBackend", "run_job", "run_jobs"]


def run_job(task: Task, job: Job, device: str = "cpu") -> Evaluation:
    """Evaluate one job, turning any exception into a failed Evaluation stamped with the job's id."""
    try:
        evaluation = task.evaluate_job(job, device)
    except Exception as err:  # noqa: BLE001 - a failing individual must never stop the run
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        evaluation = task.failed(last)
    return dataclasses.replace(evaluation, individual_id=job.individual_id)


def run_jobs(task: Task, jobs: Sequence[Job], device: str = "cpu") -> list[Evaluation]:
    """Evaluate jobs together through :meth:`Task.evaluate_batch` when the task overrides it, else one by one;
    ids stamped. A batch that raises is evaluated again job by job, so the error lands on the job that caused it."""
    if len(jobs) > 1 and batches(task):
        try:
            evaluations = task.evaluate_batch(jobs, device)
        except Exception:  # noqa: BLE001 - retried one by one below, where the culprit gets the error
            pass
        else:
            return [dataclasses.replace(e, individual_id=j.individual_id) for e, j in zip(evaluations, jobs, strict=True)]
    return [run_job(task, job, device) for job in jobs]


class SerialBackend(Backend):
    """Evaluates jobs in order in the calling process; a task that evaluates jobs together
    (:meth:`Task.evaluate_batch`) gets all of a map's jobs at once, so its evaluations arrive together at the end.

    Args:
        device: the torch device evaluations run on.
        threads: torch threads during evaluations (restored afterwards), as a Ray worker with
            ``num_cpus`` gets; None leaves torch's setting alone. Small networks train fastest on one.
    """

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        self.device = device
        self.threads = threads
        self._meter = StatsMeter()

    @classmethod
    def from_config(cls, config: BackendConfig) -> SerialBackend:
        """The serial backend of a validated ``backend`` section: its device, and ``num_cpus`` torch threads."""
        return cls(config.device, threads=max(1, int(config.num_cpus)))

    def map(self, task: Task, jobs: Iterable[Job]) -> Iterator[Evaluation]:
        self._meter.begin()
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            groups = [list(jobs)] if batches(task) else ([job] for job in jobs)
            for group in groups:
                interrupts.check()  # a Ctrl-C swallowed during the last evaluation stops the run here
                self._meter.in_flight = len(group)
                for evaluation in run_jobs(task, group, self.device):
                    self._meter.finished(evaluation.ok)
                    yield evaluation
        finally:
            torch.set_num_threads(previous)
            self._meter.end()

    def stats(self) -> BackendStats:
        return self._meter.snapshot()
