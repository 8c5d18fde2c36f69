"""``evo.load``: an exported or saved genome back as an inference-ready ``nn.Module``.

Deliberately light — torch, the standard library and :mod:`evo.genome` only —
so a serving process can ``import evo; evo.load(path)`` without Ray, Optuna or
the evolution engine. The file's *content* decides how it is read, not its
suffix: a TorchScript archive (a zip with a ``code/`` folder) goes through
``torch.jit.load``, a ``torch.export`` archive (a zip with an
``archive_format`` entry) through ``torch.export.load``; anything else must be
an evo genome file
(:meth:`Genome.save`, ``export_genome(..., "state_dict")``, a run's
``genomes/*.pt``), read with ``weights_only=True`` so no code runs.

Example:
    >>> model = evo.load("runs/demo/best.pt")  # doctest: +SKIP
    >>> model(torch.zeros(1, *model.genome.input_shape))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from evo.genome import Genome

__all__ = ["GENOME_JSON", "LoadedModel", "load"]

#: name of the genome description inside a TorchScript file (``_extra_files``); evo.export writes it.
GENOME_JSON = "genome.json"
_ONNX_MAGIC = b"\x08"  # an ONNX ModelProto starts with field 1 (ir_version), varint


@dataclass(frozen=True)
class LoadedModel:
    """A loaded network: call it like the module.

    Attributes:
        module: a plain ``nn.Module`` (``GenomeNet``, a TorchScript module, or an exported program's
            graph module, which was traced in eval mode and so has no dropout).
        genome: the genome (architecture and weights) when the file describes one, else ``None``.
        format: ``"state_dict"``, ``"torchscript"`` or ``"exported_program"``.
    """

    module: nn.Module
    genome: Genome | None
    format: str

    @property
    def description(self) -> dict[str, Any] | None:
        """The architecture as JSON-ready data (:meth:`Genome.to_dict`), or ``None``."""
        return self.genome.to_dict() if self.genome is not None else None

    def __call__(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            out: Tensor = self.module(x)
        return out


def load(path: str | os.PathLike[str]) -> LoadedModel:
    """Read a TorchScript export or an evo genome file into an eval-mode module.

    Args:
        path: a file written by ``export_genome`` (any format but ``onnx``) or :meth:`Genome.save`.

    Returns:
        The module, its genome where the file has one, and the format found.

    Raises:
        ValueError: the file is missing, an ONNX model (run it with onnxruntime), or not a format evo wrote.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"load path={str(path)!r}: no such file")
    entries = _zip_entries(path)
    if any("/code/" in name for name in entries):  # TorchScript keeps compiled code; torch.save's zip has none
        return _load_torchscript(path)
    if any(name.endswith("/archive_format") for name in entries):
        return _load_exported_program(path)
    if _is_onnx(path):
        raise ValueError(f"load path={str(path)!r} is an ONNX model: run it with onnxruntime.InferenceSession")
    try:
        genome = Genome.load(path)
    except (RuntimeError, OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"load path={str(path)!r}: not a TorchScript or evo genome file ({err})") from err
    module = genome.to_module()
    module.eval()
    return LoadedModel(module, genome, "state_dict")


def _zip_entries(path: Path) -> list[str]:
    if not zipfile.is_zipfile(path):
        return []
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def _is_onnx(path: Path) -> bool:
    with path.open("rb") as file:
        head = file.read(1)
    return path.suffix.lower() == ".onnx" or (head == _ONNX_MAGIC and not zipfile.is_zipfile(path))


def _load_torchscript(path: Path) -> LoadedModel:
    extra = {GENOME_JSON: ""}
    with warnings.catch_warnings():  # TorchScript is deprecated upstream, still the LibTorch format
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)  # type: ignore[no-untyped-call]
    module.eval()
    return LoadedModel(module, _described_genome(extra[GENOME_JSON], module), "torchscript")


def _load_exported_program(path: Path) -> LoadedModel:
    extra = {GENOME_JSON: ""}
    module = torch.export.load(path, extra_files=extra).module()  # eval() is unsupported: traced in eval mode
    return LoadedModel(module, _described_genome(extra[GENOME_JSON], module), "exported_program")


def _described_genome(text: str | bytes, module: nn.Module) -> Genome | None:
    """The genome an export describes, with the module's weights (same ``state_dict`` names)."""
    return Genome.from_dict(json.loads(text), weights=module.state_dict()) if text else None
