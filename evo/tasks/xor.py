"""XOR, neat-python's first benchmark: a gradient-free sanity check for evolution itself.

Fitness is ``4 − Σ(σ(out) − y)²`` over the four input pairs (σ = sigmoid), so a
perfect network scores 4; neat-python calls it solved above 3.9. The network is
never trained: the evaluation returns the input genome, and weights change only
through mutation operators, as in NEAT (Stanley & Miikkulainen 2002). Genomes of one
architecture are scored together as a numpy stack (:mod:`evo.stacked`).

Example:
    >>> from evo.genome import Genome
    >>> task = XorTask()
    >>> task.evaluate(Genome.mlp((2,), (4,), 1), Budget(), "cpu", 0).objectives["fitness"] < 4
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence

import numpy as np
import torch
from scipy.special import expit
from torch import Tensor

from evo.genome import Genome
from evo.stacked import StackedNet, architecture_key
from evo.tasks._base import Task
from evo.types import Budget, Evaluation, Job, Objective

__all__ = ["SOLVED_FITNESS", "XorTask"]

#: neat-python's ``fitness_threshold`` for XOR.
SOLVED_FITNESS = 3.9
_INPUTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
_TARGETS = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
_X, _Y = _INPUTS.numpy(), _TARGETS.numpy().astype(np.float64)


class XorTask(Task):
    """The four XOR points; one sigmoid output."""

    objectives = (Objective("fitness"),)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (2,)

    @property
    def output_size(self) -> int:
        return 1

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        """Score ``genome`` on the four points (``budget``, ``device`` and ``seed`` are irrelevant: it is exact)."""
        return self.evaluate_batch([Job(-1, genome, budget, seed)], device)[0]

    def evaluate_batch(self, jobs: Sequence[Job], device: str) -> list[Evaluation]:
        """Every job's :meth:`evaluate`, genomes of one architecture scored in one stacked forward pass."""
        out: dict[int, Evaluation] = {}
        groups: dict[Hashable, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(architecture_key(job.genome), []).append(i)
        for members in groups.values():
            start = time.perf_counter()
            genomes = [jobs[i].genome for i in members]
            net = StackedNet.of(genomes)
            with np.errstate(all="ignore"):
                predictions = expit(net(np.broadcast_to(_X, (len(genomes), *_X.shape))).astype(np.float64))
            errors = ((predictions - _Y) ** 2).sum(axis=(1, 2))
            seconds = (time.perf_counter() - start) / len(members)
            for i, genome, error in zip(members, genomes, errors, strict=True):
                out[i] = self._evaluation(genome, float(error), seconds)
        return [out[i] for i in range(len(jobs))]

    def _evaluation(self, genome: Genome, error: float, seconds: float) -> Evaluation:
        if not math.isfinite(error):
            return self.failed("network output is not finite")
        fitness = 4.0 - error
        metrics = {"fitness": fitness, "solved": float(fitness > SOLVED_FITNESS), "params": float(genome.num_params())}
        return Evaluation(-1, {"fitness": fitness}, genome, metrics, Budget(episodes=1, seconds=seconds))

    def calibration_batch(self, n: int, seed: int) -> tuple[Tensor, Tensor] | None:
        """The four XOR points (all the data there is)."""
        return _INPUTS.clone(), _TARGETS.clone()
