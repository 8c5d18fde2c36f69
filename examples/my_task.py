"""A task of your own: the two-spirals problem, named in a config as ``task: {kind: custom, ...}``.

Two interleaved spirals in the plane, one per class — a classic that a network
without enough hidden units cannot separate (Lang & Witbrock 1988). The data is
generated here, so nothing is downloaded. Each evaluation trains the genome with
evo's plastic trainer (it may grow and prune during training, as the
``plasticity`` section says) and reports two objectives: validation accuracy
(maximised, the fitness) and the parameter count (minimised), so selection
finds the Pareto front of small and accurate networks.

Run it: ``evo run examples/my_task.yaml`` (see docs/extending.md).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import Tensor

from evo.genome import Genome
from evo.plasticity import PlasticityConfig, train
from evo.tasks import Budget, Direction, Evaluation, Objective, Task


def spirals(n: int, turns: float, noise: float, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` points on two interleaved spirals (labels 0 and 1), with Gaussian noise."""
    rng = np.random.default_rng(seed)
    radius = rng.uniform(0.05, 1.0, n)
    label = rng.integers(0, 2, n)
    angle = 2 * math.pi * turns * radius + math.pi * label
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1) + rng.normal(0, noise, (n, 2))
    return torch.tensor(points, dtype=torch.float32), torch.tensor(label, dtype=torch.long)


class MyTask(Task):
    """Classify two spirals; objectives: val_accuracy (max) and params (min).

    Args:
        n_points: points generated for each of the train, validation and test splits.
        turns: how often each spiral winds around the centre (harder when larger).
        noise: standard deviation of the noise added to every point.
        seed: seed of the data (each evaluation's training seed comes from evo).
        plasticity: the config's ``plasticity`` section (evo passes it because this parameter exists).
    """

    objectives = (Objective("val_accuracy", Direction.MAXIMIZE), Objective("params", Direction.MINIMIZE))

    def __init__(self, n_points: int = 600, turns: float = 1.5, noise: float = 0.02, seed: int = 0,
                 plasticity: PlasticityConfig | None = None) -> None:
        if n_points < 10:
            raise ValueError(f"MyTask: n_points must be >= 10, got {n_points}")
        self.plasticity = plasticity or PlasticityConfig()
        self.train_xy, self.val_xy, self.test_xy = (spirals(n_points, turns, noise, seed + i) for i in range(3))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (2,)

    @property
    def output_size(self) -> int:
        return 2

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        """Train (``budget.steps`` steps, 0 = the plasticity section's epochs), then score on validation."""
        start = time.perf_counter()
        try:
            result = train(genome, *self.train_xy, self.plasticity, steps=budget.steps or None, device=device, seed=seed)
        except FloatingPointError as err:
            return self.failed(str(err))
        accuracy = self.accuracy(result.genome, *self.val_xy)
        objectives = {"val_accuracy": accuracy, "params": float(result.genome.num_params())}
        used = Budget(steps=result.steps, samples=result.samples, seconds=time.perf_counter() - start)
        return Evaluation(-1, objectives, result.genome, {"train_loss": result.final_loss}, used)

    def test(self, genome: Genome) -> dict[str, float]:
        """Test accuracy; evo calls this for the best few individuals at the end of a run."""
        return {"test_accuracy": self.accuracy(genome, *self.test_xy)}

    def calibration_batch(self, n: int, seed: int) -> tuple[Tensor, Tensor] | None:
        """Training samples for data-dependent operators (e.g. GradMax growth)."""
        x, y = self.train_xy
        return x[:n], y[:n]

    @staticmethod
    def accuracy(genome: Genome, x: Tensor, y: Tensor) -> float:
        with torch.no_grad():
            predicted = genome.to_module().eval()(x).argmax(dim=1)
        return float((predicted == y).float().mean())
