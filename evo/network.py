"""The torch side of a genome: the ``nn.Module`` it describes, the activation modules layers name, and the
module that puts a task's input steps in front of a network (:class:`RawInputs`, see :mod:`evo.preprocessing`).

Kept apart from :mod:`evo.genome` so that reading genomes (``evo show``, the store, the Optuna mirror)
does not import torch; :meth:`evo.genome.Genome.to_module` builds a :class:`GenomeNet`.

Example:
    >>> import torch
    >>> from evo.genome import Genome
    >>> GenomeNet(Genome.mlp((4,), hidden=(8,), output_size=2))(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from evo.genome import ACTIVATION_NAMES, NORM_EPS, Genome, LayerKind, norm_name, norm_tensors, skip_key, skip_name, weight_name

__all__ = ["ACTIVATIONS", "GenomeNet", "RawInputs"]

ACTIVATIONS: dict[str, type[nn.Module]] = dict(zip(
    ACTIVATION_NAMES, (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.GELU, nn.ELU, nn.Sigmoid, nn.Identity), strict=True))


def _linear(weight: Tensor, bias: Tensor | None) -> nn.Linear:
    """An ``nn.Linear`` holding ``weight`` and ``bias``, built without the random initialisation its constructor
    runs (even on the meta device): that is ~3/4 of building a small network, which every evaluation does
    twice, and the genome's weights would replace it anyway."""
    layer = nn.Linear.__new__(nn.Linear)
    nn.Module.__init__(layer)
    layer.out_features, layer.in_features = weight.shape
    layer.weight = nn.Parameter(weight)
    layer.register_parameter("bias", None if bias is None else nn.Parameter(bias))
    return layer


def _conv(weight: Tensor, bias: Tensor | None, padding: int = 0) -> nn.Conv1d | nn.Conv2d:
    """An ``nn.Conv1d`` or ``nn.Conv2d`` (by the weight's rank) holding ``weight`` and ``bias`` (built on the meta
    device: nothing is initialised twice)."""
    out_channels, in_channels, k = weight.shape[:3]
    kind = nn.Conv1d if weight.dim() == 3 else nn.Conv2d
    conv = kind(in_channels, out_channels, k, padding=padding, bias=bias is not None, device="meta")
    conv.weight = nn.Parameter(weight)
    if bias is not None:
        conv.bias = nn.Parameter(bias)
    return conv


def _norm(kind: str, tensors: Mapping[str, Tensor], image: bool) -> nn.Module:
    """The norm module of a layer holding ``tensors`` (:func:`norm_tensors`); ``image``: after a Conv2d.

    BatchNorm keeps no ``num_batches_tracked`` counter: its momentum is fixed, so the counter would
    be unused state in every genome file.
    """
    width = len(tensors["weight"])
    module: nn.Module
    if kind == "layer":
        module = nn.GroupNorm(1, width, eps=NORM_EPS, device="meta")
    else:
        module = (nn.BatchNorm2d if image else nn.BatchNorm1d)(width, eps=NORM_EPS, device="meta")
        module.running_mean, module.running_var = tensors["running_mean"], tensors["running_var"]
        module.num_batches_tracked = None
    module.weight, module.bias = nn.Parameter(tensors["weight"]), nn.Parameter(tensors["bias"])
    return module


class GenomeNet(nn.Module):
    """The ``nn.Module`` a genome describes, holding copies of its weights on ``device``; its ``state_dict``
    keys are the genome's weight names."""

    def __init__(self, genome: Genome, device: str | torch.device = "cpu") -> None:
        super().__init__()
        weights = {k: v.to(device, copy=True) for k, v in genome.weights.items()}
        self.flatten_at = genome.flatten_at
        self.gap = genome.gap
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleDict()  # by layer index, for the layers that have one
        self.post = nn.ModuleList()  # activation → pool → dropout, per layer
        pool = nn.MaxPool1d if genome.rank == 1 else nn.MaxPool2d
        for i, spec in enumerate(genome.layers):
            weight, bias = weights[weight_name(i)], weights[weight_name(i, "bias")]
            if spec.kind is LayerKind.CONV:
                self.layers.append(_conv(weight, bias, padding=spec.kernel_size // 2))
            else:
                self.layers.append(_linear(weight, bias))
            if spec.norm is not None:
                tensors = {name: weights[norm_name(i, name)] for name in norm_tensors(spec.norm)}
                self.norms[str(i)] = _norm(spec.norm, tensors, spec.kind is LayerKind.CONV and genome.rank == 2)
            post: list[nn.Module] = [ACTIVATIONS[spec.activation]()]
            if spec.pool > 1:
                post.append(pool(spec.pool))
            if spec.dropout > 0:
                post.append(nn.Dropout(spec.dropout))
            self.post.append(post[0] if len(post) == 1 else nn.Sequential(*post))  # one module: no wrapper call
        self.skips = nn.ModuleDict()
        for s, d in genome.skips:
            weight = weights[skip_name(s, d)]
            self.skips[skip_key(s, d)] = _conv(weight, None) if weight.dim() > 2 else _linear(weight, None)
        # The forward pass walks plain tuples of the modules registered above: indexing a ModuleList or
        # ModuleDict is a Python call per layer and step, which small networks notice. For the same reason
        # the output layer's Identity (most networks' last activation) is not called: hooks go on hidden
        # layers' post modules (capture_outputs, PlasticNet), never on the output's; and flat inputs are
        # not flattened (a conv reads them as one channel).
        last, flat_input = len(genome.layers) - 1, len(genome.input_shape) == 1
        self.unsqueeze = flat_input and genome.layers[0].kind is LayerKind.CONV
        self._plan = tuple(
            (i == self.flatten_at and not (i == 0 and flat_input), layer, self.norms[str(i)] if spec.norm else None,
             None if i == last and isinstance(post, nn.Identity) else post,
             tuple((s, self.skips[skip_key(s, i)]) for s, d in genome.skips if d == i))
            for i, (spec, layer, post) in enumerate(zip(genome.layers, self.layers, self.post, strict=True))
        )

    def forward(self, x: Tensor) -> Tensor:
        outputs: list[Tensor] = []
        h = x.unsqueeze(1) if self.unsqueeze else x
        for flatten, layer, norm, post, skips in self._plan:
            if flatten:
                h = h.flatten(2).mean(2) if self.gap else h.flatten(1)
            z = layer(h)
            for s, skip in skips:
                z = z + skip(outputs[s])
            if norm is not None:
                z = norm(z)
            h = z if post is None else post(z)
            outputs.append(h)
        return h


class RawInputs(nn.Module):
    """``net((x / scale - mean) / std)``: a task's input steps, as buffers, in front of its network.

    The same float32 operations, in the same order, as :mod:`evo.tasks.data` applies to the data,
    so the wrapped network gives on raw inputs exactly what the network gave on the task's inputs.
    """

    def __init__(self, net: nn.Module, scale: Tensor, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("scale", scale)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(self.mean.dtype)  # raw data may come as float64 (numpy's default) or as uint8 pixels
        out: Tensor = self.net((x / self.scale - self.mean) / self.std)
        return out
