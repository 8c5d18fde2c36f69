"""DropIn (neurogenesis): grow a network while keeping what it computes.

* :func:`widen` — add units to a hidden layer: ``zero`` (random fan-in, zero
  fan-out), ``split`` (Net2WiderNet, Chen, Goodfellow & Shlens 2016, "Net2Net:
  Accelerating Learning via Knowledge Transfer") or ``random``.
* :func:`deepen` — insert an identity-initialised layer (Net2DeeperNet), also the
  first hidden layer of a genome that has none (over a flat input).
* :func:`add_skip` / :func:`remove_skip` — a zero-initialised skip projection.

Every dependent weight (the next layer, across the conv→linear flatten, and
skip projections in and out) is fixed through :func:`evo.surgery.edit_units`.
Optimiser state (:attr:`~evo.genome.Genome.optim_state`) goes the same way:
old units keep theirs, new units (split copies too), a new layer and a new
skip start at zero, the layers after an inserted one keep theirs.

Example:
    >>> import numpy as np
    >>> from evo.genome import Genome
    >>> g = Genome.mlp((4,), hidden=(3,), output_size=2)
    >>> widen(g, np.random.default_rng(0), layer=0, k=2, init="split").layers[0].width
    5
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from evo.errors import NotApplicable
from evo.genome import ACTIVATIONS, Genome, LayerKind, LayerSpec, init_uniform, parse_weight_name, skip_name, weight_name
from evo.operators._base import Preservation
from evo.operators._common import layer_ok, pick_layer, reindex, torch_generator
from evo.operators._declare import LAYER, choice, integer, number, register
from evo.surgery import UnitParam, edit_units

__all__ = ["DEEPEN_INITS", "WIDEN_INITS", "add_skip", "candidate_skips", "deepen", "remove_skip", "widen"]

WIDEN_INITS = ("zero", "split", "random")
DEEPEN_INITS = ("identity", "random")
#: the rules of a skip edge's ends (either may be left to the operator).
_EDGE = {"src": integer(0, optional=True), "dst": integer(2, optional=True)}


@register(
    "widen",
    {"layer": LAYER, "k": integer(1), "init": choice(WIDEN_INITS), "noise": number(0.0, float("inf"), "[)")},
    preserves=Preservation.CONDITIONAL,
    note="exact for init zero/split without noise (in a layer without a layer norm); random is not",
    applicable=lambda g, p: layer_ok(g.hidden_layers, p["layer"]),
    exact=lambda p: p["init"] != "random" and p["noise"] == 0,
)
def widen(
    genome: Genome,
    rng: np.random.Generator,
    layer: int | None = None,
    k: int = 1,
    init: str = "zero",
    noise: float = 0.0,
) -> Genome:
    """Add ``k`` units to hidden layer ``layer`` (drawn with ``rng`` when None).

    Args:
        init: ``zero`` — new units get random fan-in and zero fan-out (exactly
            preserving); ``split`` — Net2WiderNet: new unit j copies the fan-in
            of a random unit g(j), and every copy of a unit (the original too)
            gets its fan-out divided by the number of copies (exactly
            preserving); ``random`` — random fan-in and fan-out (not preserving).
            A new unit copies its source's norm entries (affine and running
            statistics). A ``layer`` norm normalises over all channels, so
            there no growth is exact.
        noise: std of Gaussian noise added to the new units' fan-in weights
            (breaks the symmetry of split copies; exactness is then lost).
    """
    layer = pick_layer(genome, rng, layer, "widen")
    gen = torch_generator(rng)
    width = genome.layers[layer].width
    source = torch.as_tensor(rng.integers(0, width, size=k), dtype=torch.long)  # Net2Net's g(j)
    index = torch.cat([torch.arange(width), source])
    copies = torch.bincount(index, minlength=width).to(torch.float32)

    def edit(param: UnitParam, rows: Tensor) -> Tensor:
        if param.fan == "norm":  # a new unit normalises as its source does (for split: the same statistics)
            return rows[index]
        if init == "split":
            new = rows[source] if param.fan == "in" else rows[source] / copies[source, None]
            old = rows if param.fan == "in" else rows / copies[:, None]
        else:
            old = rows
            random = param.fan == "in" or init == "random"
            new = init_uniform((k, rows.shape[1]), genome.fan_in(param.name), gen) if random else rows.new_zeros(k, rows.shape[1])
        if noise > 0 and param.fan == "in" and parse_weight_name(param.name).tensor == "weight":
            new = new + noise * torch.randn(new.shape, generator=gen)
        return torch.cat([old, new])

    return edit_units(genome, layer, edit, torch.cat([torch.arange(width), torch.full((k,), -1)]))


@register(
    "deepen",
    {"position": integer(1, optional=True), "init": choice(DEEPEN_INITS), "activation": choice(["same", *ACTIVATIONS])},
    preserves=Preservation.CONDITIONAL,
    note="exact for identity init after relu/identity with activation same (over the inputs: identity); "
    "approximate otherwise",
    applicable=lambda g, p: layer_ok(g.hidden_layers, None if p["position"] is None else p["position"] - 1)
    or (p["position"] is None and _first_over_inputs(g)),
)
def deepen(
    genome: Genome,
    rng: np.random.Generator,
    position: int | None = None,
    init: str = "identity",
    activation: str = "same",
) -> Genome:
    """Insert a layer at index ``position`` (after hidden layer ``position - 1``), of its kind and width.

    A genome with no hidden layer and a flat input gets its first one (``position`` None): a Linear
    layer over the inputs, as wide as the input has features, so that growth can start from the
    smallest network (NEAT's minimal start). The input counts as an identity-activated layer:
    ``same`` means identity there, which preserves the function exactly (a nonlinearity such as
    ``tanh`` is what lets the grown network compute more than its linear parent). Over an image or
    signal input the first layer could as well be a conv, so there it does not apply.

    ``identity`` init (Net2DeeperNet): Linear — identity weight, zero bias; Conv
    — identity kernel (centre 1), the preceding layer's kernel size, no pooling.
    The new layer has no norm (:func:`evo.operators.norms.add_norm` can add one).
    Exactly preserving when the new activation is idempotent and equals the
    preceding one (relu, identity: σ(σ(x)) = σ(x)); approximate otherwise.

    Args:
        activation: ``same`` (the preceding layer's; identity over the inputs) or a key of :data:`ACTIVATIONS`.
    """
    if position is None and _first_over_inputs(genome):
        position, prev = 0, LayerSpec(LayerKind.LINEAR, genome.input_shape[0], "identity")
    elif position is None and not genome.hidden_layers:
        raise NotApplicable(f"deepen: genome {genome} has no hidden layer and a {genome.input_shape} input, "
                            "not a flat one: its first layer may be a conv or a dense one; set evolution.init.channels or hidden")
    else:
        position = 1 + pick_layer(genome, rng, None if position is None else position - 1, "deepen (position - 1)")
        prev = genome.layers[position - 1]
    spec = dataclasses.replace(
        prev, dropout=0.0, pool=1, norm=None, activation=prev.activation if activation == "same" else activation
    )
    kernel = (spec.kernel_size,) * genome.rank if spec.kind is LayerKind.CONV else ()
    shape = (spec.width, spec.width, *kernel)
    if init == "identity":
        weight = torch.zeros(shape)
        centre = tuple(k // 2 for k in kernel)
        for c in range(spec.width):
            weight[(c, c, *centre)] = 1.0
        bias = torch.zeros(spec.width)
    else:
        gen, fan = torch_generator(rng), spec.width * math.prod(kernel)
        weight, bias = init_uniform(shape, fan, gen), init_uniform((spec.width,), fan, gen)
    layers = [*genome.layers[:position], spec, *genome.layers[position:]]
    new = {weight_name(position): weight, weight_name(position, "bias"): bias}
    return reindex(genome, layers, lambda i: i if i < position else i + 1, new)


def _first_over_inputs(genome: Genome) -> bool:
    """Whether :func:`deepen` inserts ``genome``'s first hidden layer over its inputs: it has none, and a flat input."""
    return not genome.hidden_layers and len(genome.input_shape) == 1


def candidate_skips(genome: Genome) -> list[tuple[int, int]]:
    """Every skip edge ``genome`` could gain (valid by the genome's own rules, not present yet)."""
    edges = []
    for s in range(genome.num_layers):
        for d in range(s + 2, genome.num_layers):
            if (s, d) in genome.skips:
                continue
            try:
                genome.replace(skips=(*genome.skips, (s, d)), weights={})
            except ValueError:
                continue
            edges.append((s, d))
    return edges


def _matching(edges: Sequence[tuple[int, int]], src: int | None, dst: int | None) -> list[tuple[int, int]]:
    """The ``edges`` with source ``src`` and destination ``dst`` (None: any)."""
    return [(s, d) for s, d in edges if src in (None, s) and dst in (None, d)]


@register(
    "add_skip",
    _EDGE,
    preserves=Preservation.YES,
    note="zero-initialised projection",
    applicable=lambda g, p: bool(_matching(candidate_skips(g), p["src"], p["dst"])),
)
def add_skip(genome: Genome, rng: np.random.Generator, src: int | None = None, dst: int | None = None) -> Genome:
    """Add a zero-initialised skip projection ``h_src → z_dst`` (exactly preserving).

    A random valid edge when ``src``/``dst`` are not given (a given one narrows the choice).
    """
    edges = _matching(candidate_skips(genome), src, dst)
    if not edges:
        raise NotApplicable(f"add_skip: no valid new skip edge with src={src}, dst={dst} in genome {genome}")
    s, d = edges[int(rng.integers(len(edges)))]
    grown = genome.replace(skips=(*genome.skips, (s, d)), weights={})
    weights = {**genome.weights, skip_name(s, d): torch.zeros(grown.param_shapes()[skip_name(s, d)])}
    return grown.replace(weights=weights, optim_state=genome.optim_state)


@register(
    "remove_skip",
    _EDGE,
    preserves=Preservation.NO,
    note="exact only if the projection was zero",
    applicable=lambda g, p: bool(_matching(g.skips, p["src"], p["dst"])),
)
def remove_skip(genome: Genome, rng: np.random.Generator, src: int | None = None, dst: int | None = None) -> Genome:
    """Remove a skip edge (a random one when not given); preserving only if its projection was zero."""
    edges = _matching(genome.skips, src, dst)
    if not edges:
        raise NotApplicable(f"remove_skip: no skip edge with src={src}, dst={dst} in genome {genome}")
    edge = edges[int(rng.integers(len(edges)))]
    weights = {k: v for k, v in genome.weights.items() if k != skip_name(*edge)}
    return genome.replace(skips=tuple(e for e in genome.skips if e != edge), weights=weights)
