"""The Task interface: the problem being solved, free of Ray and Optuna.

A task turns a genome into an :class:`Evaluation` — it trains (or rolls out)
the network within a :class:`Budget` and measures it. Workers only ever call
``evaluate``; everything they need travels in the arguments, so the same task
runs serially, in a Ray worker, or on another node.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from evo.genome import Genome

if TYPE_CHECKING:
    from torch import Tensor

    from evo.preprocessing import Preprocessing

__all__ = ["Budget", "Direction", "Evaluation", "Job", "Objective", "Task", "batches"]


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
    an evaluation (re-evaluating an elite on fresh episodes must not change its weights).
    """

    individual_id: int
    genome: Genome
    budget: Budget
    seed: int
    learn: bool = True


class Task(ABC):
    """A problem: build-time facts (shapes, objectives) and ``evaluate``."""

    #: objectives, the first being the fitness that selection uses.
    objectives: tuple[Objective, ...] = (Objective("fitness"),)

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, e.g. ``(64,)`` or ``(1, 28, 28)``."""

    @property
    @abstractmethod
    def output_size(self) -> int:
        """Number of network outputs (classes, regression targets or actions)."""

    @abstractmethod
    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        """Train/measure ``genome`` within ``budget`` on ``device`` (``"cpu"``, ``"cuda:0"``).

        Returns an Evaluation with ``individual_id=-1``; the caller stamps the id.
        Deterministic for a given ``seed``.
        """

    def evaluate_batch(self, jobs: Sequence[Job], device: str) -> list[Evaluation]:
        """One Evaluation per job, in order (``individual_id=-1``; the caller stamps the ids).

        Backends hand a task several jobs at once through this method. The default evaluates them one by one;
        a task whose evaluations share fixed costs (gradient-free tasks: many small networks of one
        architecture in one forward pass) overrides it. An override must return, for every job, exactly what
        :meth:`evaluate` returns for it alone (timings aside).
        """
        return [self.evaluate(job.genome, job.budget, device, job.seed) for job in jobs]

    def calibration_batch(self, n: int, seed: int) -> tuple[Tensor, Tensor] | None:
        """A batch of training inputs and targets for data-dependent operators; None if the task has no data."""
        return None

    def preprocessing(self) -> Preprocessing:
        """What the task does to raw samples before the network sees them, and its class labels.

        Recorded in the run directory when a run starts; exports put it in front of the network so
        they take raw inputs. The default: inputs go to the network as they are, no labels.
        """
        from evo.preprocessing import Preprocessing  # torch: reading a run (`evo show`) does without

        return Preprocessing()

    def failed(self, error: str, genome: Genome | None = None, used: Budget = Budget()) -> Evaluation:
        """The evaluation of a genome that could not be evaluated: every objective at its worst, with the
        work ``used`` before it failed (budgets count it)."""
        worst = {o.name: o.worst() for o in self.objectives}
        return Evaluation(-1, worst, genome, budget_used=used, error=error)


def batches(task: Task) -> bool:
    """Whether ``task`` overrides :meth:`Task.evaluate_batch` (backends then hand it jobs together)."""
    return type(task).evaluate_batch is not Task.evaluate_batch
