"""Genome: an immutable description of a network plus its weights.

Everything in evo stands on this: operators return new genomes, tasks train
them, the store saves them. A genome is a chain of layers (conv blocks, then
Linear layers; the last layer is the output layer) with optional additive skip
connections, per-layer normalisation and dropout. The convs are Conv1d for a
signal input ``(C, L)`` (or a flat ``(L,)`` read as one channel) and Conv2d
for an image ``(C, H, W)``: one code path, the rank taken from the input
shape. Its weights are a plain ``state_dict`` of the module
:meth:`Genome.to_module` builds (BatchNorm's running statistics included), so
they round-trip exactly.

Example:
    >>> g = Genome.mlp((64,), hidden=(32,), output_size=10, seed=0)
    >>> str(g)
    '64→32→relu→10'
    >>> import torch
    >>> g.to_module()(torch.zeros(2, 64)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from evo.files import atomic_write_bytes, sha256_hex

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import Tensor, nn

    from evo.network import GenomeNet

# torch is imported where weights are touched, not here: `evo show` and `evo --help` read genomes without it.

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "IDEMPOTENT_ACTIVATIONS",
    "NORMS",
    "NORM_EPS",
    "Genome",
    "GenomeNet",
    "LayerKind",
    "LayerSpec",
    "WeightName",
    "init_uniform",
    "is_norm_stat",
    "load_tensors",
    "norm_init",
    "norm_name",
    "norm_tensors",
    "parse_weight_name",
    "save_tensors",
    "skip_key",
    "skip_name",
    "weight_name",
]

#: the activations a layer may name; :data:`evo.network.ACTIVATIONS` maps them to torch modules.
ACTIVATION_NAMES = ("relu", "leaky_relu", "tanh", "gelu", "elu", "sigmoid", "identity")
#: σ(σ(x)) = σ(x): an identity-initialised layer after such an activation is exact.
IDEMPOTENT_ACTIVATIONS = frozenset({"relu", "identity"})
FORMAT_VERSION = 1
#: Normalisations a layer may have (``LayerSpec.norm``): ``batch`` — BatchNorm (Ioffe & Szegedy 2015);
#: ``layer`` — GroupNorm with one group (Wu & He 2018), i.e. LayerNorm over channels and positions
#: with a per-channel affine (Ba et al. 2016): per-sample statistics, for small or shifting batches.
NORMS = ("batch", "layer")
#: ε of every norm module (PyTorch's default), also used where operators fold or insert norms.
NORM_EPS = 1e-5
_NORM_STATS = ("running_mean", "running_var")


class LayerKind(str, Enum):
    """What a layer computes: a dense ``Linear`` or a same-padded ``Conv2d``."""

    LINEAR = "linear"
    CONV = "conv"


@dataclass(frozen=True)
class LayerSpec:
    """One layer: ``z = W·h (+ skips)``, then activation, (pooling), dropout.

    Attributes:
        kind: linear or conv.
        width: output units (neurons or channels).
        activation: one of :data:`ACTIVATION_NAMES`.
        dropout: dropout rate applied to this layer's output, in [0, 1).
        kernel_size: odd conv kernel size (conv only; stride 1, 'same' padding).
        pool: max-pool factor after the activation (conv only; 1 = none).
        norm: normalisation of ``z`` before the activation, one of :data:`NORMS`; None = none
            (hidden layers only).
    """

    kind: LayerKind
    width: int
    activation: str = "relu"
    dropout: float = 0.0
    kernel_size: int = 3
    pool: int = 1
    norm: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", LayerKind(self.kind))
        if self.width < 1:
            raise ValueError(f"layer width must be >= 1, got {self.width}")
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(f"unknown activation {self.activation!r}; allowed: {sorted(ACTIVATION_NAMES)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {self.kernel_size}")
        if self.pool < 1:
            raise ValueError(f"pool must be >= 1, got {self.pool}")
        if self.norm is not None and self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; allowed: {list(NORMS)} or null")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # plain values: no deep copy needed
        d["kind"] = self.kind.value
        return d


def init_uniform(shape: Sequence[int], fan_in: int, generator: torch.Generator) -> Tensor:
    """PyTorch's default Linear/Conv init, U(-1/√fan_in, 1/√fan_in), from an explicit generator."""
    import torch

    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return (torch.rand(tuple(shape), generator=generator) * 2.0 - 1.0) * bound


