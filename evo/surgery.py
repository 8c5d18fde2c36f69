"""Unit-level surgery: the one place that knows which weights belong to a neuron.

A unit (neuron or channel) of a hidden layer owns slices of several tensors:
its *fan-in* (a row of its layer's weight, its bias entry, rows of skip
projections into the layer), its *norm* entries (the layer's norm's affine
weight and bias and BatchNorm's running statistics: they follow the unit and
are never drawn at random) and its *fan-out* (columns of the next layer's
weight — H·W columns each where the next layer flattens a conv — and columns
of skip projections out of the layer). Growing, pruning, splitting and
re-initialising units are all "edit the rows of these slices", so operators
and the plastic trainer share :func:`edit_units` instead of each re-deriving
the bookkeeping.

Example:
    >>> from evo.genome import Genome
    >>> g = Genome.mlp((4,), hidden=(3,), output_size=2)
    >>> gather_units(g, 0, [0, 2]).layers[0].width
    2
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from evo.genome import Genome, norm_name, norm_tensors, skip_name, weight_name

__all__ = ["UnitParam", "edit_units", "from_rows", "gather_units", "remap_rows", "to_rows", "unit_params"]


@dataclass(frozen=True)
class UnitParam:
    """A parameter slice indexed by a layer's units along ``dim``."""

    name: str
    dim: int
    fan: Literal["in", "norm", "out"]


def unit_params(genome: Genome, layer: int) -> tuple[UnitParam, ...]:
    """Every parameter slice owned by the units of hidden layer ``layer``."""
    if layer not in genome.hidden_layers:
        raise ValueError(f"layer {layer} is not a hidden layer (allowed 0..{genome.num_layers - 2})")
    params = [UnitParam(weight_name(layer), 0, "in"), UnitParam(weight_name(layer, "bias"), 0, "in")]
    params += [UnitParam(skip_name(s, d), 0, "in") for s, d in genome.skips if d == layer]
    norm = genome.layers[layer].norm
    params += [UnitParam(norm_name(layer, name), 0, "norm") for name in norm_tensors(norm)] if norm else []
    params.append(UnitParam(weight_name(layer + 1), 1, "out"))
    params += [UnitParam(skip_name(s, d), 1, "out") for s, d in genome.skips if s == layer]
    return tuple(params)


def to_rows(tensor: Tensor, dim: int, units: int) -> Tensor:
    """View ``tensor`` as ``(units, -1)``: one row per unit indexed along ``dim``."""
    return tensor.movedim(dim, 0).reshape(units, -1)


def from_rows(rows: Tensor, dim: int, like: Tensor, units: int) -> Tensor:
    """Inverse of :func:`to_rows` for ``rows.shape[0]`` units, shaped like ``like`` otherwise."""
    moved = like.movedim(dim, 0)
    block = moved.shape[0] // units
    return rows.reshape(rows.shape[0] * block, *moved.shape[1:]).movedim(0, dim).contiguous()


def edit_units(
    genome: Genome, layer: int, edit: Callable[[UnitParam, Tensor], Tensor], index: Tensor | None = None
) -> Genome:
    """Rewrite every unit slice of ``layer`` with ``edit(param, rows) -> new_rows``.

    ``edit`` receives the ``(units, -1)`` rows of each slice and returns the new
    rows; it must return the same number of rows for every slice, which
    becomes the layer's new width.

    Args:
        index: the old unit each new unit continues (``-1``: a new unit), to carry the genome's optimiser
            state (:attr:`Genome.optim_state`) through the edit: new units start with zero moments. None:
            the edit is no unit map, and the slices' optimiser state is dropped.
    """
    units = genome.layers[layer].width
    weights = dict(genome.weights)
    state = dict(genome.optim_state)
    new_width = None
    for param in unit_params(genome, layer):
        old = weights[param.name]
        rows = edit(param, to_rows(old, param.dim, units))
        if new_width is not None and rows.shape[0] != new_width:
            raise ValueError(f"edit returned {rows.shape[0]} rows for {param.name}, expected {new_width}")
        new_width = rows.shape[0]
        weights[param.name] = from_rows(rows, param.dim, old, units)
        if param.name in state:
            entry = state.pop(param.name)
            if index is not None:
                state[param.name] = {k: remap_rows(v, param.dim, units, index) if v.dim() else v
                                     for k, v in entry.items()}
    if not new_width:
        raise ValueError(f"layer {layer} would have no units left")
    layers = list(genome.layers)
    layers[layer] = dataclasses.replace(layers[layer], width=new_width)
    return genome.replace(layers=tuple(layers), weights=weights, optim_state=state)


def gather_units(genome: Genome, layer: int, index: Sequence[int] | Tensor) -> Genome:
    """Keep (or repeat) units of ``layer`` in the order of ``index``, with all their weights (and optimiser state)."""
    idx = torch.as_tensor(index, dtype=torch.long)
    return edit_units(genome, layer, lambda _param, rows: rows[idx], idx)


def remap_rows(tensor: Tensor, dim: int, units: int, index: Tensor, fill: Tensor | float = 0.0) -> Tensor:
    """``tensor``'s ``units`` unit slices along ``dim`` picked by ``index``; ``-1`` entries get ``fill``.

    Args:
        fill: a scalar, or one row per new unit (shaped like :func:`to_rows`' rows).
    """
    rows = to_rows(tensor, dim, units)
    index = index.to(rows.device)
    picked = rows[index.clamp(min=0)].clone()
    new = index < 0
    picked[new] = fill.to(picked) if isinstance(fill, Tensor) else fill
    return from_rows(picked, dim, tensor, units)
