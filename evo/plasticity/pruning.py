"""Apoptosis during training: remove the least important *mature* units.

Importance is :func:`evo.operators.importance.unit_importance` (magnitude, Han
et al. 2015; mean activation; first-order Taylor, Molchanov et al. 2017);
removal and bias compensation are :func:`evo.operators.apoptosis.compensate_bias`
and :func:`evo.surgery.gather_units`. What this adds is the **maturity
period**: units younger than ``maturity`` steps are never candidates, so a
newborn unit (whose fan-out starts at zero) is not killed before it had a
chance to learn — the developmental window of biological neurogenesis.

Example:
    >>> from evo.genome import Genome, parse_weight_name
    >>> g = Genome.mlp((4,), hidden=(6,), output_size=2)
    >>> select_victims(torch.tensor([3., 1., 2., 0., 5., 4.]), torch.tensor([9., 9., 9., 0., 9., 9.]),
    ...                PruningConfig(fraction=0.4, maturity=5), max_remove=5).tolist()
    [1, 2]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from evo.genome import Genome, parse_weight_name
from evo.operators.apoptosis import compensate_bias
from evo.operators.importance import unit_importance
from evo.plasticity.config import PruningConfig
from evo.surgery import gather_units

__all__ = ["prune_mature", "select_victims"]


def select_victims(scores: Tensor, age: Tensor, config: PruningConfig, max_remove: int) -> Tensor:
    """Indices (ascending) of the units to remove: the least important mature ones.

    Args:
        scores: importance per unit (higher = keep).
        age: steps since each unit's birth.
        max_remove: at most this many (the width bound).

    Returns:
        ``max(1, ⌊fraction·mature⌋)`` units (capped by ``max_remove``); with a
        ``threshold``, only those whose importance relative to the layer's
        largest is below it.
    """
    mature = torch.nonzero(age >= config.maturity).flatten()
    if len(mature) == 0 or max_remove < 1:
        return mature[:0]
    count = min(max(1, math.floor(config.fraction * len(mature))), max_remove)
    order = mature[torch.argsort(scores[mature], stable=True)][:count]
    if config.threshold is not None:
        top = scores.max()
        relative = scores[order] / top if top > 0 else torch.zeros(len(order))
        order = order[relative < config.threshold]
    return order.sort().values


def prune_mature(
    raw: Genome,
    effective: Genome,
    layer: int,
    age: Tensor,
    config: PruningConfig,
    min_width: int,
    data: tuple[Tensor, Tensor],
) -> tuple[Genome, Tensor] | None:
    """Remove the least important mature units of ``layer``.

    Args:
        raw: the genome whose units are gathered (DropIn scales kept aside by the caller).
        effective: the same network with the scales folded in: importance and
            compensation see what the network actually computes.

    Returns:
        The pruned raw genome and the kept old indices, or ``None`` when nothing may go.
    """
    width = raw.layers[layer].width
    scores = unit_importance(effective, layer, config.criterion, data)
    victims = select_victims(scores, age, config, max_remove=width - min_width)
    if len(victims) == 0:
        return None
    if config.bias_compensation:
        compensated = compensate_bias(effective, layer, victims, data)
        biases = {k: v for k, v in compensated.weights.items() if parse_weight_name(k).tensor == "bias"}
        raw = raw.with_weights({**raw.weights, **biases})
    keep = torch.tensor([j for j in range(width) if j not in set(victims.tolist())], dtype=torch.long)
    return gather_units(raw, layer, keep), keep
