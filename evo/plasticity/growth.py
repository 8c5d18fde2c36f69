"""Growth during training: GradMax and the DropIn inits of :func:`evo.operators.dropin.widen`.

**GradMax** (Evci et al. 2022, "GradMax: Growing Neural Networks using Gradient
Information"): new units of layer l get zero fan-in, so they compute σ(0) = 0
and the function is preserved, and a fan-out U chosen to maximise the gradient
norm of that zero fan-in. That gradient is Uᵀ·M with
M = E[∂L/∂z₍ₗ₊₁₎ · h₍ₗ₋₁₎ᵀ] (times σ'(0)), so under ‖U‖_F = c the best U holds
the top-k left singular vectors of M, scaled to norm c.

Two PyTorch details: ReLU's derivative at 0 is 0, so a zero-fan-in ReLU unit
would never learn (the paper assumes σ'(0) = 1); such units get a tiny
positive bias (:data:`RELU_BIAS`), putting them on ReLU's linear side at a
cost of at most c·:data:`RELU_BIAS` in the output. GradMax needs Linear layers
l and l+1 (and no norm in l); other layers fall back to zero fan-out growth (``zero``).

The other strategies (``zero``, ``split``, ``random``) are
:func:`evo.operators.dropin.widen`.

Gradual DropIn (Smith, Hand & Doster 2016) — new units' output ramped 0 → 1 —
is applied by :class:`evo.plasticity.state.PlasticNet` to the grown units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from evo.genome import Genome, GenomeNet, LayerKind, weight_name
from evo.operators.dropin import widen
from evo.operators.importance import task_loss
from evo.surgery import UnitParam, edit_units

__all__ = ["RELU_BIAS", "grow", "gradmax_fan_out", "gradmax_matrix", "supports_gradmax"]

RELU_BIAS = 1e-4


def supports_gradmax(genome: Genome, layer: int) -> bool:
    """GradMax is implemented for a Linear layer without a norm feeding a Linear layer.

    (Under a norm, a zero-fan-in unit's constant output normalises to 0 in training mode: no gradient.)
    """
    kinds = (genome.layers[layer].kind, genome.layers[layer + 1].kind)
    return kinds == (LayerKind.LINEAR, LayerKind.LINEAR) and genome.layers[layer].norm is None


def gradmax_matrix(genome: Genome, layer: int, data: tuple[Tensor, Tensor]) -> Tensor:
    """M = E[∂L/∂z₍ₗ₊₁₎ · h₍ₗ₋₁₎ᵀ] over the batch ``data``: shape (width of l+1, input width of l)."""
    net: GenomeNet = genome.to_module().eval()
    captured: dict[str, Tensor] = {}

    def keep_input(_m: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        captured["h"] = inputs[0].detach()

    def keep_output(_m: nn.Module, _inputs: object, out: Tensor) -> None:
        out.retain_grad()
        captured["z"] = out

    handles = [
        net.layers[layer].register_forward_pre_hook(keep_input),
        net.layers[layer + 1].register_forward_hook(keep_output),
    ]
    try:
        x, y = data
        task_loss(net(x.float()), y).backward()
    finally:
        for handle in handles:
            handle.remove()
    grad_z = captured["z"].grad
    assert grad_z is not None
    # the loss is a batch mean, so grad_z already carries 1/n: the sum over the batch is the expectation
    return grad_z.T @ captured["h"]


def gradmax_fan_out(matrix: Tensor, k: int, scale: float) -> Tensor:
    """The top-``k`` left singular vectors of ``matrix`` as columns, scaled to Frobenius norm ``scale``.

    Beyond the matrix's rank the remaining columns are zero (no direction adds gradient there).
    """
    u, _, _ = torch.linalg.svd(matrix.double(), full_matrices=False)
    fan_out = torch.zeros(matrix.shape[0], k, dtype=torch.float64)
    m = min(k, u.shape[1])
    fan_out[:, :m] = u[:, :m]
    norm = fan_out.norm()
    return (fan_out * (scale / norm) if norm > 0 else fan_out).float()


def grow(
    genome: Genome,
    layer: int,
    k: int,
    strategy: str,
    rng: np.random.Generator,
    data: tuple[Tensor, Tensor],
    scale: float = 1e-2,
    noise: float = 0.0,
) -> tuple[Genome, str]:
    """Append ``k`` units to hidden layer ``layer``.

    Returns:
        The grown genome and the strategy actually used (``gradmax`` on conv falls back to ``zero``).
    """
    if strategy != "gradmax" or not supports_gradmax(genome, layer):
        strategy = "zero" if strategy == "gradmax" else strategy
        return widen(genome, rng, layer=layer, k=k, init=strategy, noise=noise), strategy
    fan_out = gradmax_fan_out(gradmax_matrix(genome, layer, data), k, scale)
    bias = RELU_BIAS if genome.layers[layer].activation == "relu" else 0.0

    def edit(param: UnitParam, rows: Tensor) -> Tensor:
        new = rows.new_zeros(k, rows.shape[1])
        if param.name == weight_name(layer, "bias"):
            new += bias
        elif param.name == weight_name(layer + 1):
            new = fan_out.T.to(rows)
        return torch.cat([rows, new])

    return edit_units(genome, layer, edit), strategy
