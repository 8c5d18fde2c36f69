"""Re-evaluating elites on fresh episodes, so that selection stops rewarding luck.

With a noisy fitness (a control task's return over a few random episodes) the best
score of a generation is partly the best luck: an elite kept for one lucky evaluation
survives, breeds and is finally reported as the champion, and then fails on fresh
episodes. Re-sampling the survivors' fitness is the classic remedy for evolution in
noisy environments (Beyer 2000; Jin & Branke 2005): each generation the best few of
the population are evaluated again on episodes they have never seen (seeds derived
from the run seed, their id and the generation), without learning (``Job.learn=False``),
and their fitness becomes the mean over every episode they have been measured on.

Example:
    >>> from evo.types import Budget, Evaluation
    >>> old = Evaluation(0, {"r": 100.0}, None, {"episodes": 3.0})
    >>> merge(old, Evaluation(0, {"r": 20.0}, None, {"episodes": 1.0})).objectives
    {'r': 80.0}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from evo.backends import Backend
from evo.records import Individual
from evo.tasks import Task
from evo.types import Budget, Evaluation, Job

__all__ = ["apply_merged", "latest_merged", "merge", "merged_record", "reevaluate", "reevaluated"]


def _episodes(evaluation: Evaluation) -> float:
    return evaluation.metrics.get("episodes", 1.0)


def merge(old: Evaluation, fresh: Evaluation) -> Evaluation:
    """``old`` with every objective the episode-weighted mean of ``old``'s and ``fresh``'s; a failed fresh
    evaluation replaces it (a genome that breaks on new episodes is broken)."""
    if not fresh.ok:
        return dataclasses.replace(fresh, individual_id=old.individual_id)
    n_old, n_fresh = _episodes(old), _episodes(fresh)
    total = n_old + n_fresh
    objectives = {k: (v * n_old + fresh.objectives[k] * n_fresh) / total for k, v in old.objectives.items()}
    metrics = {**old.metrics, "episodes": total, "reevaluations": old.metrics.get("reevaluations", 0.0) + 1}
    return dataclasses.replace(old, objectives=objectives, metrics=metrics)


def reevaluate(task: Task, backend: Backend, elites: Sequence[Individual],
               seed_of: Callable[[int], int]) -> tuple[list[Individual], Budget]:
    """The ``elites`` re-measured on fresh episodes (job seed ``seed_of(id)``), and the work it took.

    Individuals without a successful evaluation are returned unchanged.
    """
    measured = [ind for ind in elites if ind.evaluation is not None and ind.evaluation.ok]
    jobs = [Job(ind.id, ind.genome, Budget(), seed_of(ind.id), learn=False) for ind in measured]
    fresh = {e.individual_id: e for e in backend.map(task, jobs)}
    used, out = Budget(), []
    for ind in elites:
        evaluation = fresh.get(ind.id)
        if evaluation is None or ind.evaluation is None:
            out.append(ind)
            continue
        used = used + evaluation.budget_used
        out.append(dataclasses.replace(ind, evaluation=merge(ind.evaluation, evaluation)))
    return out, used


def reevaluated(individual: Individual) -> bool:
    """Whether ``individual``'s fitness includes at least one measurement on fresh episodes."""
    return individual.evaluation is not None and individual.evaluation.metrics.get("reevaluations", 0.0) > 0


def merged_record(individuals: Sequence[Individual]) -> dict[str, dict[str, Any]]:
    """What a generation record keeps of re-evaluated individuals (id → objectives, metrics, error), so a
    resumed run restores their merged fitness."""
    return {str(ind.id): {"objectives": ind.objectives, "metrics": ind.evaluation.metrics,
                          "error": ind.evaluation.error}
            for ind in individuals if ind.evaluation is not None}


def latest_merged(extras: Sequence[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """id → the newest :func:`merged_record` entry over generation records' ``extra`` (each entry is cumulative,
    so the newest is the whole story)."""
    return {int(i): entry for extra in extras for i, entry in extra.get("reevaluated", {}).items()}


def apply_merged(individual: Individual, record: Mapping[str, Any]) -> Individual:
    """``individual`` with the evaluation a :func:`merged_record` entry describes."""
    assert individual.evaluation is not None
    evaluation = dataclasses.replace(individual.evaluation, objectives=dict(record["objectives"]),
                                     metrics=dict(record["metrics"]), error=record["error"])
    if evaluation.error is not None:
        evaluation = dataclasses.replace(evaluation, genome=None)
    return dataclasses.replace(individual, evaluation=evaluation)
