"""``evo.load``: an exported or saved genome back as an inference-ready ``nn.Module`` that takes raw inputs.

Deliberately light — torch, the standard library, :mod:`evo.genome` and
:mod:`evo.preprocessing` only — so a serving process can
``import evo; evo.load(path)`` without Ray, Optuna or the evolution engine.

**Safe by default.** The file's *content* decides how it would be read, not its
suffix, and only formats that load without running code are read unless the
caller says the file is trusted: an evo genome file (``export_genome(...,
"state_dict")``, :meth:`Genome.save`, a run's ``best.pt``) is read with
``torch.load(weights_only=True)``. A
TorchScript archive (a zip with a ``code/`` folder) runs the code stored in it
when ``torch.jit.load`` reads it (a module's ``__setstate__``), and a
``torch.export`` archive (a zip with an ``archive_format`` entry) may reach
``torch.load(weights_only=False)`` inside ``torch.export.load``, which unpickles
anything: both raise :class:`~evo.errors.UntrustedFileError` unless
``trusted=True``.

**Raw inputs, the data's labels.** Exports carry the task's preprocessing (see
:mod:`evo.export`); a genome file inside a run directory takes the run's
``preprocessing.json``. :attr:`LoadedModel.module` takes raw inputs and
:meth:`LoadedModel.predict` returns the data's own class labels.

Example:
    >>> model = evo.load("runs/demo/export/7.state_dict.pt")  # doctest: +SKIP
    >>> model.predict(torch.zeros(1, *model.genome.input_shape))  # doctest: +SKIP
    [0]
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from evo.errors import DataError, UntrustedFileError
from evo.genome import Genome
from evo.paths import RUN_CONFIG
from evo.preprocessing import PREPROCESSING_JSON, Label, Preprocessing

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["GENOME_JSON", "LoadedModel", "load"]

#: name of the genome description inside a TorchScript or .pt2 file (extra files); evo.export writes it.
GENOME_JSON = "genome.json"
_ONNX_MAGIC = b"\x08"  # an ONNX ModelProto starts with field 1 (ir_version), varint


@dataclass(frozen=True)
class LoadedModel:
    """A loaded network: call it like the module, on raw inputs.

    Attributes:
        module: a plain ``nn.Module`` taking raw inputs: the genome's network behind its preprocessing
            (:class:`~evo.preprocessing.RawInputs`) where there is one, else ``GenomeNet`` itself; for a
            TorchScript or exported program, the module as stored (an exported program's graph module was
            traced in eval mode and so has no dropout).
        genome: the genome (architecture and weights) when the file describes one, else ``None``. Its own
            network (``genome.to_module()``) takes the *preprocessed* inputs.
        format: ``"state_dict"``, ``"torchscript"`` or ``"exported_program"``.
        preprocessing: the task's input steps and class labels (nothing recorded: the identity, no labels).
    """

    module: nn.Module
    genome: Genome | None
    format: str
    preprocessing: Preprocessing = Preprocessing()

    @property
    def description(self) -> dict[str, Any] | None:
        """The architecture as JSON-ready data (:meth:`Genome.to_dict`), or ``None``."""
        return self.genome.to_dict() if self.genome is not None else None

    @property
    def classes(self) -> tuple[Label, ...] | None:
        """The data's label of each output (e.g. a CSV's strings), or ``None`` (regression, none recorded)."""
        return self.preprocessing.classes

    def __call__(self, x: Tensor | ArrayLike) -> Tensor:
        """The outputs for a batch of raw samples: a tensor, a numpy array or nested lists (any numeric dtype)."""
        with torch.no_grad():
            out: Tensor = self.module(torch.as_tensor(x, dtype=torch.float32))
        return out

    def predict(self, x: Tensor | ArrayLike) -> list[Label]:
        """The data's class label of each raw sample in the batch ``x`` (as :meth:`__call__` takes it).

        Raises:
            DataError: the file records no class labels (a regression task, or a bare genome file).
        """
        return self.preprocessing.labels(self(x).argmax(dim=1))


def load(path: str | os.PathLike[str], *, trusted: bool = False) -> LoadedModel:
    """Read an evo export or genome file into an eval-mode module that takes raw inputs.

    Args:
        path: a file written by ``export_genome`` (any format but ``onnx``) or :meth:`Genome.save`.
        trusted: also read TorchScript and ``torch.export`` files, which run code stored in them:
            only for files from someone you trust.

    Returns:
        The module, its genome where the file has one, the format found and the preprocessing.

    Raises:
        UntrustedFileError: a TorchScript or ``torch.export`` file and ``trusted`` is false.
        ValueError: the file is missing, an ONNX model (run it with onnxruntime), or not a format evo wrote.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"load path={str(path)!r}: no such file")
    entries = _zip_entries(path)
    if any("/code/" in name for name in entries):  # TorchScript keeps compiled code; torch.save's zip has none
        return _load_torchscript(_trusted(path, "a TorchScript file", trusted))
    if any(name.endswith("/archive_format") for name in entries):
        return _load_exported_program(_trusted(path, "a torch.export archive", trusted))
    if _is_onnx(path):
        raise DataError(f"load path={str(path)!r} is an ONNX model: run it with onnxruntime.InferenceSession")
    return _load_genome_file(path)


