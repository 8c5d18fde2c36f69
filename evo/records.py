"""Typed records of a run and the Reporter hooks that observe it.

The evolution loop emits these; the progress bar, the run store and the Optuna
mirror are reporters. Records are plain frozen dataclasses so they pickle,
compare and serialise without magic keys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evo.genome import Genome
from evo.types import Budget, Evaluation

__all__ = ["GenerationRecord", "Individual", "Reporter"]


@dataclass(frozen=True)
class Individual:
    """One member of a run: its genome (trained, once evaluated), origin and evaluation.

    Attributes:
        id: unique within the run, in order of birth.
        genome: the network (after training when ``evaluation`` is set and Lamarckian).
        parents: ids of the parents (empty for the initial population).
        operators: human-readable descriptions of the operators that made it, e.g. ``"widen(layer=0, k=8, init=split)"``.
        generation: the generation it was born in.
        evaluation: its evaluation, or ``None`` before it has been evaluated.
    """

    id: int
    genome: Genome
    parents: tuple[int, ...] = ()
    operators: tuple[str, ...] = ()
    generation: int = 0
    evaluation: Evaluation | None = None

    @property
    def objectives(self) -> dict[str, float]:
        return self.evaluation.objectives if self.evaluation else {}

    def __repr__(self) -> str:
        """One line (``print(result.best)``): id, generation, architecture and objectives, not the weights."""
        ev = self.evaluation
        state = ("not evaluated" if ev is None else f"failed: {ev.error}" if not ev.ok else
                 " ".join(f"{k}={v:.4g}" for k, v in ev.objectives.items()))
        return f"Individual(#{self.id}, gen {self.generation}, {self.genome}, {state})"

    def fitness(self, objective: str) -> float:
        """The value of ``objective``; −inf when unevaluated or failed (callers flip for minimisation)."""
        return self.objectives.get(objective, -math.inf)


@dataclass(frozen=True)
class GenerationRecord:
    """What happened in one generation.

    Attributes:
        generation: index, from 0.
        evaluated: ids evaluated in this generation.
        population: ids alive after selection.
        best_id: id of the best individual so far (by the primary objective).
        best_objectives: its objectives.
        budget_used: cumulative work since the run started.
        seconds: wall time of this generation.
        failures: evaluations in this generation that failed.
        extra: anything else (e.g. Pareto front ids).
    """

    generation: int
    evaluated: tuple[int, ...]
    population: tuple[int, ...]
    best_id: int
    best_objectives: dict[str, float]
    budget_used: Budget
    seconds: float
    failures: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def evaluations_per_second(self) -> float:
        return len(self.evaluated) / self.seconds if self.seconds > 0 else 0.0


class Reporter:
    """Observer of a run; every hook is an optional no-op."""

    def on_generation_start(self, generation: int) -> None:
        """Called before a generation's children are evaluated."""

    def on_evaluated(self, individual: Individual) -> None:
        """Called in the driver as each evaluated individual comes back."""

    def on_restored(self, individuals: Sequence[Individual]) -> None:
        """Called once when a run resumes, with every individual its checkpoint holds (weightless or not)."""

    def on_generation_end(self, record: GenerationRecord) -> None:
        """Called once the generation is complete and checkpointed."""

    def on_run_end(self) -> None:
        """Called when the run stops, finished or not (an exception or Ctrl-C is on its way then)."""
