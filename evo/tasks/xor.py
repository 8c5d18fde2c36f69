"""XOR, neat-python's first benchmark: a gradient-free sanity check for evolution itself.

Fitness is ``4 − Σ(σ(out) − y)²`` over the four input pairs (σ = sigmoid), so a
perfect network scores 4; neat-python calls it solved above 3.9. The network is
never trained: the evaluation returns the input genome, and weights change only
through mutation operators, as in NEAT (Stanley & Miikkulainen 2002).

Example:
    >>> from evo.genome import Genome
    >>> task = XorTask()
    >>> task.evaluate(Genome.mlp((2,), (4,), 1), Budget(), "cpu", 0).objectives["fitness"] < 4
    True
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from evo.genome import Genome
from evo.tasks._base import Budget, Evaluation, Objective, Task

__all__ = ["SOLVED_FITNESS", "XorTask"]

#: neat-python's ``fitness_threshold`` for XOR.
SOLVED_FITNESS = 3.9
_INPUTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
_TARGETS = torch.tensor([[0.0], [1.0], [1.0], [0.0]])


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
        start = time.perf_counter()
        module = genome.to_module().eval()
        with torch.no_grad():
            out = torch.sigmoid(module(_INPUTS))
        error = float(((out - _TARGETS) ** 2).sum())
        if not math.isfinite(error):
            return self.failed("network output is not finite")
        fitness = 4.0 - error
        metrics = {"fitness": fitness, "solved": float(fitness > SOLVED_FITNESS), "params": float(genome.num_params())}
        used = Budget(episodes=1, seconds=time.perf_counter() - start)
        return Evaluation(-1, {"fitness": fitness}, genome, metrics, used)

    def calibration_batch(self, n: int, seed: int) -> tuple[Tensor, Tensor] | None:
        """The four XOR points (all the data there is)."""
        return _INPUTS.clone(), _TARGETS.clone()