def norm_tensors(norm: str) -> tuple[str, ...]:
    """The per-unit tensors a norm module of kind ``norm`` keeps (``norms.{i}.<name>``)."""
    return ("weight", "bias", *_NORM_STATS) if norm == "batch" else ("weight", "bias")


def norm_init(name: str, width: int) -> Tensor:
    """A fresh norm tensor, as PyTorch initialises it: weight and running_var 1, bias and running_mean 0."""
    import torch

    fill = 1.0 if name.endswith(("weight", "running_var")) else 0.0
    return torch.full((width,), fill)


def is_norm_stat(name: str) -> bool:
    """Whether weight ``name`` is a running statistic (state, not a parameter: not counted, trained or mutated)."""
    return name.endswith(_NORM_STATS)


# ------------------------------------------------------------- weight names
# The names below are the only place weight names are spelled: they are the state_dict keys of the
# module GenomeNet builds (ModuleList ``layers``, ModuleDicts ``norms`` by layer and ``skips`` by edge).


class WeightName(NamedTuple):
    """A weight's name taken apart; ``str()`` puts it back together.

    Attributes:
        group: ``layers`` (a layer's weight and bias), ``norms`` (a layer's norm) or ``skips``.
        layer: the layer the tensor belongs to; for a skip, the layer it feeds (its destination).
        tensor: ``weight``, ``bias``, ``running_mean`` or ``running_var``.
        src: a skip's source layer (None otherwise).
    """

    group: str
    layer: int
    tensor: str
    src: int | None = None

    def __str__(self) -> str:
        owner = str(self.layer) if self.src is None else skip_key(self.src, self.layer)
        return f"{self.group}.{owner}.{self.tensor}"


_WEIGHT_NAME = re.compile(r"(layers|norms)\.(\d+)\.(\w+)|skips\.(\d+)_(\d+)\.(weight)")


def weight_name(layer: int, tensor: str = "weight") -> str:
    """Name of layer ``layer``'s ``weight`` or ``bias``: ``layers.{layer}.{tensor}``."""
    return str(WeightName("layers", layer, tensor))


def norm_name(layer: int, tensor: str) -> str:
    """Name of one of layer ``layer``'s norm tensors (:func:`norm_tensors`): ``norms.{layer}.{tensor}``."""
    return str(WeightName("norms", layer, tensor))


def skip_key(src: int, dst: int) -> str:
    """Key of the skip edge ``src → dst`` among a GenomeNet's skips: ``{src}_{dst}``."""
    return f"{src}_{dst}"


def skip_name(src: int, dst: int) -> str:
    """Name of the skip edge ``src → dst``'s projection: ``skips.{src}_{dst}.weight``."""
    return str(WeightName("skips", dst, "weight", src))


def parse_weight_name(name: str) -> WeightName:
    """``name`` taken apart: ``layers.3.bias`` → ``WeightName("layers", 3, "bias")``.

    Raises:
        ValueError: ``name`` is not a genome weight's name.
    """
    m = _WEIGHT_NAME.fullmatch(name)
    if m is None:
        raise ValueError(f"not a genome weight name: {name!r}")
    if m.group(1):
        return WeightName(m.group(1), int(m.group(2)), m.group(3))
    return WeightName("skips", int(m.group(5)), m.group(6), int(m.group(4)))


#: Structures (input shape, layers, skips, gap) already checked, with their parameter shapes: a gradient-free
#: run builds thousands of genomes of a few structures, and checking each again cost an XOR run more than its
#: evaluations. Bounded: cleared when full.
_CHECKED_STRUCTURES: dict[tuple[Any, ...], dict[str, tuple[int, ...]]] = {}
_MAX_CHECKED_STRUCTURES = 4096


