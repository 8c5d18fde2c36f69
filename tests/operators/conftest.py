"""The ``genome`` fixture: every operator test runs on an MLP and a CNN (see _helpers)."""

from __future__ import annotations

import pytest

from evo.genome import Genome
from tests.operators._helpers import make_cnn, make_mlp


@pytest.fixture(params=["mlp", "cnn"])
def genome(request: pytest.FixtureRequest) -> Genome:
    return make_mlp() if request.param == "mlp" else make_cnn()

