"""The ``genome`` fixture: every operator test runs on an MLP, a CNN and a 1-D CNN with norms and gap (see _helpers)."""

from __future__ import annotations

import pytest

from evo.genome import Genome
from tests.operators._helpers import make_cnn, make_cnn1d, make_mlp


@pytest.fixture(params=["mlp", "cnn", "cnn1d"])
def genome(request: pytest.FixtureRequest) -> Genome:
    return {"mlp": make_mlp, "cnn": make_cnn, "cnn1d": make_cnn1d}[request.param]()

