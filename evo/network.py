"""The torch side of a genome: the ``nn.Module`` it describes, the activation modules layers name, and the
module that puts a task's input steps in front of a network (:class:`RawInputs`, see :mod:`evo.preprocessing`).

Kept apart from :mod:`evo.genome` so that reading genomes (``evo show``, the store, the Optuna mirror)
does not import torch. It imports nothing of evo: :meth:`evo.genome.Genome.to_module`, the one place that
reads weights by name, hands :class:`GenomeNet` each layer's tensors and settings as a :class:`LayerPlan`.

Example:
    >>> import torch
    >>> from evo.genome import Genome
    >>> Genome.mlp((4,), hidden=(8,), output_size=2).to_module()(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "PIXEL_SCALE", "GenomeNet", "LayerPlan", "RawInputs", "as_inputs"]

#: ``uint8`` samples are pixels: the network sees them divided by this, in [0, 1].
PIXEL_SCALE = 255.0

#: the torch module of each of :data:`evo.genome.ACTIVATION_NAMES`.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU, "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


@dataclass(frozen=True)
class LayerPlan:
    """One layer of a genome as :class:`GenomeNet` builds it.

    Attributes:
        weight, bias: the layer's tensors (a Conv1d/Conv2d weight by its rank, else Linear).
        conv: whether the layer is a convolution.
        norm: ``"batch"``, ``"layer"`` or ``None``.
        norm_tensors: the norm's tensors by name (weight, bias and BatchNorm's running statistics).
        activation, pool, dropout: what follows the layer, in that order.
    """

    weight: Tensor
    bias: Tensor
    conv: bool
    norm: str | None
    norm_tensors: Mapping[str, Tensor]
    activation: str
    pool: int
    dropout: float


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


def _norm(kind: str, tensors: Mapping[str, Tensor], image: bool, eps: float) -> nn.Module:
    """The norm module of a layer holding ``tensors`` (:func:`evo.genome.norm_tensors`); ``image``: after a Conv2d.

    BatchNorm keeps no ``num_batches_tracked`` counter: its momentum is fixed, so the counter would
    be unused state in every genome file.
    """
    width = len(tensors["weight"])
    module: nn.Module
    if kind == "layer":
        module = nn.GroupNorm(1, width, eps=eps, device="meta")
    else:
        module = (nn.BatchNorm2d if image else nn.BatchNorm1d)(width, eps=eps, device="meta")
        module.running_mean, module.running_var = tensors["running_mean"], tensors["running_var"]
        module.num_batches_tracked = None
    module.weight, module.bias = nn.Parameter(tensors["weight"]), nn.Parameter(tensors["bias"])
    return module


class GenomeNet(nn.Module):
    """The ``nn.Module`` a genome describes (built by :meth:`evo.genome.Genome.to_module`, which names its
    tensors); its ``state_dict`` keys are the genome's weight names.

    Args:
        layers: every layer, in order.
        skips: the skip edges ``(key, src, dst, weight)``: ``dst``'s pre-activation adds ``src``'s output times
            ``weight``; ``key`` (:func:`evo.genome.skip_key`) names the edge's module.
        input_rank: the rank of one input sample (1: a flat vector).
        flatten_at: the first dense layer, where conv feature maps are flattened (or averaged when ``gap``).
        gap: global average pooling instead of flattening.
        rank: the conv layers' spatial rank (1: Conv1d, 2: Conv2d).
        norm_eps: ε of every norm module.
    """

    def __init__(self, layers: Sequence[LayerPlan], skips: Sequence[tuple[str, int, int, Tensor]], *, input_rank: int,
                 flatten_at: int, gap: bool, rank: int, norm_eps: float) -> None:
        super().__init__()
        self.flatten_at = flatten_at
        self.gap = gap
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleDict()  # by layer index, for the layers that have one
        self.post = nn.ModuleList()  # activation → pool → dropout, per layer
        pool = nn.MaxPool1d if rank == 1 else nn.MaxPool2d
        for i, spec in enumerate(layers):
            if spec.conv:
                self.layers.append(_conv(spec.weight, spec.bias, padding=spec.weight.shape[2] // 2))
            else:
                self.layers.append(_linear(spec.weight, spec.bias))
            if spec.norm is not None:
                self.norms[str(i)] = _norm(spec.norm, spec.norm_tensors, spec.conv and rank == 2, norm_eps)
            post: list[nn.Module] = [ACTIVATIONS[spec.activation]()]
            if spec.pool > 1:
                post.append(pool(spec.pool))
            if spec.dropout > 0:
                post.append(nn.Dropout(spec.dropout))
            self.post.append(post[0] if len(post) == 1 else nn.Sequential(*post))  # one module: no wrapper call
        self.skips = nn.ModuleDict()
        for key, _, _, weight in skips:
            self.skips[key] = _conv(weight, None) if weight.dim() > 2 else _linear(weight, None)
        # The forward pass walks plain tuples of the modules registered above: indexing a ModuleList or
        # ModuleDict is a Python call per layer and step, which small networks notice. For the same reason
        # the output layer's Identity (most networks' last activation) is not called: hooks go on hidden
        # layers' post modules (capture_outputs, PlasticNet), never on the output's; and flat inputs are
        # not flattened (a conv reads them as one channel).
        last, flat_input = len(layers) - 1, input_rank == 1
        self.unsqueeze = flat_input and layers[0].conv
        self._plan = tuple(
            (i == self.flatten_at and not (i == 0 and flat_input), layer, self.norms[str(i)] if spec.norm else None,
             None if i == last and isinstance(post, nn.Identity) else post,
             tuple((s, self.skips[key]) for key, s, d, _ in skips if d == i))
            for i, (spec, layer, post) in enumerate(zip(layers, self.layers, self.post, strict=True))
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


def as_inputs(x: Tensor) -> Tensor:
    """The network's float32 inputs from stored samples ``x``: ``uint8`` pixels ÷ :data:`PIXEL_SCALE`, anything
    else as float32 (no copy when it is already), on ``x``'s device.

    Image data sets keep their pixels as bytes (a quarter of float32's memory, and of the bytes a GPU copy
    takes) and convert one batch at a time where it is used. The division is the float32 one
    :mod:`evo.tasks.data` applied to the whole set before: on the CPU the inputs are the same to the bit.
    """
    return x.float().div_(PIXEL_SCALE) if x.dtype == torch.uint8 else x.float()


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