def _trusted(path: Path, kind: str, trusted: bool) -> Path:
    if not trusted:
        raise UntrustedFileError(
            f"load path={str(path)!r} is {kind}, which runs code stored in it when loaded; "
            "if you trust who wrote it, call evo.load(path, trusted=True)"
        )
    return path


def _zip_entries(path: Path) -> list[str]:
    if not zipfile.is_zipfile(path):
        return []
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def _is_onnx(path: Path) -> bool:
    with path.open("rb") as file:
        head = file.read(1)
    return path.suffix.lower() == ".onnx" or (head == _ONNX_MAGIC and not zipfile.is_zipfile(path))


def _load_genome_file(path: Path) -> LoadedModel:
    """An evo genome file, read with ``weights_only=True`` (no code runs), and its preprocessing."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(data, dict) and ("genomes" in data or "index" in data):
            raise DataError(f"load path={str(path)!r} holds a whole generation of a run's individuals: export the "
                            "one you want with `evo export RUN_DIR --id N` and load that")
        if not isinstance(data, dict) or "genome" not in data or "weights" not in data:
            raise ValueError("no 'genome' and 'weights' entries")
        genome = Genome.from_dict(data["genome"], data["weights"])
    except pickle.UnpicklingError:  # weights_only met something else than tensors and plain data
        raise DataError(f"load path={str(path)!r}: not a TorchScript or evo genome file (it holds pickled objects "
                        "other than tensors and plain data, which could run code: refused)") from None
    except (RuntimeError, OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"load path={str(path)!r}: not a TorchScript or evo genome file ({err})") from err
    if "preprocessing" in data:
        preprocessing = Preprocessing.from_dict(data["preprocessing"], str(path))
    else:
        preprocessing = _run_preprocessing(path)
    module = preprocessing.wrap(genome.to_module(), genome.input_shape)
    module.eval()
    return LoadedModel(module, genome, "state_dict", preprocessing)


def _run_preprocessing(path: Path) -> Preprocessing:
    """The preprocessing of the run directory a genome file lies in (``best.pt``; ``individuals/<id>.pt`` of a run
    written before a generation's genomes shared one file)."""
    for folder in (path.parent, path.parent.parent):
        recorded = folder / PREPROCESSING_JSON
        if (folder / RUN_CONFIG).is_file() and recorded.is_file():
            return Preprocessing.from_json(recorded.read_bytes(), str(recorded))
    return Preprocessing()


def _load_torchscript(path: Path) -> LoadedModel:
    extra = {GENOME_JSON: "", PREPROCESSING_JSON: ""}
    with warnings.catch_warnings():  # TorchScript is deprecated upstream, still the LibTorch format
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)  # type: ignore[no-untyped-call]
    module.eval()
    return _described(module, "torchscript", extra, path)


def _load_exported_program(path: Path) -> LoadedModel:
    extra = {GENOME_JSON: "", PREPROCESSING_JSON: ""}
    module = torch.export.load(path, extra_files=extra).module()  # eval() is unsupported: traced in eval mode
    return _described(module, "exported_program", extra, path)


def _described(module: nn.Module, fmt: str, extra: dict[str, Any], path: Path) -> LoadedModel:
    """A loaded module with the genome and preprocessing its extra files describe (absent: none, identity).

    The genome's weights are the module's (the same ``state_dict`` names, under ``net.`` when the
    preprocessing wraps the network).
    """
    text = extra[PREPROCESSING_JSON]
    preprocessing = Preprocessing.from_json(text, str(path)) if text else Preprocessing()
    genome = None
    if extra[GENOME_JSON]:
        state = module.state_dict()
        if preprocessing.changes_inputs:
            state = {name.removeprefix("net."): value for name, value in state.items() if name.startswith("net.")}
        genome = Genome.from_dict(json.loads(extra[GENOME_JSON]), weights=state)
    return LoadedModel(module, genome, fmt, preprocessing)


class _CallableModule(ModuleType):
    """``evo.load`` is this module and also its function ``load``: ``import evo`` imports it on first use (it
    needs torch), and whichever of the two the name ends up bound to, ``evo.load(path)`` reads the file."""

    def __call__(self, path: str | os.PathLike[str], *, trusted: bool = False) -> LoadedModel:
        return load(path, trusted=trusted)


sys.modules[__name__].__class__ = _CallableModule