@dataclass(frozen=True, eq=False)
class Genome:
    """An immutable network description plus its weights (see module docstring).

    Attributes:
        input_shape: ``(features,)`` or ``(channels, height, width)``.
        layers: the layers in order; the last is the output layer.
        skips: additive skip edges ``(src, dst)``: ``h_src`` projected by a
            bias-free Linear (or 1×1 Conv) and added to ``z_dst``.
        weights: ``state_dict`` of :meth:`to_module` (read-only mapping).
        hparams: this individual's training hyperparameters (``plasticity`` field → value, see
            :mod:`evo.hyper`), which the trainer uses in place of the config's; empty: the config's.
        gap: the dense head reads the channel means of the last conv layer's output (global average
            pooling, Lin, Chen & Yan 2014, "Network in Network") instead of all its positions flattened:
            the first Linear layer's size no longer grows with the signal or image.
        optim_state: weight name → the optimiser state its last training left (Adam's ``exp_avg``,
            ``exp_avg_sq``, ``step``; SGD's ``momentum_buffer``), which the next lifetime starts from
            with ``plasticity.carry_optimizer``; empty: a fresh optimiser. An entry whose weight is gone
            or changed shape is dropped on construction; operators that move units map it
            (:func:`evo.surgery.edit_units`), and :meth:`from_module` and :meth:`reinitialised` (new
            weights) start without any. Saved and pickled with the weights, never exported.
    """

    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]
    skips: tuple[tuple[int, int], ...] = ()
    weights: Mapping[str, Tensor] = field(default_factory=dict, repr=False)
    hparams: Mapping[str, Any] = field(default_factory=dict)
    gap: bool = False
    optim_state: Mapping[str, Mapping[str, Tensor]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "skips", tuple(sorted((int(s), int(d)) for s, d in self.skips)))
        object.__setattr__(self, "gap", bool(self.gap))
        structure = (self.input_shape, self.layers, self.skips, self.gap)
        shapes = _CHECKED_STRUCTURES.get(structure)
        if shapes is None:
            self._check_structure()
            shapes = self._compute_param_shapes()
            if len(_CHECKED_STRUCTURES) >= _MAX_CHECKED_STRUCTURES:
                _CHECKED_STRUCTURES.clear()
            _CHECKED_STRUCTURES[structure] = shapes
        object.__setattr__(self, "_param_shapes", shapes)  # not a field: copies and pickles look it up again
        weights = dict(self.weights)
        if weights:  # a skeleton (``evo show``, the store) needs no torch
            import torch

            weights = {k: v.detach().to("cpu", torch.float32) for k, v in weights.items()}
        object.__setattr__(self, "weights", MappingProxyType(weights))
        object.__setattr__(self, "hparams", MappingProxyType(dict(self.hparams)))
        self._check_weights()
        object.__setattr__(self, "optim_state", MappingProxyType(self._fitting_state()))

    def _fitting_state(self) -> dict[str, Mapping[str, Tensor]]:
        """The entries of ``optim_state`` that still fit a weight (same name, tensors of its shape or scalars),
        on the CPU in float32 like the weights."""
        fitting = {}
        for name, entry in self.optim_state.items():
            weight = self.weights.get(name)
            if weight is not None and all(v.dim() == 0 or v.shape == weight.shape for v in entry.values()):
                fitting[name] = MappingProxyType({k: v.detach().to("cpu", weight.dtype) for k, v in entry.items()})
        return fitting

    # ---------------------------------------------------------------- builders
    @classmethod
    def mlp(
        cls,
        input_shape: Sequence[int] | int,
        hidden: Sequence[int],
        output_size: int,
        activation: str = "relu",
        dropout: float = 0.0,
        seed: int = 0,
    ) -> Genome:
        """A multilayer perceptron with random (seeded) weights; image inputs are flattened."""
        shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
        layers = [LayerSpec(LayerKind.LINEAR, w, activation, dropout) for w in hidden]
        layers.append(LayerSpec(LayerKind.LINEAR, output_size, "identity"))
        return cls.random(shape, layers, seed=seed)

    @classmethod
    def cnn(
        cls,
        input_shape: Sequence[int],
        channels: Sequence[int],
        hidden: Sequence[int],
        output_size: int,
        kernel_size: int = 3,
        pool: int = 2,
        activation: str = "relu",
        dropout: float = 0.0,
        seed: int = 0,
    ) -> Genome:
        """Conv blocks (conv → activation → max-pool), flatten, then Linear layers."""
        conv = [LayerSpec(LayerKind.CONV, c, activation, 0.0, kernel_size, pool) for c in channels]
        dense = [LayerSpec(LayerKind.LINEAR, w, activation, dropout) for w in hidden]
        out = LayerSpec(LayerKind.LINEAR, output_size, "identity")
        return cls.random(tuple(input_shape), [*conv, *dense, out], seed=seed)

    @classmethod
    def random(
        cls,
        input_shape: Sequence[int],
        layers: Sequence[LayerSpec],
        skips: Sequence[tuple[int, int]] = (),
        seed: int = 0,
        gap: bool = False,
    ) -> Genome:
        """A genome with the given structure and PyTorch-default random weights (norms at their identity init)."""
        skeleton = cls(tuple(input_shape), tuple(layers), tuple(skips), gap=gap)
        return skeleton.reinitialised(seed)

    def reinitialised(self, seed: int) -> Genome:
        """This architecture with fresh PyTorch-default random weights drawn from ``seed`` (a restart)."""
        import torch

        gen = torch.Generator().manual_seed(seed)
        weights = {
            name: norm_init(name, shape[0])
            if parse_weight_name(name).group == "norms"
            else init_uniform(shape, self.fan_in(name), gen)
            for name, shape in self.param_shapes().items()
        }
        return self.replace(weights=weights, optim_state={})

    # ------------------------------------------------------------- structure
    @property
    def output_size(self) -> int:
        return self.layers[-1].width

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_layers(self) -> range:
        """Indices of layers whose width may change (all but the output layer)."""
        return range(len(self.layers) - 1)

    @property
    def flatten_at(self) -> int:
        """Index of the first Linear layer: its input is flattened."""
        return next(i for i, layer in enumerate(self.layers) if layer.kind is LayerKind.LINEAR)

    @property
    def rank(self) -> int:
        """Spatial dimensions of the conv layers: 1 (Conv1d) for a ``(C, L)`` or flat input, 2 for ``(C, H, W)``."""
        return max(len(self.input_shape) - 1, 1)

    def spatial(self, i: int) -> tuple[int, ...]:
        """(L,) or (H, W) of layer ``i``'s output after pooling; all 1 for Linear layers; ``i=-1``: the input."""
        if i < 0:
            return self.input_shape[1:] if len(self.input_shape) > 1 else self.input_shape
        if self.layers[i].kind is LayerKind.LINEAR:
            return (1,) * self.rank
        p = self.layers[i].pool
        return tuple(d // p for d in self.spatial(i - 1))

    def in_width(self, i: int) -> int:
        """Units (or channels) feeding layer ``i``: the previous layer's width, or the input's."""
        if i > 0:
            return self.layers[i - 1].width
        if self.layers[0].kind is LayerKind.CONV:
            return self.input_shape[0] if len(self.input_shape) > 1 else 1
        return math.prod(self.input_shape)

    def flatten_block(self, i: int) -> int:
        """Input columns per unit of layer ``i-1`` in layer ``i``'s weight (H·W where it flattens a conv, 1 with gap)."""
        if i > 0 and i == self.flatten_at and self.layers[i - 1].kind is LayerKind.CONV and not self.gap:
            return math.prod(self.spatial(i - 1))
        return 1

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name → shape of every parameter, in ``state_dict`` order (computed once per structure: checks,
        operators and ``num_params`` ask for it many times, a gradient-free run's variation most of all)."""
        return dict(self.__dict__["_param_shapes"])

    def _compute_param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for i, layer in enumerate(self.layers):
            fan = self.in_width(i) * self.flatten_block(i)
            kernel = (layer.kernel_size,) * self.rank if layer.kind is LayerKind.CONV else ()
            shapes[weight_name(i)] = (layer.width, fan, *kernel)
            shapes[weight_name(i, "bias")] = (layer.width,)
        for i, layer in enumerate(self.layers):
            if layer.norm is not None:
                shapes.update({norm_name(i, name): (layer.width,) for name in norm_tensors(layer.norm)})
        for s, d in self.skips:
            tail = (1,) * self.rank if self.layers[d].kind is LayerKind.CONV else ()
            shapes[skip_name(s, d)] = (self.layers[d].width, self.layers[s].width, *tail)
        return shapes

    def fan_in(self, name: str) -> int:
        """Fan-in of a parameter's units (a bias shares its weight's fan-in)."""
        weight = str(parse_weight_name(name)._replace(tensor="weight"))
        return math.prod(self.param_shapes()[weight][1:])

    def _check_structure(self) -> None:
        if not self.layers:
            raise ValueError("a genome needs at least one (output) layer")
        if len(self.input_shape) not in (1, 2, 3) or min(self.input_shape) < 1:
            raise ValueError(
                f"input_shape must be (features,), (C, L) or (C, H, W) with positive sizes, got {self.input_shape}"
            )
        kinds = [layer.kind for layer in self.layers]
        if LayerKind.LINEAR not in kinds or kinds[-1] is not LayerKind.LINEAR:
            raise ValueError("the output layer must be linear")
        if LayerKind.CONV in kinds[self.flatten_at :]:
            raise ValueError("conv layers must come before all linear layers")
        if self.layers[-1].norm is not None:
            raise ValueError("the output layer cannot have a norm")
        if self.gap and self.flatten_at == 0:
            raise ValueError("gap (global average pooling) needs a conv layer before the first linear one")
        for i in range(len(self.layers)):
            if min(self.spatial(i)) < 1:
                raise ValueError(f"pooling shrinks layer {i}'s output below 1×1")
        for s, d in self.skips:
            self._check_skip(s, d)

    def _check_skip(self, s: int, d: int) -> None:
        n = len(self.layers)
        if not (0 <= s and s + 2 <= d < n):
            raise ValueError(f"skip ({s}, {d}) must satisfy 0 <= src and src + 2 <= dst < {n}")
        if self.layers[s].kind is not self.layers[d].kind:
            raise ValueError(f"skip ({s}, {d}) must join layers of the same kind")
        if any(self.layers[j].pool > 1 for j in range(s + 1, d)):
            raise ValueError(f"skip ({s}, {d}) crosses a pooling layer: spatial sizes differ")

    def _check_weights(self) -> None:
        if not self.weights:
            return  # a skeleton, used only inside Genome.random
        expected = self.param_shapes()
        if set(expected) != set(self.weights):
            missing, extra = set(expected) - set(self.weights), set(self.weights) - set(expected)
            raise ValueError(f"weights do not match the genome: missing {sorted(missing)}, unexpected {sorted(extra)}")
        for name, shape in expected.items():
            if tuple(self.weights[name].shape) != shape:
                raise ValueError(f"weight {name} has shape {tuple(self.weights[name].shape)}, expected {shape}")

    # ------------------------------------------------------------- updates
    def replace(self, **changes: Any) -> Genome:
        """A copy with fields changed (validated like any new genome)."""
        return dataclasses.replace(self, **changes)

    def with_weights(self, weights: Mapping[str, Tensor]) -> Genome:
        """The same architecture with other weights (e.g. after training)."""
        return self.replace(weights=dict(weights))

    def without_state(self, names: Collection[str]) -> Genome:
        """A copy without the optimiser state of weights ``names`` (for operators that rewrite those weights
        in a way their moments do not follow); itself when it holds none of them."""
        if not any(name in self.optim_state for name in names):
            return self
        return self.replace(optim_state={k: v for k, v in self.optim_state.items() if k not in names})

    def with_layer(self, i: int, **changes: Any) -> Genome:
        """A copy with layer ``i``'s spec changed (weights must still fit)."""
        layers = list(self.layers)
        layers[i] = dataclasses.replace(layers[i], **changes)
        return self.replace(layers=tuple(layers))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as constructor arguments (Ray, multiprocessing, deepcopy): a mappingproxy cannot be pickled.

        The weights travel as numpy arrays: a torch tensor pickles through its storage and costs ~50 µs each
        way, ~10× an array; Ray ships a genome to a worker and back for every evaluation.
        """
        arrays = {k: v.numpy() for k, v in self.weights.items()}
        state = {name: {k: v.numpy() for k, v in entry.items()} for name, entry in self.optim_state.items()}
        return (_unpickle, (self.input_shape, self.layers, self.skips, arrays, dict(self.hparams), self.gap, state))

    # ------------------------------------------------------------- modules
    def to_module(self, device: str | torch.device = "cpu") -> GenomeNet:
        """A fresh ``nn.Module`` holding copies of the weights, on ``device``."""
        from evo.network import GenomeNet, LayerPlan  # torch: reading genomes does without

        weights = {k: v.to(device, copy=True) for k, v in self.weights.items()}
        layers = [
            LayerPlan(weights[weight_name(i)], weights[weight_name(i, "bias")], spec.kind is LayerKind.CONV, spec.norm,
                      {name: weights[norm_name(i, name)] for name in norm_tensors(spec.norm)} if spec.norm else {},
                      spec.activation, spec.pool, spec.dropout)
            for i, spec in enumerate(self.layers)
        ]
        skips = [(skip_key(s, d), s, d, weights[skip_name(s, d)]) for s, d in self.skips]
        return GenomeNet(layers, skips, input_rank=len(self.input_shape), flatten_at=self.flatten_at, gap=self.gap,
                         rank=self.rank, norm_eps=NORM_EPS)

    def from_module(self, module: nn.Module) -> Genome:
        """This architecture with the module's current weights (e.g. after training), without optimiser state:
        whoever trained the module has it."""
        return self.replace(weights={k: v.detach().clone() for k, v in module.state_dict().items()}, optim_state={})

    # ------------------------------------------------------------- metrics
    def num_params(self) -> int:
        """Trainable parameters (BatchNorm's running statistics are state, not counted)."""
        return sum(math.prod(shape) for name, shape in self.param_shapes().items() if not is_norm_stat(name))

    def flops(self) -> int:
        """Forward FLOPs for one sample (2 per multiply-add; activations, norms and pooling ignored)."""
        total = 0
        for name, shape in self.param_shapes().items():
            parsed = parse_weight_name(name)
            if parsed.tensor == "bias" or parsed.group == "norms":
                continue
            i = parsed.layer  # the consuming layer (dst for skips)
            pixels = math.prod(self.spatial(i - 1)) if self.layers[i].kind is LayerKind.CONV else 1
            total += 2 * math.prod(shape) * pixels
        return total

    def __str__(self) -> str:
        """One line, e.g. ``1×8×8→conv3:16→bn→relu→pool2→flatten→64→relu→10 skip(0→2)`` (``gap`` for gap)."""
        tokens = ["×".join(map(str, self.input_shape))]
        for i, layer in enumerate(self.layers):
            if i == self.flatten_at and (i > 0 or len(self.input_shape) > 1):
                tokens.append("gap" if self.gap else "flatten")
            conv = layer.kind is LayerKind.CONV
            tokens.append(f"conv{layer.kernel_size}:{layer.width}" if conv else str(layer.width))
            tokens += [{"batch": "bn", "layer": "ln"}[layer.norm]] if layer.norm else []
            tokens += [layer.activation] if layer.activation != "identity" else []
            tokens += [f"pool{layer.pool}"] if layer.pool > 1 else []
            tokens += [f"drop{layer.dropout:g}"] if layer.dropout > 0 else []
        text = "→".join(tokens)
        if self.skips:
            text += " " + " ".join(f"skip({s}→{d})" for s, d in self.skips)
        return text

    # ------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """The architecture (and hyperparameters, if any) as JSON-ready data (weights are saved separately)."""
        data: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "input_shape": list(self.input_shape),
            "layers": [layer.to_dict() for layer in self.layers],
            "skips": [list(edge) for edge in self.skips],
        }
        if self.hparams:
            data["hparams"] = dict(self.hparams)
        if self.gap:
            data["gap"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], weights: Mapping[str, Tensor] | None = None, seed: int = 0) -> Genome:
        """Inverse of :meth:`to_dict`; random (seeded) weights when ``weights`` is None."""
        try:
            if data.get("format", FORMAT_VERSION) != FORMAT_VERSION:
                raise ValueError(f"unsupported genome format {data.get('format')!r}")
            layers = tuple(LayerSpec(**layer) for layer in data["layers"])
            shape = tuple(data["input_shape"])
            skips = tuple((int(s), int(d)) for s, d in data.get("skips", ()))
            hparams = dict(data.get("hparams", {}))
            gap = bool(data.get("gap", False))
        except (KeyError, TypeError) as err:
            raise ValueError(f"malformed genome data: {err}") from err
        if weights is None:
            genome = cls.random(shape, layers, skips, seed=seed, gap=gap)
            return genome.replace(hparams=hparams) if hparams else genome
        return cls(shape, layers, skips, weights, hparams, gap)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def content(self) -> dict[str, Any]:
        """What a genome file holds of this genome: architecture, weights and, when carried, optimiser state."""
        content: dict[str, Any] = {"genome": self.to_dict(), "weights": dict(self.weights)}
        if self.optim_state:
            content["optim_state"] = {name: dict(entry) for name, entry in self.optim_state.items()}
        return content

    @classmethod
    def from_content(cls, content: Any, where: str) -> Genome:
        """Inverse of :meth:`content`; ``where`` names the file in the error.

        Raises:
            ValueError: ``content`` is not a genome's.
        """
        if not isinstance(content, dict) or "genome" not in content or "weights" not in content:
            raise ValueError(f"{where}: not an evo genome file")
        spec = content["genome"]  # a run's genome files hold it as JSON text (see evo.store)
        genome = cls.from_dict(json.loads(spec) if isinstance(spec, str) else spec, content["weights"])
        return genome.replace(optim_state=content["optim_state"]) if "optim_state" in content else genome

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write architecture and weights to one ``.pt`` file, atomically; returns the file's sha256."""
        return save_tensors(path, self.content())

    @classmethod
    def load(cls, path: str | os.PathLike[str], sha256: str | None = None) -> Genome:
        """Read a file written by :meth:`save` (with ``weights_only=True``: no code runs).

        Raises:
            ValueError: the file is not a genome file, or its checksum is not ``sha256`` (when given).
        """
        return cls.from_content(load_tensors(path, sha256, "evo genome file"), str(path))


def save_tensors(path: str | os.PathLike[str], content: Mapping[str, Any]) -> str:
    """``torch.save`` of ``content`` (tensors and plain data) to ``path``, atomically; returns the file's sha256.

    Serialised in memory first: ``torch.save`` into a full disk fails with its own words
    (``unexpected pos ...``), while the write here raises the ``OSError`` naming ``path``.
    """
    import torch

    buffer = io.BytesIO()
    torch.save(dict(content), buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return sha256_hex(data)


def load_tensors(path: str | os.PathLike[str], sha256: str | None, kind: str) -> Any:
    """What :func:`save_tensors` wrote to ``path``, read with ``weights_only=True`` (no code runs).

    Raises:
        ValueError: the checksum is not ``sha256`` (when given), or the file does not read as a ``kind``.
    """
    import torch

    data = Path(path).read_bytes()
    if sha256 is not None and sha256_hex(data) != sha256:
        raise ValueError(f"{path}: checksum mismatch (the file is damaged or was replaced)")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, pickle errors, EOFError... for a cut file
        raise ValueError(f"{path}: not a readable {kind} ({type(err).__name__})") from None


def _unpickle(input_shape: tuple[int, ...], layers: tuple[LayerSpec, ...], skips: tuple[tuple[int, int], ...],
              arrays: Mapping[str, np.ndarray], hparams: Mapping[str, Any], gap: bool,
              state: Mapping[str, Mapping[str, np.ndarray]]) -> Genome:
    """The genome :meth:`Genome.__reduce__` pickled; copies the arrays (unpicklers may hand out read-only ones)."""
    if not arrays and not state:  # a skeleton (the Optuna mirror's process receives those) needs no torch
        return Genome(input_shape, layers, skips, {}, hparams, gap, {})
    import torch

    optim_state = {name: {k: torch.tensor(a) for k, a in entry.items()} for name, entry in state.items()}
    weights = {k: torch.tensor(a) for k, a in arrays.items()}
    return Genome(input_shape, layers, skips, weights, hparams, gap, optim_state)


def __getattr__(name: str) -> Any:
    """``ACTIVATIONS`` and ``GenomeNet`` live in :mod:`evo.network` (torch); reachable here as before."""
    if name in ("ACTIVATIONS", "GenomeNet"):
        from evo import network

        return getattr(network, name)
    raise AttributeError(f"module 'evo.genome' has no attribute {name!r}")
