"""Tasks: the problems genomes are evaluated on."""

from __future__ import annotations

from evo.tasks._base import Budget, Direction, Evaluation, Job, Objective, Task

__all__ = ["Budget", "Direction", "Evaluation", "Job", "Objective", "Task"]
