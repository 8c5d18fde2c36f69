"""Genomes and helpers shared for the operator tests: an MLP and a CNN with skips and a conv right before flatten."""

from __future__ import annotations

import numpy as np
import torch

from evo.genome import Genome, LayerKind, LayerSpec

CONV, LINEAR = LayerKind.CONV, LayerKind.LINEAR


def randomise_skips(genome: Genome, seed: int = 0) -> Genome:
    """Non-zero skip projections, so tests see skips actually carry signal."""
    gen = torch.Generator().manual_seed(seed)
    weights = {k: (torch.randn(v.shape, generator=gen) * 0.3 if k.startswith("skips.") else v) for k, v in genome.weights.items()}
    return genome.with_weights(weights)


def make_mlp() -> Genome:
    layers = [LayerSpec(LINEAR, 6), LayerSpec(LINEAR, 5), LayerSpec(LINEAR, 4), LayerSpec(LINEAR, 3, "identity")]
    return randomise_skips(Genome.random((7,), layers, skips=[(0, 2), (1, 3)], seed=1))


def make_cnn() -> Genome:
    layers = [
        LayerSpec(CONV, 4, pool=1),
        LayerSpec(CONV, 3, pool=2),
        LayerSpec(CONV, 5, pool=1),
        LayerSpec(CONV, 4, kernel_size=1),  # the conv right before flatten
        LayerSpec(LINEAR, 6),
        LayerSpec(LINEAR, 3, "identity"),
    ]
    return randomise_skips(Genome.random((2, 6, 6), layers, skips=[(1, 3)], seed=2))


def inputs(genome: Genome, n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn((n, *genome.input_shape), generator=torch.Generator().manual_seed(seed))


def outputs(genome: Genome, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return genome.to_module().eval()(x)


def max_delta(a: Genome, b: Genome, x: torch.Tensor) -> float:
    """max |Δ output| of two genomes on the same inputs."""
    return float((outputs(a, x) - outputs(b, x)).abs().max())


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def make_cnn1d() -> Genome:
    """Conv1d blocks on a (C, L) signal, batch norms, a skip and a global-average-pooled head."""
    layers = [
        LayerSpec(CONV, 4, kernel_size=5, pool=2, norm="batch"),
        LayerSpec(CONV, 3),
        LayerSpec(CONV, 4, norm="batch"),
        LayerSpec(LINEAR, 5, norm="batch"),
        LayerSpec(LINEAR, 3, "identity"),
    ]
    genome = randomise_skips(Genome.random((2, 12), layers, skips=[(0, 2)], seed=3, gap=True))
    gen = torch.Generator().manual_seed(3)  # non-trivial norm statistics and affine
    weights = {k: (v + 0.5 * torch.rand(v.shape, generator=gen) if k.startswith("norms.") else v) for k, v in genome.weights.items()}
    return genome.with_weights(weights)
