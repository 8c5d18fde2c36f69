"""The Backend interface: how evaluations are run (serially, or in parallel on Ray).

Parallelism is a swappable backend, never a parameter of the problem: a backend
maps ``task.evaluate`` over jobs and yields evaluations *in completion order*,
each stamped with its job's ``individual_id``; the driver matches them by id,
so completion order never changes a run's result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from evo.backends.stats import BackendStats
from evo.tasks import Task
from evo.types import Evaluation, Job

__all__ = ["Backend"]


class Backend(ABC):
    """Runs jobs; the only place a parallel framework may live."""

    @abstractmethod
    def map(self, task: Task, jobs: Iterable[Job]) -> Iterator[Evaluation]:
        """Evaluate every job exactly once and yield its Evaluation (id stamped) as it completes.

        An evaluation that raises, times out or loses its worker beyond the retries is yielded
        as a failed Evaluation (``error`` set), never raised: the run goes on.
        """

    def stats(self) -> BackendStats:
        """Live counters for progress displays (all zero for a backend that keeps none)."""
        return BackendStats()

    def close(self) -> None:
        """Release workers and connections (no-op by default)."""
