"""Plastic training: the grow → train → prune → regrow cycle within a lifetime.

:func:`train` is the training loop of supervised tasks; :class:`PlasticityConfig`
holds its knobs (the plasticity hyperparameters Optuna searches).
"""

from __future__ import annotations

from evo.plasticity.config import GrowthConfig, PlasticityConfig, PruningConfig, ReplacementConfig, RewiringConfig
from evo.plasticity.trainer import Diverged, TrainResult, train

__all__ = [
    "Diverged",
    "GrowthConfig",
    "PlasticityConfig",
    "PruningConfig",
    "ReplacementConfig",
    "RewiringConfig",
    "TrainResult",
    "train",
]
