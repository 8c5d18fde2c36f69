"""Optimiser state across shape changes: survivors keep their moments, newborn weights start at zero.

After a unit is added, removed or re-initialised, the module is rebuilt with
new parameter tensors. Throwing the optimiser away would reset Adam's moments
of every weight (a jolt for the whole network); keeping them by position
would hand a removed unit's moments to its neighbour. :func:`rebuild_optimizer`
instead carries each state tensor through the same unit remapping as the
weights (``index[j]``: the old unit new unit ``j`` came from, ``-1`` for a new
one), via :mod:`evo.surgery`'s row views. Step counts are kept.

Across lifetimes (``plasticity.carry_optimizer``) the same state travels with the
genome: :func:`saved_state` takes it out of a trained optimiser, the operators
map it with the weights (:func:`evo.surgery.edit_units`), and :func:`start_from`
puts it into the child's new optimiser.

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
from evo.surgery import remap_rows

__all__ = ["STATE_KEYS", "UnitRemap", "fusable", "make_optimizer", "rebuild_optimizer", "remap_rows", "saved_state",
           "start_from", "zero_state"]

#: parameter name → (unit dimension, index of old units; -1 = new unit)
UnitRemap = Mapping[str, tuple[int, Tensor]]


#: The per-weight state each optimiser keeps: what a genome carries from one lifetime to the next.
STATE_KEYS = {"adam": frozenset({"exp_avg", "exp_avg_sq", "step"}), "sgd": frozenset({"momentum_buffer"})}

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


def saved_state(optimizer: torch.optim.Optimizer, params: Mapping[str, nn.Parameter]) -> dict[str, dict[str, Tensor]]:
    """Parameter name → a CPU copy of ``optimizer``'s state of it (parameters it never stepped are left out)."""
    return {
        name: {key: value.detach().to("cpu", copy=True) for key, value in state.items() if isinstance(value, Tensor)}
        for name, param in params.items()
        if (state := optimizer.state.get(param))
    }


def start_from(
    optimizer: torch.optim.Optimizer, params: Mapping[str, nn.Parameter], state: Mapping[str, Mapping[str, Tensor]],
    config: PlasticityConfig,
) -> None:
    """Give the fresh ``optimizer`` over ``params`` (name order, as :func:`make_optimizer` builds it) the carried
    ``state`` of the parameters that have one of this optimiser's kind (:data:`STATE_KEYS`; state of the other
    kind, e.g. SGD's after an evolved switch to Adam, is left out: those parameters start fresh).

    torch's ``load_state_dict`` moves each value where this optimiser keeps it (``step`` on the parameter's
    device for a fused Adam, on the CPU otherwise); the values are copied first, because it keeps a tensor
    already there and the steps then update it in place — the genome's state must not change.
    """
    keys = STATE_KEYS[config.optimizer]
    carried = {
        i: {key: value.clone() for key, value in state[name].items()}
        for i, name in enumerate(params)
        if name in state and set(state[name]) == keys
    }
    if carried:
        full = optimizer.state_dict()
        optimizer.load_state_dict({**full, "state": carried})
