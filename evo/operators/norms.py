"""Normalisation as a gene: insert or remove a layer's norm while keeping what the network computes.

* :func:`add_norm` — **normalisation as a morphism**: a BatchNorm inserted with
  running statistics μ, σ² of the layer's pre-activation ``z`` on a calibration
  batch and affine γ = √(σ² + ε), β = μ computes
  ``(z − μ)/√(σ² + ε)·γ + β = z`` in eval mode: exactly the identity at
  insertion, and close to it in training mode while batches look like the
  calibration one (deepening with normalisation, as Net2DeeperNet notes
  BatchNorm needs). A ``layer`` norm (GroupNorm with one group) normalises
  each sample by its own statistics, which no constant affine undoes: its
  γ, β are the per-channel least-squares fit of ``z`` from the normalised
  ``z`` on the calibration batch (approximate).
* :func:`remove_norm` / :func:`fold_norm` — a batch norm in eval mode is the
  affine map ``a·z + c`` (a = γ/√(σ² + ε), c = β − a·μ), folded into the
  layer's weights, bias and incoming skip projections (exact in eval mode); a
  layer norm is dropped (approximate).

Optimiser state (:attr:`~evo.genome.Genome.optim_state`): new norm tensors start
at zero; the tensors a folded batch norm rescales start afresh (their moments
describe gradients through the norm); the rest keep their own.

Example:
    >>> import numpy as np
    >>> from evo.genome import Genome
    >>> g = add_norm(Genome.mlp((4,), hidden=(3,), output_size=2), np.random.default_rng(0), layer=0)
    >>> str(g)
    '4→3→bn→relu→2'
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evo.genome import NORM_EPS, NORMS, Genome, norm_init, norm_name, norm_tensors, weight_name
from evo.operators._base import Preservation
from evo.operators._common import layer_ok, pick_layer
from evo.operators._declare import LAYER, choice, register
from evo.operators.importance import check_data
from evo.surgery import from_rows, to_rows, unit_params

__all__ = ["add_norm", "fold_norm", "remove_norm"]


@register(
    "add_norm",
    {"layer": LAYER, "kind": choice(NORMS)},
    preserves=Preservation.CONDITIONAL,
    note="batch: exact in eval mode (statistics of the calibration batch, γ = √(σ²+ε), β = μ); "
    "layer: least-squares fit, approximate",
    applicable=lambda g, p: layer_ok(_unnormed(g), p["layer"]),
    exact=lambda p: p["kind"] == "batch",
)
def add_norm(
    genome: Genome,
    rng: np.random.Generator,
    layer: int | None = None,
    kind: str = "batch",
    data: tuple[Tensor, Tensor] | None = None,
) -> Genome:
    """Give hidden layer ``layer`` (a random one without a norm when None) a norm of ``kind``.

    Args:
        kind: one of :data:`evo.genome.NORMS`.
        data: a calibration batch ``(x, y)`` for the statistics of ``z``. Without it a batch
            norm starts from μ = 0, σ² = 1 (still the identity in eval mode) and a layer norm
            from γ = 1, β = 0.
    """
    layer = pick_layer(genome, rng, layer, "add_norm", allowed=_unnormed(genome))
    width = genome.layers[layer].width
    fitted = {name: norm_init(name, width) for name in norm_tensors(kind)}
    normed = _with_norm(genome, layer, kind, {**genome.weights, **_named(layer, fitted)})
    if data is not None:
        z = _norm_input(normed, layer, check_data(genome, data, "add_norm")[0])
        if kind == "batch":
            mean, var = _channels(z).mean(dim=1), _channels(z).var(dim=1, unbiased=False)
            fitted = {"running_mean": mean, "running_var": var}
        else:
            fitted = _least_squares(_channels(z), _channels(F.group_norm(z, 1, eps=NORM_EPS)))
    if kind == "batch":
        fitted |= {"weight": torch.sqrt(fitted["running_var"] + NORM_EPS), "bias": fitted["running_mean"]}
    return normed.with_weights({**normed.weights, **_named(layer, fitted)})


@register(
    "remove_norm",
    {"layer": LAYER},
    preserves=Preservation.CONDITIONAL,
    note="a batch norm is folded into the layer's weights (exact in eval mode); a layer norm is dropped (approximate)",
    applicable=lambda g, p: layer_ok(_normed(g), p["layer"]),
)
def remove_norm(genome: Genome, rng: np.random.Generator, layer: int | None = None) -> Genome:
    """Remove the norm of hidden layer ``layer`` (a random layer with one when None); see :func:`fold_norm`."""
    return fold_norm(genome, pick_layer(genome, rng, layer, "remove_norm", allowed=_normed(genome)))


def fold_norm(genome: Genome, layer: int) -> Genome:
    """``layer`` without its norm; a batch norm's eval-mode affine ``a·z + c`` is folded into what makes ``z``.

    A genome whose ``layer`` has no norm is returned unchanged.
    """
    kind = genome.layers[layer].norm
    if kind is None:
        return genome
    names = {name: norm_name(layer, name) for name in norm_tensors(kind)}
    weights = {k: v for k, v in genome.weights.items() if k not in names.values()}
    if kind == "batch":
        stats = {name: genome.weights[full] for name, full in names.items()}
        scale = stats["weight"] / torch.sqrt(stats["running_var"] + NORM_EPS)
        shift = stats["bias"] - scale * stats["running_mean"]
        width = genome.layers[layer].width
        rescaled = [p for p in unit_params(genome, layer) if p.fan == "in"]  # weight, bias, skips into the layer
        for param in rescaled:
            rows = to_rows(genome.weights[param.name], param.dim, width) * scale[:, None]
            weights[param.name] = from_rows(rows, param.dim, genome.weights[param.name], width)
        weights[weight_name(layer, "bias")] = weights[weight_name(layer, "bias")] + shift
        genome = genome.without_state([p.name for p in rescaled])  # moments of gradients through the norm
    return _with_norm(genome, layer, None, weights)


def _unnormed(genome: Genome) -> list[int]:
    """The hidden layers that have no norm."""
    return [i for i in genome.hidden_layers if genome.layers[i].norm is None]


def _normed(genome: Genome) -> list[int]:
    """The hidden layers that have a norm."""
    return [i for i in genome.hidden_layers if genome.layers[i].norm is not None]


def _with_norm(genome: Genome, layer: int, kind: str | None, weights: dict[str, Tensor]) -> Genome:
    layers = list(genome.layers)
    layers[layer] = dataclasses.replace(layers[layer], norm=kind)
    return genome.replace(layers=tuple(layers), weights=weights)


def _named(layer: int, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {norm_name(layer, name): value for name, value in tensors.items()}


def _norm_input(genome: Genome, layer: int, x: Tensor) -> Tensor:
    """The input ``z`` of ``layer``'s norm module on batch ``x`` (eval mode, no grad)."""
    net = genome.to_module().eval()
    captured: list[Tensor] = []

    def keep(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        captured.append(inputs[0].detach())

    handle = net.norms[str(layer)].register_forward_pre_hook(keep)
    try:
        with torch.no_grad():
            net(x)
    finally:
        handle.remove()
    return captured[0]


def _channels(z: Tensor) -> Tensor:
    """``(n, C, …)`` as ``(C, n·positions)``: one row of samples per channel."""
    return z.transpose(0, 1).reshape(z.shape[1], -1)


def _least_squares(z: Tensor, n: Tensor) -> dict[str, Tensor]:
    """Per channel, the γ, β minimising Σ (γ·n + β − z)² (γ = 1 where n is constant)."""
    n_mean, z_mean = n.mean(dim=1), z.mean(dim=1)
    n_var = n.var(dim=1, unbiased=False)
    cov = ((n - n_mean[:, None]) * (z - z_mean[:, None])).mean(dim=1)
    gamma = torch.where(n_var > 0, cov / n_var.clamp(min=1e-12), torch.ones_like(n_var))
    return {"weight": gamma, "bias": z_mean - gamma * n_mean}
