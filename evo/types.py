"""Value types every layer shares: objectives, budgets, evaluations and jobs.

The bottom layer: at run time it imports nothing of evo (:class:`~evo.genome.Genome` is named in
annotations only).

A task returns an :class:`Evaluation`; a backend carries each :class:`Job` to a worker; records, selection and
the store read them back. Keeping them here, apart from the tasks, lets those modules name the values
without importing a single task. Modelled in spirit on Optuna's bottom-layer ``distributions.py`` and
``trial/_state.py``.

Example:
    >>> Budget(steps=10) + Budget(steps=5, seconds=1.5)
    Budget(steps=15, samples=0, episodes=0, seconds=1.5)
    >>> Objective("params", Direction.MINIMIZE).worst()
    inf
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evo.genome import Genome

__all__ = ["Budget", "Direction", "Evaluation", "Job", "Objective"]


class Direction(str, Enum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


@dataclass(frozen=True)
class Objective:
    """A named objective and whether larger is better. The first of a task's objectives is its fitness."""

    name: str
    direction: Direction = Direction.MAXIMIZE

    def worst(self) -> float:
        """The value a failed evaluation gets: −inf when maximising, +inf when minimising."""
        return -math.inf if self.direction is Direction.MAXIMIZE else math.inf


@dataclass(frozen=True)
class Budget:
    """Work allowed for (or used by) one evaluation; a zero field means "task default" / "none used".

    Attributes:
        steps: optimiser steps (supervised) or environment steps (control).
        samples: training sample-steps (steps × batch size), the unit budgets are compared in.
        episodes: environment episodes (control).
        seconds: wall-clock time.
    """

    steps: int = 0
    samples: int = 0
    episodes: int = 0
    seconds: float = 0.0

    def __add__(self, other: Budget) -> Budget:
        return Budget(
            self.steps + other.steps,
            self.samples + other.samples,
            self.episodes + other.episodes,
            self.seconds + other.seconds,
        )


@dataclass(frozen=True)
class Evaluation:
    """What a task says about one genome. Returned, never assigned onto the genome.

    Attributes:
        individual_id: the individual this evaluation belongs to (results are matched by id).
        objectives: objective name → value (see :attr:`Task.objectives`).
        genome: the genome after training (Lamarckian inheritance passes it on); the input genome
            for gradient-free tasks; ``None`` when the evaluation failed.
        metrics: anything else worth recording (losses, growth events, ...).
        budget_used: work actually done.
        error: why the evaluation failed, or ``None``.
    """

    individual_id: int
    objectives: dict[str, float]
    genome: Genome | None
    metrics: dict[str, float] = field(default_factory=dict)
    budget_used: Budget = Budget()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Job:
    """One unit of work for a backend: evaluate ``genome`` as individual ``individual_id``.

    ``learn=False`` asks for a measurement of the genome as it is, without the learning a task may do within
    an evaluation (re-evaluating an elite on fresh episodes must not change its weights). ``teacher`` is the
    parent of a child that should relearn its parent's function (``plasticity.distill``); tasks that cannot
    use it ignore it.
    """

    individual_id: int
    genome: Genome
    budget: Budget
    seed: int
    learn: bool = True
    teacher: Genome | None = None
