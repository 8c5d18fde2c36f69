"""Live backend counters: what a progress bar shows while a generation is being evaluated.

A backend owns a :class:`StatsMeter` and updates it as jobs are submitted and
finish; :meth:`StatsMeter.snapshot` hands the display an immutable
:class:`BackendStats`, so reading stats never races with the backend.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["BackendStats", "StatsMeter"]


@dataclass(frozen=True)
class BackendStats:
    """A snapshot of a backend's counters (cumulative over its lifetime).

    Attributes:
        in_flight: evaluations running now (busy workers).
        queued: evaluations submitted and waiting for a worker.
        completed: evaluations yielded, failed ones included.
        failed: yielded evaluations with an error (raised, timed out, or worker lost beyond the retries).
        retries: resubmissions after a lost worker or node.
        timed_out: evaluations cancelled for exceeding the timeout.
        evaluations_per_second: completed / time spent inside ``map``.
        nodes: node id → evaluations completed there (backends without nodes leave it empty).
    """

    in_flight: int = 0
    queued: int = 0
    completed: int = 0
    failed: int = 0
    retries: int = 0
    timed_out: int = 0
    evaluations_per_second: float = 0.0
    nodes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


class StatsMeter:
    """Mutable counters behind :class:`BackendStats`; ``begin``/``end`` bracket each ``map``."""

    def __init__(self) -> None:
        self.in_flight = self.queued = self.completed = self.failed = self.retries = self.timed_out = 0
        self.nodes: Counter[str] = Counter()
        self._busy_s = 0.0
        self._since: float | None = None

    def begin(self) -> None:
        self._since = time.perf_counter()

    def end(self) -> None:
        if self._since is not None:
            self._busy_s += time.perf_counter() - self._since
            self._since = None
        self.in_flight = self.queued = 0

    def finished(self, ok: bool, node: str | None = None) -> None:
        """Count one yielded evaluation (``ok`` False when it carries an error)."""
        self.in_flight = max(0, self.in_flight - 1)
        self.completed += 1
        self.failed += not ok
        if node is not None:
            self.nodes[node] += 1

    def snapshot(self) -> BackendStats:
        busy = self._busy_s + (time.perf_counter() - self._since if self._since is not None else 0.0)
        rate = self.completed / busy if busy > 0 else 0.0
        return BackendStats(self.in_flight, self.queued, self.completed, self.failed, self.retries, self.timed_out,
                            rate, MappingProxyType(dict(self.nodes)))
