"""Sparse rewiring with weight masks: SET and RigL.

* **SET** (Mocanu et al. 2018, "Scalable training of artificial neural networks
  with adaptive sparse connectivity"): Erdős–Rényi masks, density ∝
  (n_in + n_out)/(n_in·n_out); every interval drop the fraction ζ of active
  weights closest to zero and regrow as many at random; new weights are 0.
* **RigL** (Evci et al. 2020, "Rigging the Lottery"): drop by magnitude,
  regrow where |∂L/∂w| of the *dense* gradient is largest (new weights 0); the
  drop fraction decays as α/2·(1 + cos(π·t/T_end)) and rewiring stops at T_end.
* ``static``: a fixed random mask (the baseline both papers beat).

Densities per layer are ERK (Erdős–Rényi-Kernel: ∝ Σ dims / Π dims, conv
kernels included; layers that would exceed 1 are dense and the rest rescaled)
or uniform, with the requested overall density. Regrowth only picks
connections that were inactive before the drop, so the active count — the
density — stays constant. When units are born during sparse training their
connections are drawn at their tensor's current density
(:class:`evo.plasticity.state.PlasticNet`), so the overall density follows
the shape changes (it rises when small, dense ERK tensors grow).

Example:
    >>> d = layer_densities({"a": (100, 100), "b": (10, 100)}, 0.1, "erk")
    >>> round(d["b"], 3) > round(d["a"], 3)
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = ["drop_fraction", "layer_densities", "random_mask", "rewire"]


def layer_densities(shapes: Mapping[str, tuple[int, ...]], density: float, distribution: str) -> dict[str, float]:
    """Per-tensor densities whose parameter-weighted mean is ``density`` (ERK or uniform)."""
    if distribution == "uniform":
        return {name: density for name in shapes}
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: sum(shape) / sizes[name] for name, shape in shapes.items()}
    dense: set[str] = set()
    while True:
        budget = density * sum(sizes.values()) - sum(sizes[n] for n in dense)
        eps = budget / sum(raw[n] * sizes[n] for n in shapes if n not in dense)
        over = {n for n in shapes if n not in dense and eps * raw[n] > 1}
        if not over:
            return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}
        dense |= over


def random_mask(shape: tuple[int, ...], density: float, generator: torch.Generator) -> Tensor:
    """A boolean mask with exactly ``max(1, round(density·numel))`` active entries, placed at random."""
    numel = math.prod(shape)
    active = torch.randperm(numel, generator=generator)[: max(1, round(density * numel))]
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[active] = True
    return mask.reshape(shape)


def drop_fraction(method: str, alpha: float, step: int, end: int) -> float:
    """ζ for SET (constant); α/2·(1 + cos(π·t/T_end)) for RigL, 0 from ``end`` on."""
    if method == "set":
        return alpha
    return 0.0 if step >= end else alpha / 2 * (1 + math.cos(math.pi * step / end))


def rewire(
    weight: Tensor, mask: Tensor, fraction: float, grad: Tensor | None, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Drop ``fraction`` of the active weights with the smallest |w| and regrow as many inactive ones.

    Args:
        grad: the dense gradient: regrow where |grad| is largest (RigL); ``None``: at random (SET).

    Returns:
        The new mask and the boolean map of regrown connections (their weights must be set to 0).
    """
    flat_mask = mask.flatten()
    active = torch.nonzero(flat_mask).flatten()
    inactive = torch.nonzero(~flat_mask).flatten()
    count = min(round(fraction * len(active)), len(inactive))
    if count == 0:
        return mask, torch.zeros_like(mask)
    magnitude = weight.detach().flatten()[active].abs()
    dropped = active[torch.argsort(magnitude, stable=True)[:count]]
    if grad is None:
        grown = inactive[torch.randperm(len(inactive), generator=generator)[:count].to(inactive.device)]
    else:
        score = grad.detach().flatten()[inactive].abs()
        grown = inactive[torch.argsort(score, descending=True, stable=True)[:count]]
    new_mask = flat_mask.clone()
    new_mask[dropped] = False
    new_mask[grown] = True
    born = torch.zeros_like(flat_mask)
    born[grown] = True
    return new_mask.reshape(mask.shape), born.reshape(mask.shape)
