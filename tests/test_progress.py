"""The progress reporter's ETA counts down to whichever of the run's caps binds first."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from evo.progress import Limits, ProgressReporter
from evo.records import GenerationRecord
from evo.types import Budget


def _lines(limits: Limits | None, generations: int, samples: int = 0, steps: int = 0, seconds: float = 10.0) -> list[str]:
    """The piped lines of ``generations`` generations, each using ``samples`` / ``steps`` in ``seconds``."""
    out = io.StringIO()
    reporter = ProgressReporter(4, Console(file=out, force_terminal=False, width=200), limits=limits)
    for g in range(generations):
        reporter.on_generation_start(g)
        used = Budget(steps=steps * (g + 1), samples=samples * (g + 1))
        reporter.on_generation_end(GenerationRecord(g, (1, 2, 3, 4), (1, 2, 3, 4), 1, {"fitness": 1.0}, used, seconds))
    return out.getvalue().splitlines()


@pytest.mark.parametrize(("limits", "eta"), [
    (Limits(generations=200), "eta 33:20"),  # generations 1-200 of 10 s
    (Limits(generations=200, max_samples=5_000), "eta 0:40"),  # 1,000 of 5,000 used, 1,000 a generation: 4 more
    (Limits(generations=200, max_samples=4_500), "eta 0:40"),  # the generation that crosses the cap still runs
    (Limits(generations=200, max_steps=30), "eta 0:20"),  # 10 of 30 steps: 2 more
    (Limits(generations=200, max_seconds=65.0), "eta 1:00"),  # 10 of 65 s: 6 generations more reach 70 s
    (Limits(generations=200, max_samples=5_000, max_steps=30), "eta 0:20"),  # the first cap to bind
])
def test_eta_counts_down_to_the_first_cap(limits: Limits, eta: str) -> None:
    first = _lines(limits, 1, samples=1_000, steps=10)[0]
    assert first.endswith(f", {eta}")


def test_no_eta_once_a_cap_is_reached_or_without_limits() -> None:
    lines = _lines(Limits(generations=200, max_samples=2_000), 2, samples=1_000)
    assert lines[0].endswith(", eta 0:10") and "eta" not in lines[1]
    assert all("eta" not in line for line in _lines(None, 2))


def test_a_cap_the_task_does_not_count_is_ignored() -> None:
    """A control task counts no sample-steps: max_samples cannot be what stops it, so the generations count."""
    assert _lines(Limits(generations=3, max_samples=5_000), 1, samples=0)[0].endswith(", eta 0:30")


def test_a_resumed_run_counts_its_earlier_generations_budget() -> None:
    """After a resume the first record is generation 5 with the budget of generations 0-5: 1,000 each."""
    out = io.StringIO()
    reporter = ProgressReporter(4, Console(file=out, force_terminal=False, width=200),
                                limits=Limits(generations=200, max_samples=10_000))
    reporter.on_generation_start(5)
    reporter.on_generation_end(GenerationRecord(5, (1,), (1,), 1, {"fitness": 1.0}, Budget(samples=6_000), 10.0))
    assert out.getvalue().strip().endswith(", eta 0:40")
