"""Shared by the plasticity tests: 200 digits samples scaled to [0, 1], small genomes, one torch thread."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import Tensor

from evo.genome import Genome



@pytest.fixture(scope="session")
def digits() -> tuple[Tensor, Tensor]:
    data = load_digits()
    x = torch.tensor(data.data[:200] / 16.0, dtype=torch.float32)
    return x, torch.tensor(data.target[:200])


@pytest.fixture
def mlp() -> Genome:
    return Genome.mlp((64,), hidden=(12,), output_size=10, seed=0)
