"""Shared fixtures: a tiny XOR config (a generation takes milliseconds) and quiet Optuna logs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from evo.config import EvoConfig, load_config


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def xor_config() -> EvoConfig:
    """Gradient-free XOR, 2 generations of 3 individuals, serial backend."""
    return load_config(None, ["task.kind=xor", "evolution.generations=2", "evolution.population_size=3",
                              "backend.kind=serial", "name=xor"])


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write(name, text)``: a file under the test's temporary folder."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write
