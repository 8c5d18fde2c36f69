"""Small helpers shared by the operator modules: layer choice, seeded torch RNG, re-indexing layers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from evo.errors import NotApplicable
from evo.genome import Genome, LayerSpec, parse_weight_name

__all__ = ["layer_ok", "pick_layer", "reindex", "torch_generator"]


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A torch generator seeded from ``rng``: torch sampling stays reproducible from the operator's rng."""
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


def pick_layer(
    genome: Genome, rng: np.random.Generator, layer: int | None, who: str, allowed: Sequence[int] | None = None
) -> int:
    """``layer`` checked against ``allowed`` (default: the hidden layers), or one of them drawn with ``rng``."""
    allowed = list(genome.hidden_layers if allowed is None else allowed)
    if layer is None:
        if not allowed:
            raise NotApplicable(f"{who}: genome {genome} has no layer this operator can change")
        return int(rng.choice(allowed))
    if layer not in allowed:
        raise NotApplicable(f"{who}: layer must be one of {allowed} for genome {genome}, got {layer}")
    return layer


def layer_ok(allowed: Sequence[int], layer: int | None) -> bool:
    """Whether :func:`pick_layer` can pick ``layer`` (or, when None, any layer) among ``allowed``."""
    return bool(allowed) if layer is None else layer in allowed


def reindex(
    genome: Genome,
    layers: Sequence[LayerSpec],
    new_index: Callable[[int], int | None],
    overrides: dict[str, Tensor],
) -> Genome:
    """A genome with ``layers`` whose old layer ``i`` is now ``new_index(i)`` (None: gone).

    Weight names and skip edges are renamed accordingly; skips touching a gone
    layer, or that would join adjacent layers, are dropped. ``overrides`` may
    hold extra new entries already under their new names (e.g. a new layer);
    they win over renamed ones. The optimiser state follows the renamed weights;
    ``overrides`` start without any.
    """
    skips = {}
    for s, d in genome.skips:
        ns, nd = new_index(s), new_index(d)
        if ns is not None and nd is not None and nd - ns >= 2:
            skips[(s, d)] = (ns, nd)
    names: dict[str, str] = {}  # old weight name → new
    for name in genome.weights:
        parsed = parse_weight_name(name)
        if parsed.src is None:
            i = new_index(parsed.layer)
            if i is not None:
                names[name] = str(parsed._replace(layer=i))
        elif (edge := (parsed.src, parsed.layer)) in skips:
            ns, nd = skips[edge]
            names[name] = str(parsed._replace(src=ns, layer=nd))
    renamed = {new: genome.weights[old] for old, new in names.items()}
    state = {names[old]: entry for old, entry in genome.optim_state.items()
             if old in names and names[old] not in overrides}
    return genome.replace(layers=tuple(layers), skips=tuple(skips.values()), weights={**renamed, **overrides},
                          optim_state=state)
