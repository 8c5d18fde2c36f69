"""XorTask: neat-python's fitness on hand-set weights."""

from __future__ import annotations

import math

import torch

from evo.genome import Genome
from evo.tasks import Budget, XorTask

K = 20.0


def xor_genome(scale: float = K) -> Genome:
    """h1 = relu(a + b), h2 = relu(a + b − 1), out = K·(h1 − 2·h2 − ½): XOR with margins ±K/2."""
    skeleton = Genome.mlp((2,), (2,), 1)
    weights = {
        "layers.0.weight": torch.tensor([[1.0, 1.0], [1.0, 1.0]]),
        "layers.0.bias": torch.tensor([0.0, -1.0]),
        "layers.1.weight": torch.tensor([[scale, -2.0 * scale]]),
        "layers.1.bias": torch.tensor([-scale / 2]),
    }
    return skeleton.with_weights(weights)


def test_hand_set_xor_network_is_solved() -> None:
    ev = XorTask().evaluate(xor_genome(), Budget(), "cpu", seed=0)
    expected = 4.0 - 4 * (1 / (1 + math.exp(K / 2))) ** 2
    assert math.isclose(ev.objectives["fitness"], expected, rel_tol=1e-6)
    assert ev.metrics["solved"] == 1.0 and ev.genome is not None


def test_zero_network_scores_three_and_is_not_solved() -> None:
    genome = xor_genome().with_weights({k: torch.zeros_like(v) for k, v in xor_genome().weights.items()})
    ev = XorTask().evaluate(genome, Budget(), "cpu", seed=0)
    assert math.isclose(ev.objectives["fitness"], 3.0, rel_tol=1e-9)  # σ(0) = ½ everywhere: 4 × ¼ error
    assert ev.metrics["solved"] == 0.0


def test_weak_margin_is_below_threshold() -> None:
    ev = XorTask().evaluate(xor_genome(scale=2.0), Budget(), "cpu", seed=0)
    assert 3.0 < ev.objectives["fitness"] < 3.9 and ev.metrics["solved"] == 0.0


def test_gradient_free_returns_the_input_genome() -> None:
    genome = xor_genome()
    assert XorTask().evaluate(genome, Budget(steps=100), "cpu", seed=3).genome is genome


def test_non_finite_output_fails() -> None:
    genome = xor_genome().with_weights({k: torch.full_like(v, math.nan) for k, v in xor_genome().weights.items()})
    ev = XorTask().evaluate(genome, Budget(), "cpu", seed=0)
    assert not ev.ok and ev.objectives["fitness"] == -math.inf


def test_shapes_and_calibration_batch() -> None:
    task = XorTask()
    x, y = task.calibration_batch(8, seed=0) or (None, None)
    assert task.input_shape == (2,) and task.output_size == 1
    assert x is not None and y is not None and x.shape == (4, 2) and y.tolist() == [[0.0], [1.0], [1.0], [0.0]]
