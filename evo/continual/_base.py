"""The continual-learner interface and the harness that runs one over a stream.

A :class:`Learner` meets tasks one at a time (:meth:`Learner.learn`) and
answers for any task seen so far (:meth:`Learner.logits`): with the task's
identity (task-incremental — its subnetwork, column or mask) or without it
(class-incremental — one shared output over every class seen). :func:`run_stream`
fills both accuracy matrices after every task, so every method is measured
by the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from evo.continual.config import LearnerConfig
from evo.continual.metrics import ContinualMetrics, continual_metrics
from evo.continual.streams import Part, Stream, StreamTask
from evo.continual.training import accuracy, fit
from evo.genome import Genome

__all__ = ["Learner", "StreamResult", "run_stream"]


class Learner(ABC):
    """A method for learning a stream, starting from ``genome``'s architecture and weights.

    Args:
        genome: the starting network (its output layer has one unit per class of the stream).
        cfg: the learner's knobs.
        seed: seeds every random draw (shuffling, new units' weights).
    """

    def __init__(self, genome: Genome, cfg: LearnerConfig, seed: int = 0) -> None:
        self.genome, self.cfg = genome, cfg
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.steps = 0  # optimiser steps taken so far
        self.steps_per_task: int | None = None  # a fixed step budget per task, else cfg.epochs passes

    def fit(
        self,
        net: nn.Module,
        x: Tensor,
        y: Tensor,
        classes: Tensor,
        epochs: int | None = None,
        after_step: Callable[[], None] | None = None,
        params: Iterable[nn.Parameter] | None = None,
    ) -> None:
        """:func:`evo.continual.training.fit` with this learner's settings, generator and step budget.

        ``epochs`` (e.g. a short retraining) overrides the config's passes and the per-task step budget.
        """
        steps = self.steps_per_task if epochs is None else None
        self.steps += fit(net, x, y, classes, self.cfg, self.gen, epochs, steps, after_step, params)

    @abstractmethod
    def learn(self, t: int, task: StreamTask) -> None:
        """Learn task ``t`` (tasks arrive in order ``0, 1, ...``)."""

    @abstractmethod
    def logits(self, x: Tensor, t: int | None) -> Tensor:
        """Outputs for ``x`` as task ``t`` (task-incremental) or, when ``t`` is None, with no task given."""

    @abstractmethod
    def num_params(self) -> int:
        """Parameters the learner holds now (every column, every unit)."""


@dataclass(frozen=True)
class StreamResult:
    """Accuracy matrices (row i: after learning task i) and parameters after each task."""

    task_matrix: np.ndarray
    class_matrix: np.ndarray
    params: tuple[int, ...]
    steps: int

    @property
    def task_il(self) -> ContinualMetrics:
        return continual_metrics(self.task_matrix)

    @property
    def class_il(self) -> ContinualMetrics:
        return continual_metrics(self.class_matrix)

    def metrics(self) -> dict[str, float]:
        """Flat metrics: ``task_acc``, ``task_bwt``, ..., ``class_acc``, ..., ``params_after_<t>``, ``params``."""
        out = {**self.task_il.as_dict("task_"), **self.class_il.as_dict("class_")}
        out.update({f"params_after_{t}": float(p) for t, p in enumerate(self.params)})
        out["params"] = float(self.params[-1])
        return out


def run_stream(learner: Learner, stream: Stream, part: Part = "val") -> StreamResult:
    """Let ``learner`` learn every task in order, measuring every task seen after each one on ``part``."""
    n = len(stream.tasks)
    task_m, class_m = np.full((n, n), np.nan), np.full((n, n), np.nan)
    params = []
    for i, task in enumerate(stream.tasks):
        learner.learn(i, task)
        params.append(learner.num_params())
        seen = stream.seen_classes(i)
        for j, old in enumerate(stream.tasks[: i + 1]):
            x, y = old.part(part)
            task_m[i, j] = accuracy(learner.logits(x, j), y, old.classes)
            class_m[i, j] = accuracy(learner.logits(x, None), y, seen)
    return StreamResult(task_m, class_m, tuple(params), learner.steps)
