"""Optimiser state across shape changes: survivors keep their moments, newborn weights start at zero.

After a unit is added, removed or re-initialised, the module is rebuilt with
new parameter tensors. Throwing the optimiser away would reset Adam's moments
of every weight (a jolt for the whole network); keeping them by position
would hand a removed unit's moments to its neighbour. :func:`rebuild_optimizer`
instead carries each state tensor through the same unit remapping as the
weights (``index[j]``: the old unit new unit ``j`` came from, ``-1`` for a new
one), via :mod:`evo.surgery`'s row views. Step counts are kept.

Example:
    >>> import torch
    >>> t = torch.arange(6.0).reshape(3, 2)
    >>> remap_rows(t, 0, 3, torch.tensor([2, -1, 0])).tolist()
    [[4.0, 5.0], [0.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from evo.plasticity.config import PlasticityConfig
from evo.surgery import from_rows, to_rows

__all__ = ["UnitRemap", "fusable", "make_optimizer", "rebuild_optimizer", "remap_rows", "zero_state"]

#: parameter name → (unit dimension, index of old units; -1 = new unit)
UnitRemap = Mapping[str, tuple[int, Tensor]]


#: Devices with fused optimiser steps in torch (one kernel per step for all parameters).
FUSED_DEVICES = ("cpu", "cuda")


def fusable(params: Sequence[nn.Parameter]) -> bool | None:
    """``fused=`` for a torch optimiser over ``params``: True where torch has a fused step for all of them,
    else None (torch's default). The small networks evo trains spend most of an optimiser step in
    per-tensor Python overhead; a fused Adam trains them about 30% faster on a CPU."""
    return all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in params) or None


def make_optimizer(params: Mapping[str, nn.Parameter], config: PlasticityConfig) -> torch.optim.Optimizer:
    """Adam or SGD (with momentum) over ``params`` in name order, as the config says; fused (:func:`fusable`)."""
    values = list(params.values())
    fused = fusable(values)
    if config.optimizer == "adam":
        return torch.optim.Adam(values, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    return torch.optim.SGD(values, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                           fused=fused)


def remap_rows(tensor: Tensor, dim: int, units: int, index: Tensor, fill: Tensor | float = 0.0) -> Tensor:
    """``tensor``'s ``units`` unit slices along ``dim`` picked by ``index``; ``-1`` entries get ``fill``.

    Args:
        fill: a scalar, or one row per new unit (shaped like :func:`evo.surgery.to_rows`' rows).
    """
    rows = to_rows(tensor, dim, units)
    index = index.to(rows.device)
    picked = rows[index.clamp(min=0)].clone()
    new = index < 0
    picked[new] = fill.to(picked) if isinstance(fill, Tensor) else fill
    return from_rows(picked, dim, tensor, units)


def rebuild_optimizer(
    old: torch.optim.Optimizer,
    old_params: Mapping[str, nn.Parameter],
    new_params: Mapping[str, nn.Parameter],
    config: PlasticityConfig,
    remap: UnitRemap,
    units: int,
) -> torch.optim.Optimizer:
    """A fresh optimiser over ``new_params`` carrying ``old``'s state through ``remap``.

    Args:
        old_params / new_params: name → parameter before and after the change.
        remap: the parameters whose units changed, with their unit dimension and index.
        units: the changed layer's width before the change.

    Returns:
        The optimiser; state tensors shaped like their parameter (Adam's
        ``exp_avg``/``exp_avg_sq``, SGD's ``momentum_buffer``) are remapped,
        scalars such as ``step`` are copied.
    """
    new = make_optimizer(new_params, config)
    for name, param in new_params.items():
        state = old.state.get(old_params[name]) if name in old_params else None
        if not state:
            continue
        carried: dict[str, Tensor] = {}
        for key, value in state.items():
            if isinstance(value, Tensor) and value.shape == old_params[name].shape and value.dim() > 0:
                if name in remap:
                    dim, index = remap[name]
                    value = remap_rows(value, dim, units, index)
                carried[key] = value.clone()
            else:
                carried[key] = value.clone() if isinstance(value, Tensor) else value
        new.state[param] = carried
    return new


def zero_state(optimizer: torch.optim.Optimizer, param: nn.Parameter, where: Tensor) -> None:
    """Zero the optimiser's per-weight state of ``param`` at ``where`` (a boolean map): rewired connections
    start without momentum, like a new weight."""
    for value in optimizer.state.get(param, {}).values():
        if isinstance(value, Tensor) and value.shape == param.shape:
            value[where] = 0.0
