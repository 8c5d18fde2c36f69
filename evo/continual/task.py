"""Continual tasks: a stream of tasks learnt one after another; fitness = average accuracy at the end.

The streams (split digits, permuted digits, user-given class subsets) live in
:mod:`evo.continual.streams`, the learners in :mod:`evo.continual`. One
evaluation runs the configured learner over the whole stream from the given
genome and reports ACC, BWT and forgetting in both the task-incremental and
the class-incremental setting, and the parameters after every task.

The evaluation returns the *starting* genome, not the one at the end of the
stream: what evolution searches is the architecture (and, through
``task.learner``, the learner's knobs) that meets an unseen stream best —
passing on a network that already learnt the stream would let children
skip the problem.

Example:
    >>> from evo.genome import Genome
    >>> from evo.continual.config import ContinualTaskConfig
    >>> task = ContinualTask(ContinualTaskConfig(classes_per_task=5, learner={"epochs": 1}))
    >>> task.input_shape, task.output_size
    ((64,), 10)
    >>> result = task.evaluate(Genome.mlp((64,), (16,), 10), Budget(), "cpu", seed=0)
    >>> sorted(result.objectives), result.metrics["params_after_0"] > 0
    (['acc'], True)
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from evo.continual import make_learner, run_stream
from evo.continual._base import StreamResult
from evo.continual.config import ContinualTaskConfig
from evo.continual.streams import Part, Stream, build_stream
from evo.errors import ConfigError
from evo.genome import Genome
from evo.tasks import Task
from evo.types import Budget, Direction, Evaluation, Objective

__all__ = ["ContinualTask", "OBJECTIVES"]

#: the objectives a continual task can report, with their directions.
OBJECTIVES = {"acc": Direction.MAXIMIZE, "params": Direction.MINIMIZE}


class ContinualTask(Task):
    """A stream of classification tasks met by the learner ``cfg.learner`` describes.

    Args:
        cfg: the stream and the learner.
        stream: an already built stream (tests, benchmarks); ``None``: built from ``cfg`` on first use
            in each process (the task pickles small for Ray workers).
    """

    def __init__(self, cfg: ContinualTaskConfig, stream: Stream | None = None) -> None:
        self.cfg = cfg
        self._stream = stream
        self.objectives = tuple(Objective(name, OBJECTIVES[name]) for name in dict.fromkeys(cfg.objectives))
        self._input_shape, self._output_size = self.stream.input_shape, self.stream.num_classes

    @property
    def stream(self) -> Stream:
        if self._stream is None:
            self._stream = build_stream(self.cfg)
        return self._stream

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_stream"] = None
        return state

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    @property
    def output_size(self) -> int:
        return self._output_size

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        """Run the learner over the stream (``budget.steps`` > 0: optimiser steps per task), measure on validation.

        Learners run on the CPU (``device`` is ignored): the networks of a stream are tiny. A diverging loss
        or a genome the learner cannot use (e.g. conv layers for ``progressive``) gives a failed evaluation.
        """
        start = time.perf_counter()
        try:
            result = self.run(genome, "val", seed, budget.steps or None)
        except (FloatingPointError, RuntimeError, ValueError) as err:
            return self.failed(f"{type(err).__name__}: {err}", genome)
        metrics = result.metrics()
        values = {"acc": metrics[f"{self.cfg.setting}_acc"], "params": metrics["params"]}
        if not math.isfinite(values["acc"]):
            return self.failed("accuracy is not finite", genome)
        used = Budget(steps=result.steps, samples=result.steps * self.cfg.learner.batch_size,
                      seconds=time.perf_counter() - start)
        metrics["acc"] = values["acc"]
        return Evaluation(-1, {o.name: values[o.name] for o in self.objectives}, genome, metrics, used)

    def run(self, genome: Genome, part: Part = "val", seed: int = 0, steps_per_task: int | None = None) -> StreamResult:
        """The learner's run over the stream from ``genome``, measured on ``part`` after every task."""
        if genome.input_shape != self.input_shape or genome.output_size != self.output_size:
            raise ConfigError(
                f"continual task: genome must take {self.input_shape} and output {self.output_size}, got {genome}"
            )
        learner = make_learner(genome, self.cfg.learner, seed)
        learner.steps_per_task = steps_per_task
        with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator: fork and seed it
            torch.manual_seed(seed)
            return run_stream(learner, self.stream, part)

    def test(self, genome: Genome, device: str = "cpu") -> dict[str, float]:
        """Test-split metrics (``test_task_acc``, ``test_class_bwt``, ...) of a rerun from ``genome`` (seed 0)."""
        metrics = self.run(genome, "test").metrics()
        return {f"test_{k}": v for k, v in metrics.items() if not k.startswith("params")}

    def calibration_batch(self, n: int, seed: int) -> tuple[Tensor, Tensor] | None:
        """``n`` training samples drawn (seeded, without replacement) from every task's training data."""
        x = torch.cat([task.x_train for task in self.stream.tasks])
        y = torch.cat([task.y_train for task in self.stream.tasks])
        index = np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False)
        picked = torch.as_tensor(np.sort(index))
        return x[picked], y[picked]
