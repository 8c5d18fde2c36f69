"""Spatial reduction as genes: the dense head's global average pooling, and each conv block's pool factor.

* :func:`add_gap` — the head reads channel means instead of every position
  (Lin, Chen & Yan 2014, "Network in Network"): the first Linear layer's
  weight for channel c becomes the sum of its per-position weights, exact when
  the last conv's output is constant over positions, approximate otherwise;
  the head shrinks by the number of positions.
* :func:`remove_gap` — the inverse, exactly preserving: each position gets
  the channel's weight divided by the number of positions (a mean is a sum
  with weights 1/P).
* :func:`set_pool` — change a conv block's max-pool factor (not preserving).
  Where the head flattens, its per-position weights are resampled to the new
  positions (area interpolation, rescaled so a constant feature map keeps its
  contribution).

Optimiser state (:attr:`~evo.genome.Genome.optim_state`): a head whose shape
changes has no unit map for it and starts afresh; every other tensor keeps its own.

Example:
    >>> import numpy as np
    >>> from evo.genome import Genome
    >>> g = Genome.cnn((1, 40), channels=(4,), hidden=(), output_size=3, pool=2)
    >>> add_gap(g, np.random.default_rng(0)).num_params() < g.num_params()
    True
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from evo.errors import NotApplicable
from evo.genome import Genome, LayerKind, LayerSpec, weight_name
from evo.operators._base import Preservation
from evo.operators._common import layer_ok, pick_layer
from evo.operators._declare import LAYER, integer, register

__all__ = ["POOL_FACTORS", "add_gap", "pool_choices", "pool_layers", "remove_gap", "set_pool"]

#: pool factors :func:`set_pool` draws from when none is given.
POOL_FACTORS = (1, 2, 3, 4)


@register(
    "add_gap",
    preserves=Preservation.NO,
    note="head weights summed over positions: exact only for features constant over positions",
    applicable=lambda g, _p: not g.gap and g.flatten_at > 0,
)
def add_gap(genome: Genome, rng: np.random.Generator) -> Genome:
    """Switch the head from flattening to global average pooling (approximate; see the module docstring)."""
    if genome.gap or genome.flatten_at == 0:
        raise NotApplicable(f"add_gap: genome {genome} has no flattened conv output to pool")
    head = weight_name(genome.flatten_at)
    w = genome.weights[head]
    channels = genome.layers[genome.flatten_at - 1].width
    pooled = w.reshape(w.shape[0], channels, -1).sum(dim=2)
    return genome.replace(gap=True, weights={**genome.weights, head: pooled})


@register("remove_gap", preserves=Preservation.YES, note="head weights spread over positions", applicable=lambda g, _p: g.gap)
def remove_gap(genome: Genome, rng: np.random.Generator) -> Genome:
    """Switch the head from global average pooling back to flattening (exactly preserving)."""
    if not genome.gap:
        raise NotApplicable(f"remove_gap: genome {genome} has no global average pooling")
    head = weight_name(genome.flatten_at)
    w = genome.weights[head]
    positions = math.prod(genome.spatial(genome.flatten_at - 1))
    spread = (w[:, :, None] / positions).expand(-1, -1, positions).reshape(w.shape[0], -1)
    return genome.replace(gap=False, weights={**genome.weights, head: spread})


def pool_choices(genome: Genome, layer: int) -> list[int]:
    """The factors of :data:`POOL_FACTORS` conv ``layer`` could change to (valid genome, not its current one)."""
    if genome.layers[layer].kind is not LayerKind.CONV:
        return []
    return [p for p in POOL_FACTORS if p != genome.layers[layer].pool and _valid(genome, layer, p)]


def pool_layers(genome: Genome, pool: int | None = None) -> list[int]:
    """Conv layers whose pool factor can change (to ``pool``, or to anything when None)."""
    return [i for i in range(genome.num_layers) if (pool_choices(genome, i) if pool is None else pool in pool_choices(genome, i))]


@register(
    "set_pool",
    {"layer": LAYER, "pool": integer(1, optional=True)},
    preserves=Preservation.NO,
    note="a conv block's max-pool factor (null: another of 1-4); a flattening head is resampled",
    applicable=lambda g, p: layer_ok(pool_layers(g, p["pool"]), p["layer"]),
)
def set_pool(genome: Genome, rng: np.random.Generator, layer: int | None = None, pool: int | None = None) -> Genome:
    """Set conv ``layer``'s max-pool factor to ``pool`` (drawn from :func:`pool_choices` when None).

    ``layer`` None: a random conv layer with a valid choice.
    """
    layer = pick_layer(genome, rng, layer, "set_pool", allowed=pool_layers(genome, pool))
    pool = int(rng.choice(pool_choices(genome, layer))) if pool is None else pool
    return genome.with_layer(layer, pool=pool) if genome.gap else _resized_head(genome, layer, pool)


def _valid(genome: Genome, layer: int, pool: int) -> bool:
    try:
        genome.replace(layers=_with_pool(genome, layer, pool), weights={})
    except ValueError:
        return False
    return True


def _with_pool(genome: Genome, layer: int, pool: int) -> tuple[LayerSpec, ...]:
    layers = list(genome.layers)
    layers[layer] = dataclasses.replace(layers[layer], pool=pool)
    return tuple(layers)


def _resized_head(genome: Genome, layer: int, pool: int) -> Genome:
    """``layer`` pooling by ``pool``, the flattening head's per-position weights resampled to the new positions."""
    skeleton = genome.replace(layers=_with_pool(genome, layer, pool), weights={})
    head, last = genome.flatten_at, genome.flatten_at - 1
    w = genome.weights[weight_name(head)]
    old, new = genome.spatial(last), skeleton.spatial(last)
    blocks = w.reshape(w.shape[0], genome.layers[last].width, *old)
    resampled: Tensor = F.interpolate(blocks, size=new, mode="area") * (math.prod(old) / math.prod(new))
    weights = {**genome.weights, weight_name(head): resampled.reshape(w.shape[0], -1)}
    return skeleton.replace(weights=weights, optim_state=genome.optim_state)  # a head of a new shape loses its own
