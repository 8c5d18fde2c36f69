"""Unit importance: which neurons (or channels) of a layer matter least.

Apoptosis removes the least important units; the plastic trainer uses the same
scores. Criteria:

* ``l1`` / ``l2`` — norm of the unit's fan-in and fan-out weights (magnitude
  pruning, Han et al. 2015, "Learning both Weights and Connections").
* ``activation`` — mean ``|h|`` over a batch (and space); dead units score 0.
* ``taylor`` — first-order Taylor expansion of the loss, Θ = |mean over batch
  (and space) of (∂L/∂h)·h|, normalised per layer (Molchanov et al. 2017,
  "Pruning Convolutional Neural Networks for Resource Efficient Inference").

Example:
    >>> from evo.genome import Genome
    >>> g = Genome.mlp((4,), hidden=(3,), output_size=2)
    >>> unit_importance(g, 0, "l1").shape
    torch.Size([3])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evo.errors import ConfigError, NotApplicable
from evo.genome import Genome, GenomeNet, parse_weight_name
from evo.surgery import to_rows, unit_params

__all__ = ["CRITERIA", "DATA_CRITERIA", "capture_outputs", "check_data", "layer_outputs", "task_loss", "unit_importance"]

CRITERIA = ("l1", "l2", "activation", "taylor")
#: Criteria that need a batch ``data=(x, y)``.
DATA_CRITERIA = frozenset({"activation", "taylor"})


def capture_outputs(net: GenomeNet, x: Tensor, layers: Iterable[int], keep_grad: bool = False) -> tuple[Tensor, dict[int, Tensor]]:
    """Run ``net`` on ``x`` and return its output and the post-activation outputs of hidden ``layers``.

    A layer's output is what ``net.post[i]`` returns (activation, pooling,
    dropout): exactly what the next layer and skip projections consume. The
    module's train/eval mode and grad mode are the caller's choice.

    Args:
        keep_grad: call ``retain_grad()`` on the captured tensors, so their
            ``.grad`` is filled by a later ``backward()`` (Taylor importance).
    """
    layers = list(layers)
    hidden = range(len(net.layers) - 1)
    if any(i not in hidden for i in layers):
        raise ValueError(f"capture_outputs: layers must be hidden layers ({list(hidden)}), got {layers}")
    captured: dict[int, Tensor] = {}

    def hook(i: int) -> Callable[[nn.Module, object, Tensor], None]:
        def store(_module: nn.Module, _inputs: object, output: Tensor) -> None:
            if keep_grad and output.requires_grad:
                output.retain_grad()
            captured[i] = output

        return store

    handles = [net.post[i].register_forward_hook(hook(i)) for i in layers]
    try:
        out = net(x)
    finally:
        for handle in handles:
            handle.remove()
    return out, captured


def layer_outputs(genome: Genome, x: Tensor, layers: Iterable[int]) -> dict[int, Tensor]:
    """Post-activation outputs of ``layers`` on batch ``x`` (eval mode, no grad)."""
    net = genome.to_module().eval()
    with torch.no_grad():
        return capture_outputs(net, x.float(), layers)[1]


def check_data(genome: Genome, data: object, who: str) -> tuple[Tensor, Tensor]:
    """Validate a calibration batch ``(x, y)`` for ``genome``; ``who`` names the caller in errors."""
    if not (isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(t, Tensor) for t in data)):
        raise ValueError(f"{who}: data must be a pair of tensors (x, y), got {type(data).__name__}")
    x, y = data
    if tuple(x.shape[1:]) != genome.input_shape or x.shape[0] < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"{who}: data x must have shape (n, *{genome.input_shape}) with n >= 1 and y n rows, "
            f"got x {tuple(x.shape)}, y {tuple(y.shape)}"
        )
    return x.float(), y


def task_loss(output: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy for integer class labels, mean squared error otherwise."""
    if not y.is_floating_point():  # labels: converted/reshaped only when needed (this runs every training step)
        labels = y if y.dtype == torch.int64 else y.long()
        return F.cross_entropy(output, labels if labels.dim() == 1 else labels.reshape(-1))
    return F.mse_loss(output, y.float().reshape(output.shape))


def unit_importance(genome: Genome, layer: int, criterion: str, data: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Importance of every unit of hidden layer ``layer``: a non-negative float tensor of its width.

    Args:
        criterion: one of :data:`CRITERIA`.
        data: a batch ``(x, y)``; required by ``activation`` and ``taylor``.
    """
    if criterion not in CRITERIA:
        raise ConfigError(f"unit_importance: criterion must be one of {list(CRITERIA)}, got {criterion!r}")
    if layer not in genome.hidden_layers:
        raise NotApplicable(f"unit_importance: layer must be a hidden layer in 0..{genome.num_layers - 2}, got {layer}")
    if criterion in ("l1", "l2"):
        return _weight_norm(genome, layer, 1 if criterion == "l1" else 2)
    if data is None:
        raise NotApplicable(f"unit_importance: criterion {criterion!r} needs data=(x, y), got None")
    x, y = check_data(genome, data, "unit_importance")
    if criterion == "activation":
        h = layer_outputs(genome, x, [layer])[layer]
        return _per_unit_mean(h.abs())
    return _taylor(genome, layer, x, y)


def _weight_norm(genome: Genome, layer: int, p: int) -> Tensor:
    """‖fan-in and fan-out weights‖_p of each unit (biases excluded, as in Han et al.)."""
    width = genome.layers[layer].width
    total = torch.zeros(width)
    for param in unit_params(genome, layer):
        if param.fan != "norm" and parse_weight_name(param.name).tensor == "weight":
            rows = to_rows(genome.weights[param.name], param.dim, width)
            total += rows.abs().pow(p).sum(dim=1)
    return total.pow(1.0 / p)


def _per_unit_mean(h: Tensor) -> Tensor:
    """Mean over every dimension but the unit dimension (1): batch and space."""
    return h.transpose(0, 1).reshape(h.shape[1], -1).mean(dim=1)


def _taylor(genome: Genome, layer: int, x: Tensor, y: Tensor) -> Tensor:
    net = genome.to_module().eval()
    out, captured = capture_outputs(net, x, [layer], keep_grad=True)
    task_loss(out, y).backward()  # type: ignore[no-untyped-call]
    h = captured[layer]
    assert h.grad is not None
    theta = _per_unit_mean((h.grad * h).detach()).abs()
    norm = theta.norm()
    return theta / norm if norm > 0 else theta
