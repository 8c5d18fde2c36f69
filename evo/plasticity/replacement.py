"""Continual backprop (Dohare et al. 2024, "Loss of plasticity in deep continual learning", Nature).

Each hidden unit keeps a running *contribution utility*
u ← η·u + (1 − η)·|h|·Σ|w_out| (|h| its mean absolute output over the batch,
Σ|w_out| the summed magnitude of its fan-out). Every so often the
lowest-utility *mature* units are re-initialised: fresh random fan-in (as at
initialisation) and zero fan-out, so the network's function is unchanged
while the new units bring back plasticity. The replacement rate ρ is a share
of mature units per step, accumulated until it makes a whole unit.

Example:
    >>> update_utility(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([2.0, 5.0]), 0.5).tolist()
    [1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from evo.genome import Genome, init_uniform, norm_init
from evo.plasticity.config import ReplacementConfig
from evo.surgery import UnitParam, edit_units, to_rows, unit_params

__all__ = ["Replacer", "fan_out_magnitude", "reinitialise", "update_utility"]


def fan_out_magnitude(params: Mapping[str, Tensor], genome: Genome, layer: int) -> Tensor:
    """Σ|w_out| per unit of ``layer``: its columns in the next layer (and skip projections out)."""
    width = genome.layers[layer].width
    total = torch.zeros(width)
    for p in unit_params(genome, layer):
        if p.fan == "out":
            total += to_rows(params[p.name].detach(), p.dim, width).abs().sum(1).cpu()
    return total


def update_utility(utility: Tensor, activity: Tensor, fan_out: Tensor, decay: float) -> Tensor:
    """u ← η·u + (1 − η)·|h|·Σ|w_out|."""
    return decay * utility + (1.0 - decay) * activity * fan_out


def reinitialise(genome: Genome, layer: int, units: Tensor, generator: torch.Generator) -> Genome:
    """``units`` of ``layer`` with fresh fan-in (PyTorch's default init), fresh norm entries and zero fan-out:
    function-preserving (a ``layer`` norm aside: its statistics span all channels)."""
    chosen = torch.zeros(genome.layers[layer].width, dtype=torch.bool)
    chosen[units] = True
    count = int(chosen.sum())

    def edit(param: UnitParam, rows: Tensor) -> Tensor:
        rows = rows.clone()
        if param.fan == "in":
            rows[chosen] = init_uniform((count, rows.shape[1]), genome.fan_in(param.name), generator)
        elif param.fan == "norm":
            rows[chosen] = norm_init(param.name, count)[:, None]
        else:
            rows[chosen] = 0.0
        return rows

    return edit_units(genome, layer, edit)


class Replacer:
    """Chooses which units continual backprop replaces, accumulating the fractional rate ρ·(mature units)."""

    def __init__(self, config: ReplacementConfig) -> None:
        self.config = config
        self.pending: dict[int, float] = {}

    def select(self, layer: int, utility: Tensor, age: Tensor) -> Tensor:
        """Indices of the lowest-utility mature units due for replacement now (possibly none)."""
        mature = torch.nonzero(age > self.config.maturity).flatten()
        due = self.pending.get(layer, 0.0) + self.config.rate * self.config.interval * len(mature)
        count = min(int(due), len(mature))
        self.pending[layer] = due - count
        if count == 0:
            return mature[:0]
        return mature[torch.argsort(utility[mature], stable=True)[:count]]
