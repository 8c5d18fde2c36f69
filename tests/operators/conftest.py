"""The ``genome`` fixture: every operator test runs on an MLP and a CNN (see _helpers)."""

from __future__ import annotations

import pytest
import torch

from evo.genome import Genome
from tests.operators._helpers import make_cnn, make_mlp


@pytest.fixture(params=["mlp", "cnn"])
def genome(request: pytest.FixtureRequest) -> Genome:
    return make_mlp() if request.param == "mlp" else make_cnn()


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    """Tiny nets on a shared machine: more torch threads only oversubscribe the cores."""
    torch.set_num_threads(1)
