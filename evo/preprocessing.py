"""What a task did to its data before the network saw it, so an exported network takes the data as it comes.

A supervised task scales pixels to [0, 1], standardises features with the training
split's statistics and numbers class labels ``0..K-1``; the network it trains gives
wrong answers on the data as its users have it (a digits MLP: 0.97 test accuracy
standardised, 0.78 on the raw pixels). A :class:`Preprocessing` records those steps:
:meth:`Preprocessing.wrap` puts the input steps in front of a network as an
``nn.Module`` with buffers, so a TorchScript, ONNX or ``torch.export`` graph carries
them, and :meth:`Preprocessing.labels` maps output indices back to the data's own
labels. Deliberately light (the standard library; torch only where a network is wrapped): the run
store and :func:`evo.load` use it, and reading a run (``evo show``) does not import torch.

Example:
    >>> import torch
    >>> prep = Preprocessing(scale=16.0, classes=("cat", "dog"))
    >>> net = prep.wrap(torch.nn.Linear(2, 2), (2,))
    >>> prep.labels(net(torch.tensor([[16.0, 0.0]])).argmax(1)) in (["cat"], ["dog"])
    True
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evo.errors import DataError

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["PREPROCESSING_JSON", "Label", "Preprocessing", "RawInputs"]

#: file name of a :class:`Preprocessing` as JSON: in a run directory, and inside TorchScript and .pt2 exports.
PREPROCESSING_JSON = "preprocessing.json"
#: a class label as the data has it: an integer, a number or a string (e.g. a CSV's ``"setosa"``).
Label = int | float | str


@dataclass(frozen=True)
class Preprocessing:
    """A task's data steps: ``x / scale``, then ``(x - mean) / std``; and its class labels.

    Attributes:
        scale: raw inputs are divided by it first (255 for ``uint8`` pixels, 16 for scikit-learn's digits).
        mean: per input element (flattened, after scaling), subtracted next; ``None``: not standardised.
        std: per input element, divided by last (zeros already replaced by 1); ``None`` with ``mean``.
        classes: the data's label of each class index (sorted as the task numbered them); ``None`` for
            regression or a task without labels.
    """

    scale: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: tuple[Label, ...] | None = None

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None) or (self.mean and len(self.mean) != len(self.std or ())):
            raise DataError("preprocessing: mean and std must come together, one value per input element each")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise DataError(f"preprocessing: scale must be a positive number, got {self.scale}")

    @property
    def changes_inputs(self) -> bool:
        """Whether inputs go through any step (else :meth:`wrap` returns the network itself)."""
        return self.scale != 1.0 or self.mean is not None

    def wrap(self, net: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
        """``net`` taking raw inputs of ``input_shape`` (a :class:`RawInputs`), or ``net`` when nothing changes them."""
        if not self.changes_inputs:
            return net
        size = math.prod(input_shape)
        if self.mean is not None and len(self.mean) != size:
            raise DataError(f"preprocessing: {len(self.mean)} means for an input of {size} elements {input_shape}")
        import torch

        from evo.network import RawInputs

        mean = torch.tensor(self.mean or (0.0,), dtype=torch.float32)
        std = torch.tensor(self.std or (1.0,), dtype=torch.float32)
        shape = input_shape if self.mean is not None else ()
        scale = torch.tensor(self.scale, dtype=torch.float32)
        return RawInputs(net, scale, mean.reshape(shape), std.reshape(shape))

    def labels(self, indices: Tensor) -> list[Label]:
        """The data's labels of class ``indices`` (e.g. ``outputs.argmax(1)``).

        Raises:
            DataError: no class labels are recorded (regression, or a file that holds none).
        """
        if self.classes is None:
            raise DataError("preprocessing: no class labels recorded (a regression task or a bare genome file)")
        return [self.classes[i] for i in indices.reshape(-1).tolist()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; :meth:`from_dict` reads it back."""
        return {
            "scale": self.scale,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "classes": None if self.classes is None else list(self.classes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Preprocessing:
        """Inverse of :meth:`to_dict`, checked: ``source`` (the file) names the culprit in the error.

        Raises:
            DataError: not the data :meth:`to_dict` writes.
        """
        if not isinstance(data, dict) or not set(data) <= {"scale", "mean", "std", "classes"}:
            raise DataError(f"{source}: not a preprocessing description (keys scale, mean, std, classes)")
        try:
            return cls(
                float(data.get("scale", 1.0)),
                _floats(data.get("mean")),
                _floats(data.get("std")),
                None if data.get("classes") is None else tuple(_label(c) for c in data["classes"]),
            )
        except (TypeError, ValueError) as err:
            raise DataError(f"{source}: malformed preprocessing description ({err})") from None

    @classmethod
    def from_json(cls, text: str | bytes, source: str) -> Preprocessing:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{source}: preprocessing description is not JSON ({err})") from None
        return cls.from_dict(data, source)


def _floats(values: Any) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def _label(value: Any) -> Label:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"class label {value!r} is not an integer, number or string")
    return value


def __getattr__(name: str) -> Any:
    """``RawInputs`` (an ``nn.Module``) lives in :mod:`evo.network` with the other torch modules."""
    if name == "RawInputs":
        from evo.network import RawInputs

        return RawInputs
    raise AttributeError(f"module 'evo.preprocessing' has no attribute {name!r}")
