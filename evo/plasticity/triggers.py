"""Growth triggers: *when* a layer grows and *by how much*.

* :class:`IntervalTrigger` — every ``interval`` steps, ``amount`` units per layer.
* :class:`PlateauTrigger` — when the mean training loss over a check window has
  not improved by ``min_delta`` for ``patience`` checks (DEN-style growth when
  learning stalls, Yoon et al. 2018).
* :class:`RankTrigger` — NORTH (Maile et al. 2022, "When, where, and how to add
  new neurons to ANNs"): a layer's effective rank φ is the fraction of singular
  values of its activation matrix H/√n above ε; it grows
  k = max(0, ⌊M·(φ − γ·φ₀)⌋) units, M its width and φ₀ its φ at the first check.

Example:
    >>> t = IntervalTrigger(GrowthConfig(interval=10, amount=2))
    >>> t.due(9), t.amounts({0: 8}, dict)
    (True, {0: 2})
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from evo.plasticity.config import GrowthConfig

__all__ = ["GrowthTrigger", "IntervalTrigger", "PlateauTrigger", "RankTrigger", "effective_rank", "make_trigger"]

#: a lazily computed map hidden layer → its activations on the calibration batch
Outputs = Callable[[], Mapping[int, Tensor]]


def effective_rank(h: Tensor, epsilon: float) -> float:
    """NORTH's φ: the fraction of singular values of H/√n above ``epsilon``.

    Args:
        h: activations ``(n, units)``, or ``(n, C, L)`` / ``(n, C, H, W)`` (each position a sample of the C channels).
    """
    if h.dim() > 2:
        h = h.movedim(1, -1).reshape(-1, h.shape[1])
    singular = torch.linalg.svdvals(h.double() / math.sqrt(h.shape[0]))
    return float((singular > epsilon).sum()) / h.shape[1]


class GrowthTrigger:
    """Checks every ``interval`` steps; subclasses decide how many units each layer gets."""

    def __init__(self, config: GrowthConfig) -> None:
        self.config = config

    def due(self, step: int) -> bool:
        """Whether step ``step`` (0-based, just taken) ends a check interval."""
        return (step + 1) % self.config.interval == 0

    def observe(self, loss: float) -> None:
        """Every step's training loss (only the plateau trigger uses it)."""

    def amounts(self, widths: Mapping[int, int], outputs: Outputs) -> dict[int, int]:
        """Units to add per hidden layer (``widths``: current widths); called at each due step."""
        return {i: self.config.amount for i in widths}


class IntervalTrigger(GrowthTrigger):
    """Grow every layer by ``amount`` at every check."""


class PlateauTrigger(GrowthTrigger):
    """Grow every layer by ``amount`` once the loss stalls for ``patience`` checks (then wait again)."""

    def __init__(self, config: GrowthConfig) -> None:
        super().__init__(config)
        self.window: list[float] = []
        self.best = math.inf
        self.stalled = 0

    def observe(self, loss: float) -> None:
        self.window.append(loss)

    def amounts(self, widths: Mapping[int, int], outputs: Outputs) -> dict[int, int]:
        mean = sum(self.window) / max(len(self.window), 1)
        self.window = []
        if mean < self.best - self.config.min_delta:
            self.best, self.stalled = mean, 0
            return {}
        self.stalled += 1
        if self.stalled < self.config.patience:
            return {}
        self.stalled = 0
        return super().amounts(widths, outputs)


class RankTrigger(GrowthTrigger):
    """NORTH: grow ⌊width·(φ − γ·φ₀)⌋ units (at most ``amount``) where the effective rank is saturated."""

    def __init__(self, config: GrowthConfig) -> None:
        super().__init__(config)
        self.phi0: dict[int, float] = {}

    def amounts(self, widths: Mapping[int, int], outputs: Outputs) -> dict[int, int]:
        grow = {}
        for i, h in outputs().items():
            phi = effective_rank(h, self.config.rank_epsilon)
            phi0 = self.phi0.setdefault(i, phi)
            k = max(0, math.floor(widths[i] * (phi - self.config.rank_gamma * phi0)))
            if k:
                grow[i] = min(k, self.config.amount)
        return grow


def make_trigger(config: GrowthConfig) -> GrowthTrigger:
    """The trigger ``config.trigger`` names."""
    kinds: dict[str, type[GrowthTrigger]] = {
        "interval": IntervalTrigger,
        "plateau": PlateauTrigger,
        "rank": RankTrigger,
    }
    return kinds[config.trigger](config)
