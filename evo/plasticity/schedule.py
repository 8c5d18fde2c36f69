"""When each plasticity event happens between optimiser steps, and what it did."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from evo.plasticity.config import PlasticityConfig
from evo.plasticity.state import PlasticNet

__all__ = ["Schedule"]


class Schedule:
    """Runs the configured strategies at their intervals and records events and counts."""

    def __init__(
        self,
        state: PlasticNet,
        config: PlasticityConfig,
        x: Tensor,
        y: Tensor,
        total: int,
        gen: torch.Generator,
        rng: np.random.Generator,
        loss: str,
    ) -> None:
        self.state, self.config, self.total, self.gen, self.rng, self.loss = state, config, total, gen, rng, loss
        self.events: list[str] = []
        self.counts = {"grown": 0, "pruned": 0, "replaced": 0, "rewired": 0}

    def before_update(self, step: int) -> None:
        """Between backward and the optimiser step: gradient-driven rewiring."""

    def after_step(self, step: int, loss: float) -> None:
        """After the optimiser step: growth, pruning, replacement."""

    def metrics(self) -> dict[str, float]:
        widths = {f"width_{i}": float(self.state.genome.layers[i].width) for i in self.state.genome.hidden_layers}
        return {**{k: float(v) for k, v in self.counts.items()}, **widths}
