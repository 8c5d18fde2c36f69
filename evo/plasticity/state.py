"""The mutable state of one lifetime: module, optimiser, per-unit records and sparsity masks.

A :class:`Genome` is immutable, training is not. :class:`PlasticNet` holds what
changes step by step and keeps it consistent through every shape change
(:meth:`PlasticNet.apply`): the module is rebuilt from the new genome, the
optimiser state is carried over by :mod:`evo.plasticity.optim`, and each hidden
unit's age (steps since birth), continual-backprop utility and gradual-DropIn
scale follow their unit. New units start at age 0, utility 0 and scale 0
(ramping to 1) — or 1 when there is no ramp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from evo.genome import Genome
from evo.plasticity.config import PlasticityConfig
from evo.plasticity.optim import make_optimizer, rebuild_optimizer, start_from
from evo.surgery import UnitParam, edit_units, remap_rows, to_rows, unit_params

__all__ = ["PlasticNet", "UnitChange"]


@dataclass(frozen=True)
class UnitChange:
    """A new shape for one hidden layer: ``genome`` holds the new weights, ``index[j]`` is the old unit
    new unit ``j`` continues (``-1``: a newborn or re-initialised unit, whose records start afresh)."""

    layer: int
    genome: Genome
    index: Tensor


class PlasticNet:
    """Module + optimiser + per-unit records (age, utility, DropIn scale) + weight masks.

    Args:
        genome: the starting network; with ``config.carry_optimizer`` the optimiser starts from its
            :attr:`~Genome.optim_state` (else fresh).
        config: optimiser and ramp settings.
        device: where the module lives.
        generator: CPU torch generator for every random draw (mask rows of new units).
    """

    def __init__(self, genome: Genome, config: PlasticityConfig, device: str, generator: torch.Generator) -> None:
        self.config, self.device, self.generator = config, device, generator
        carried = genome.optim_state if config.carry_optimizer else {}
        self.genome = genome.replace(optim_state={}) if genome.optim_state else genome  # the optimiser holds it
        self.masks: dict[str, Tensor] = {}
        self.activity: dict[int, Tensor] = {}  # mean |h| per unit in the last training forward pass
        self.track_activity = config.replacement.strategy == "cbp"
        self.ramp_steps = config.growth.ramp_steps  # read every step (tick)
        widths = {i: genome.layers[i].width for i in genome.hidden_layers}
        self.steps = 0
        self.born = {i: torch.zeros(w) for i, w in widths.items()}  # the step each unit was born at
        self.utility = {i: torch.zeros(w) for i, w in widths.items()}
        self.scale = {i: torch.ones(w) for i, w in widths.items()}
        self.net = self._build(genome)
        self.optimizer = make_optimizer(self.params, config)
        start_from(self.optimizer, self.params, carried, config)

    # ------------------------------------------------------------- module
    def _build(self, genome: Genome) -> nn.Module:
        net = genome.to_module(self.device)
        if self.ramp_steps > 0 or self.track_activity:  # hooks cost a call per layer and step
            for i in genome.hidden_layers:
                net.post[i].register_forward_hook(self._hook(i))
        return net

    def _hook(self, layer: int):  # type: ignore[no-untyped-def]
        """Scale a layer's output by its units' DropIn ramp and record their mean |h|."""

        def hook(_module: nn.Module, _inputs: object, out: Tensor) -> Tensor:
            scale = self.scale[layer]
            if bool((scale < 1).any()):
                out = out * scale.to(out).view(1, -1, *([1] * (out.dim() - 2)))
            if self.track_activity and _module.training:
                self.activity[layer] = out.detach().abs().transpose(0, 1).reshape(out.shape[1], -1).mean(1).cpu()
            return out

        return hook

    @property
    def params(self) -> dict[str, nn.Parameter]:
        return dict(self.net.named_parameters())

    # ------------------------------------------------------------- genomes
    def current(self) -> Genome:
        """The genome with the module's weights, DropIn scales not folded in (structure bookkeeping)."""
        return self.genome.from_module(self.net)

    def effective(self) -> Genome:
        """The genome computing what the module computes: each ramping unit's scale folded into its fan-out."""
        genome = self.current()
        for i, scale in self.scale.items():
            if bool((scale < 1).any()):
                genome = edit_units(genome, i, _fold(scale))
        return genome

    # ------------------------------------------------------------- training
    def age(self, layer: int) -> Tensor:
        """Optimiser steps each unit of ``layer`` has lived (birth steps are stored, so ticking is O(1))."""
        return self.steps - self.born[layer]

    def tick(self) -> None:
        """One optimiser step passed: units age and ramping units move 1/ramp_steps towards full scale."""
        self.steps += 1
        ramp = self.ramp_steps
        if ramp > 0:
            for i, scale in self.scale.items():
                self.scale[i] = (scale + 1.0 / ramp).clamp(max=1.0)

    def apply_masks(self) -> None:
        """Zero every masked weight (after each optimiser step and each shape change)."""
        if not self.masks:
            return
        params = self.params
        with torch.no_grad():
            for name, mask in self.masks.items():
                params[name].mul_(mask)

    def mask_grads(self) -> None:
        """Zero the gradients of masked weights, so the optimiser's moments of absent connections stay zero."""
        if not self.masks:
            return
        params = self.params
        for name, mask in self.masks.items():
            grad = params[name].grad
            if grad is not None:
                grad.mul_(mask)

    # ------------------------------------------------------------- shape changes
    def apply(self, change: UnitChange) -> None:
        """Adopt ``change``: rebuild module and optimiser, carry unit records and masks to the new units."""
        layer, index = change.layer, change.index
        units = self.genome.layers[layer].width
        slices = unit_params(self.genome, layer)
        remap = {p.name: (p.dim, index) for p in slices}
        old_params, old_optimizer = self.params, self.optimizer
        for p in slices:
            if p.name in self.masks:
                self.masks[p.name] = self._remap_mask(self.masks[p.name], p.dim, units, index)
        new_scale = 0.0 if self.ramp_steps > 0 else 1.0
        self.born[layer] = remap_rows(self.born[layer], 0, units, index, float(self.steps))
        self.utility[layer] = remap_rows(self.utility[layer], 0, units, index, 0.0)
        self.scale[layer] = remap_rows(self.scale[layer], 0, units, index, new_scale)
        self.genome = change.genome
        self.net = self._build(change.genome)
        self.optimizer = rebuild_optimizer(old_optimizer, old_params, self.params, self.config, remap, units)
        self.apply_masks()

    def _remap_mask(self, mask: Tensor, dim: int, units: int, index: Tensor) -> Tensor:
        """Surviving units keep their connections; new units get random ones at the tensor's density."""
        born = int((index < 0).sum())
        row_len = to_rows(mask, dim, units).shape[1]
        fill = torch.rand(born, row_len, generator=self.generator) < mask.float().mean().item()
        return remap_rows(mask, dim, units, index, fill.to(mask.device))


def _fold(scale: Tensor) -> Callable[[UnitParam, Tensor], Tensor]:
    """An :func:`edit_units` edit multiplying each unit's fan-out by its scale."""

    def edit(param: UnitParam, rows: Tensor) -> Tensor:
        return rows * scale[:, None] if param.fan == "out" else rows

    return edit
