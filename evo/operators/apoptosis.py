"""Apoptosis: remove neurons, layers or activity while keeping as much of the function as possible.

* :func:`prune_neurons` — remove the least important units of a layer
  (importance from :mod:`evo.operators.importance`: magnitude, Han et al. 2015;
  mean activation; first-order Taylor, Molchanov et al. 2017) with **bias
  compensation**: the removed units' mean contribution on a calibration batch
  is folded into the biases they fed.
* :func:`remove_layer` — drop a hidden layer, folding its weights into the next.
* :func:`set_dropout` — dropout, the transient form of apoptosis.

Optimiser state (:attr:`~evo.genome.Genome.optim_state`): surviving units keep
theirs (the removed units' is dropped); a removed layer's folded successor has
no unit map and starts afresh, the other layers keep theirs.

Example:
    >>> import numpy as np
    >>> from evo.genome import Genome
    >>> g = Genome.mlp((4,), hidden=(6,), output_size=2)
    >>> prune_neurons(g, np.random.default_rng(0), layer=0, amount=0.5).layers[0].width
    3
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from evo.errors import NotApplicable
from evo.genome import Genome, LayerKind, parse_weight_name, skip_name, weight_name
from evo.operators._base import Preservation
from evo.operators._common import layer_ok, pick_layer, reindex
from evo.operators._declare import FLAG, LAYER, Rule, choice, is_int, number, register
from evo.operators.importance import CRITERIA, check_data, layer_outputs, unit_importance
from evo.operators.norms import fold_norm
from evo.surgery import gather_units, unit_params

__all__ = ["compensate_bias", "prunable_layers", "prune_count", "prune_neurons", "removable_layers", "remove_layer", "set_dropout"]


#: a count of units, or a fraction of a layer's width.
_AMOUNT = Rule("an int >= 1 or a float in (0, 1)", lambda v: (is_int(v) and v >= 1) or (isinstance(v, float) and 0 < v < 1))


def prune_count(width: int, amount: int | float) -> int:
    """Units to remove from a layer of ``width``: ``amount`` itself (int) or that fraction of it (float)."""
    count = max(1, math.floor(amount * width)) if isinstance(amount, float) else amount
    if not 1 <= count <= width - 1:
        raise NotApplicable(f"prune_neurons: amount must remove 1..{width - 1} units of a layer of width {width}, got {amount}")
    return count


def prunable_layers(genome: Genome, amount: int | float) -> list[int]:
    """Hidden layers that can lose ``amount`` units (a fraction always removes at least one)."""
    need = amount if isinstance(amount, int) else 1
    return [i for i in genome.hidden_layers if 1 <= need <= genome.layers[i].width - 1]


@register(
    "prune_neurons",
    {"layer": LAYER, "amount": _AMOUNT, "importance": choice(CRITERIA), "compensate": FLAG},
    preserves=Preservation.NO,
    note="exact only for units with zero fan-out; bias compensation keeps their mean contribution",
    applicable=lambda g, p: layer_ok(prunable_layers(g, p["amount"]), p["layer"]),
)
def prune_neurons(
    genome: Genome,
    rng: np.random.Generator,
    layer: int | None = None,
    amount: int | float = 1,
    importance: str = "l1",
    compensate: bool = True,
    data: tuple[Tensor, Tensor] | None = None,
) -> Genome:
    """Remove the ``amount`` least important units of ``layer`` (a random layer that can spare them when None).

    Args:
        amount: a count (int ≥ 1) or a fraction of the width (float in (0, 1));
            the last unit of a layer is never removed.
        importance: a criterion of :func:`unit_importance` (ties: lower index pruned first).
        compensate: fold the removed units' mean contribution into the
            biases they fed (:func:`compensate_bias`). Needs ``data``; without
            it compensation is skipped.
        data: a calibration batch ``(x, y)``.
    """
    if layer is None:
        layer = pick_layer(genome, rng, None, "prune_neurons", allowed=prunable_layers(genome, amount))
    layer = pick_layer(genome, rng, layer, "prune_neurons")
    count = prune_count(genome.layers[layer].width, amount)
    scores = unit_importance(genome, layer, importance, data)
    order = torch.argsort(scores, stable=True)
    removed, keep = order[:count], order[count:].sort().values
    if compensate and data is not None:
        genome = compensate_bias(genome, layer, removed, data)
    return gather_units(genome, layer, keep)


def compensate_bias(genome: Genome, layer: int, removed: Tensor, data: tuple[Tensor, Tensor]) -> Genome:
    """Add each removed unit's mean contribution ``W[:, j]·E[h_j]`` to the biases it feeds.

    E[h] is taken per unit *and position* over the batch, and the consumer's
    bias moves by the spatial mean of what it received from the removed units:
    exact in expectation for Linear consumers (including the conv→linear
    flatten, per position) and 1×1 skip projections; for a k×k conv consumer it
    is the best constant (least squares) — image borders see fewer kernel taps.
    Consumers: the next layer and the layers that skip projections out of
    ``layer`` feed (those have no bias of their own).
    """
    x, _ = check_data(genome, data, "prune_neurons")
    mean = layer_outputs(genome, x, [layer])[layer].mean(dim=0)  # (C,) or (C, H, W)
    mask = torch.zeros(genome.layers[layer].width)
    mask[removed] = 1.0
    lost = mean * mask.reshape(-1, *[1] * (mean.dim() - 1))
    weights = dict(genome.weights)
    for param in unit_params(genome, layer):
        if param.fan != "out":
            continue
        w = genome.weights[param.name]
        consumer = parse_weight_name(param.name).layer  # the next layer, or the skip's destination
        if genome.gap and consumer == genome.flatten_at:  # the head reads the channel means
            delta = w @ lost.flatten(1).mean(dim=1)
        elif w.dim() > 2:
            conv = F.conv1d if w.dim() == 3 else F.conv2d
            delta = conv(lost[None], w, padding=w.shape[-1] // 2).flatten(2).mean(dim=(0, 2))
        else:
            delta = w @ lost.flatten()
        weights[weight_name(consumer, "bias")] = weights[weight_name(consumer, "bias")] + delta
    return genome.with_weights(weights)


def removable_layers(genome: Genome) -> list[int]:
    """Hidden layers :func:`remove_layer` can drop: never the last hidden one; conv only if shape-neutral
    (and not the last conv of a genome with gap, whose head pools the convs' output)."""
    if len(genome.hidden_layers) < 2:
        return []
    last_conv = genome.gap and genome.flatten_at == 1
    return [
        i
        for i in genome.hidden_layers
        if genome.layers[i].kind is LayerKind.LINEAR
        or (genome.layers[i].pool == 1 and genome.in_width(i) == genome.layers[i].width and not last_conv)
    ]


@register(
    "remove_layer",
    {"layer": LAYER},
    preserves=Preservation.CONDITIONAL,
    note="exact for a linear layer with identity activation; approximate otherwise",
    applicable=lambda g, p: layer_ok(removable_layers(g), p["layer"]),
)
def remove_layer(genome: Genome, rng: np.random.Generator, layer: int | None = None) -> Genome:
    """Remove hidden layer ``layer`` (a random removable one when None); skips touching it are dropped.

    Linear: the next layer gets ``W₍ₗ₊₁₎·Wₗ`` and bias ``W₍ₗ₊₁₎·bₗ + b₍ₗ₊₁₎`` —
    exact when the removed layer's activation is the identity (and its dropout
    is off, and its norm, if any, is a batch norm: it is folded in first with
    :func:`evo.operators.norms.fold_norm`), approximate otherwise; a skip
    ``l-1 → l+1`` is folded in as well. Conv: only when its input has as many
    channels as its output and it does not pool; the next layer then reads the
    removed layer's input unchanged (not preserving). The last remaining
    hidden layer is never removed, so growth operators stay applicable.
    """
    layer = pick_layer(genome, rng, layer, "remove_layer", allowed=removable_layers(genome))
    overrides: dict[str, Tensor] = {}
    if genome.layers[layer].kind is LayerKind.LINEAR:
        genome = fold_norm(genome, layer)
        w, b = genome.weights[weight_name(layer)], genome.weights[weight_name(layer, "bias")]
        w_next, b_next = genome.weights[weight_name(layer + 1)], genome.weights[weight_name(layer + 1, "bias")]
        folded = w_next @ w
        if (layer - 1, layer + 1) in genome.skips:  # that skip now joins adjacent layers: fold it in too
            folded = folded + genome.weights[skip_name(layer - 1, layer + 1)]
        overrides = {weight_name(layer): folded, weight_name(layer, "bias"): w_next @ b + b_next}
    layers = [spec for i, spec in enumerate(genome.layers) if i != layer]
    return reindex(genome, layers, lambda i: None if i == layer else i - (i > layer), overrides)


@register(
    "set_dropout",
    {"layer": LAYER, "p": number(0.0, 1.0, "[)")},
    preserves=Preservation.YES,
    note="at inference (dropout is off in eval mode)",
    applicable=lambda g, p: layer_ok(g.hidden_layers, p["layer"]),
)
def set_dropout(genome: Genome, rng: np.random.Generator, layer: int | None = None, p: float = 0.1) -> Genome:
    """Set hidden layer ``layer``'s dropout rate to ``p`` (a random hidden layer when None).

    Preserves the function at inference (dropout is off in eval mode).
    """
    layer = pick_layer(genome, rng, layer, "set_dropout")
    return genome.with_layer(layer, dropout=p)
