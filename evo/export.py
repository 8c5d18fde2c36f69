"""Export a genome for use outside evo: TorchScript, ONNX, ``torch.export`` or evo's own genome file.

What evolution found is only useful once it runs somewhere else, on the data as
its users have it. So every format takes **raw inputs** and knows the data's
**class labels**: the task's :class:`~evo.preprocessing.Preprocessing` (pixel
scaling, standardisation with training-split statistics) is a module with
buffers in front of the network (:class:`~evo.preprocessing.RawInputs`), and its
description — class labels included — travels in the file next to the
genome's description (its JSON), so :func:`evo.load` gives back the module, the
architecture and the labels:

- ``torchscript`` (``<id>.torchscript.pt``): ``torch.jit.trace`` of the eval-mode
  module (a genome's control flow is fixed by its structure, so tracing is exact;
  dropout is the identity in eval mode); the descriptions are the extra files
  ``genome.json`` and ``preprocessing.json``. Runs in C++/LibTorch without Python.
  (Deprecated upstream in favour of:)
- ``exported_program`` (``<id>.pt2``): ``torch.export`` of the eval-mode module with
  a dynamic batch axis (``torch.export.save``'s archive, the same extra files),
  for AOTInductor and ExecuTorch.
- ``onnx`` (``<id>.onnx``): torch's default (dynamo) exporter, one self-contained
  file with a dynamic batch axis, input ``input`` and output ``output``; the
  descriptions are ``metadata_props`` ``evo.genome`` and ``evo.preprocessing``.
- ``state_dict`` (``<id>.state_dict.pt``): a dict of the genome JSON, its
  ``state_dict`` and the preprocessing, loadable with ``torch.load(weights_only=True)``.

An export never replaces an existing file unless asked to (``overwrite=True``,
``evo export --force``); it is written to a temporary file and renamed, so a
failed export leaves nothing behind.

Example:
    >>> path = export_genome(Genome.mlp(4, [8], 2), "torchscript", Path(tmp) / "net.torchscript.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from evo.errors import ConfigError
from evo.files import atomic_write_with
from evo.genome import Genome
from evo.load import GENOME_JSON
from evo.preprocessing import PREPROCESSING_JSON, Preprocessing

if TYPE_CHECKING:
    from evo.store import RunStore

__all__ = [
    "ONNX_METADATA_KEY", "ONNX_PREPROCESSING_KEY", "ExportFormat", "example_input", "export_genome", "run_preprocessing",
]

#: ``metadata_props`` key of the genome description in an ONNX model.
ONNX_METADATA_KEY = "evo.genome"
#: ``metadata_props`` key of the preprocessing description (class labels included) in an ONNX model.
ONNX_PREPROCESSING_KEY = "evo.preprocessing"
#: batch size of the example input used for tracing (2, not 1: size-1 dims get specialised).
_EXAMPLE_BATCH = 2


class ExportFormat(str, Enum):
    """The file formats :func:`export_genome` writes."""

    TORCHSCRIPT = "torchscript"
    ONNX = "onnx"
    STATE_DICT = "state_dict"
    EXPORTED_PROGRAM = "exported_program"

    @property
    def suffix(self) -> str:
        """The file suffix, one per format (``<id><suffix>``: no two formats share a name)."""
        return {"onnx": ".onnx", "exported_program": ".pt2"}.get(self.value, f".{self.value}.pt")


def export_genome(
    genome: Genome,
    fmt: ExportFormat | str,
    out: str | os.PathLike[str],
    *,
    preprocessing: Preprocessing | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``genome`` (architecture and weights) and its preprocessing to ``out`` in format ``fmt``.

    Args:
        genome: a genome with weights (not a weightless skeleton).
        fmt: ``"torchscript"``, ``"onnx"``, ``"state_dict"`` or ``"exported_program"``.
        out: file to write; missing parent folders are created.
        preprocessing: the task's (:meth:`Task.preprocessing`, :func:`run_preprocessing`): the export then
            takes raw inputs and records the class labels; ``None``: inputs go to the genome as they are.
        overwrite: replace an existing ``out``; else an existing file is an error.

    Returns:
        ``out`` as a :class:`Path`.

    Raises:
        ConfigError: unknown ``fmt``, a genome without weights, or ``out`` existing, a folder or not writable.
    """
    allowed = [f.value for f in ExportFormat]
    if fmt not in allowed:
        raise ConfigError(f"export fmt={fmt!r} is not supported; allowed: {allowed}")
    if not genome.weights:
        raise ConfigError("export genome has no weights (a skeleton); load the stored genome first")
    out = Path(out)
    if out.is_dir():  # torch's writers would fail with an obscure RuntimeError
        raise ConfigError(f"export out={str(out)!r} is a folder; give a file path, e.g. {str(out / 'model.pt')!r}")
    if out.exists() and not overwrite:
        raise ConfigError(f"export out={str(out)!r} exists; remove it, or replace it with --force (overwrite=True)")
    writers: dict[ExportFormat, Callable[[Genome, Preprocessing, Path], None]] = {
        ExportFormat.TORCHSCRIPT: _save_torchscript,
        ExportFormat.ONNX: _save_onnx,
        ExportFormat.STATE_DICT: _save_state_dict,
        ExportFormat.EXPORTED_PROGRAM: _save_exported_program,
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(out.parent, os.W_OK):  # torch's writers would fail with an obscure RuntimeError
            raise PermissionError(errno.EACCES, "permission denied")
        # the temporary file keeps the format's suffix: torch checks it
        atomic_write_with(out, lambda tmp: writers[ExportFormat(fmt)](genome, preprocessing or Preprocessing(), tmp),
                          suffix=out.suffix)
    except OSError as err:
        raise ConfigError(f"export out={str(out)!r} is not writable: {err.strerror or err}") from err
    return out


def run_preprocessing(store: RunStore) -> Preprocessing:
    """A run's preprocessing: its ``preprocessing.json``, or for a run made before that file was written,
    rebuilt from the run's config (which builds the task, so its data must be at hand)."""
    recorded = store.load_preprocessing()
    if recorded is not None:
        return recorded
    from evo.config import load_config
    from evo.task_kinds import build_task

    config = load_config(store.config_path)
    return build_task(config.task, config.plasticity).preprocessing()


def example_input(genome: Genome, batch: int = _EXAMPLE_BATCH) -> torch.Tensor:
    """A zero input batch of the genome's input shape, for tracing and shape checks."""
    return torch.zeros(batch, *genome.input_shape)


def _eval_module(genome: Genome, preprocessing: Preprocessing) -> nn.Module:
    """The genome's network behind its preprocessing, in eval mode (dropout off: the inference graph)."""
    return preprocessing.wrap(genome.to_module(), genome.input_shape).eval()


def _extra_files(genome: Genome, preprocessing: Preprocessing) -> dict[str, str]:
    return {GENOME_JSON: genome.to_json(), PREPROCESSING_JSON: preprocessing.to_json()}


def _save_state_dict(genome: Genome, preprocessing: Preprocessing, out: Path) -> None:
    data = {"genome": genome.to_dict(), "weights": dict(genome.weights), "preprocessing": preprocessing.to_dict()}
    torch.save(data, out)


def _save_torchscript(genome: Genome, preprocessing: Preprocessing, out: Path) -> None:
    # TorchScript is deprecated in favour of torch.export but still the format LibTorch runs; silence the notice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = _eval_module(genome, preprocessing)
        traced = torch.jit.trace(module, example_input(genome))  # type: ignore[no-untyped-call]
        torch.jit.save(traced, str(out), _extra_files=_extra_files(genome, preprocessing))


def _batch_dynamic() -> tuple[dict[int, Any], ...]:
    """``dynamic_shapes`` for the single input: any batch size."""
    return ({0: torch.export.Dim("batch", min=1)},)


def _save_exported_program(genome: Genome, preprocessing: Preprocessing, out: Path) -> None:
    module = _eval_module(genome, preprocessing)
    program = torch.export.export(module, (example_input(genome),), dynamic_shapes=_batch_dynamic())
    torch.export.save(program, out, extra_files=_extra_files(genome, preprocessing))


def _save_onnx(genome: Genome, preprocessing: Preprocessing, out: Path) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
    except ImportError as err:  # an optional extra: say how to get it
        raise ConfigError("export fmt='onnx' needs onnx and onnxscript: pip install 'neuroplastic-evo[export]'") from err
    program = torch.onnx.export(
        _eval_module(genome, preprocessing),
        (example_input(genome),),
        dynamo=True,
        dynamic_shapes=_batch_dynamic(),
        input_names=["input"],
        output_names=["output"],
        verbose=False,
    )
    if program is None:  # only the legacy exporter returns None
        raise RuntimeError("torch.onnx.export returned no program")
    model = program.model_proto
    for key, value in ((ONNX_METADATA_KEY, genome.to_json()), (ONNX_PREPROCESSING_KEY, preprocessing.to_json())):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save_model(model, str(out))
