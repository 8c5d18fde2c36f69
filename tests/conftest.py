"""Shared by every test: one torch thread, quiet Optuna logs, a private cache folder and a tiny XOR config.

The networks under test are tiny; on a 2-core machine more threads only oversubscribe the
cores (training steps were measured 30–60× slower with the default).
"""

from __future__ import annotations

import os
import tempfile

import optuna
import pytest
import torch

from evo.config import EvoConfig, load_config

# memory-mapped data splits are written here, not into the user's ~/.cache (set before any Ray worker starts)
os.environ["EVO_CACHE_DIR"] = tempfile.mkdtemp(prefix="evo-test-cache-")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def xor_config() -> EvoConfig:
    """Gradient-free XOR (a generation takes milliseconds), 2 generations of 3 individuals, serial backend."""
    return load_config(None, ["task.kind=xor", "evolution.generations=2", "evolution.population_size=3",
                              "backend.kind=serial", "name=xor"])
