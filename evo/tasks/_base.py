"""The Task interface: the problem being solved, free of Ray and Optuna.

A task turns a genome into an :class:`~evo.types.Evaluation` — it trains (or rolls out)
the network within a :class:`~evo.types.Budget` and measures it. Workers only ever call
``evaluate``; everything they need travels in the arguments, so the same task
runs serially, in a Ray worker, or on another node.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

from evo.genome import Genome
from evo.types import Budget, Evaluation, Job, Objective

if TYPE_CHECKING:
    from torch import Tensor

    from evo.preprocessing import Preprocessing

__all__ = ["Task", "batches"]


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
        return [self.evaluate_job(job, device) for job in jobs]

    def evaluate_job(self, job: Job, device: str) -> Evaluation:
        """:meth:`evaluate` of one job; a task that uses more of the job than its genome, budget and seed (a
        distillation teacher) overrides it."""
        return self.evaluate(job.genome, job.budget, device, job.seed)

    def default_steps(self, genome: Genome) -> int:
        """Optimiser steps one evaluation of ``genome`` takes at the default budget (``Budget.steps == 0``):
        what successive halving splits into rungs when ``evolution.eval_steps`` is 0. A task without such a
        count (the default) cannot be halved at its default budget."""
        raise NotImplementedError(f"{type(self).__name__} has no default step count to halve: set evolution.eval_steps")

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
