"""Export a genome for use outside evo: TorchScript, ONNX, or evo's own genome file.

What evolution found is only useful once it runs somewhere else. Every format
carries the genome's description (its JSON) next to the weights, so
:func:`evo.load` can give back both the module and the architecture:

- ``torchscript``: ``torch.jit.trace`` of the eval-mode module (a genome's
  control flow is fixed by its structure, so tracing is exact; dropout is the
  identity in eval mode); the JSON is stored as the extra file ``genome.json``.
  Runs in C++/LibTorch without Python. (Deprecated upstream in favour of:)
- ``exported_program``: ``torch.export`` of the eval-mode module with a
  dynamic batch axis (``torch.export.save``'s ``.pt2`` archive, the JSON as
  the extra file ``genome.json``), for AOTInductor and ExecuTorch.
- ``onnx``: torch's default (dynamo) exporter, one self-contained file with a
  dynamic batch axis, input ``input`` and output ``output``; the JSON is
  stored in the model's ``metadata_props`` under ``evo.genome``.
- ``state_dict``: :meth:`Genome.save`'s file (genome JSON + ``state_dict``),
  loadable with ``torch.load(weights_only=True)``.

Example:
    >>> path = export_genome(Genome.mlp(4, [8], 2), "torchscript", Path(tmp) / "net.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import warnings
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from evo.genome import Genome, GenomeNet
from evo.load import GENOME_JSON

__all__ = ["ONNX_METADATA_KEY", "ExportFormat", "example_input", "export_genome"]

#: ``metadata_props`` key of the genome description in an ONNX model.
ONNX_METADATA_KEY = "evo.genome"
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
        """The conventional file suffix, for callers that name the output (e.g. the CLI)."""
        return {"onnx": ".onnx", "exported_program": ".pt2"}.get(self.value, ".pt")


def export_genome(genome: Genome, fmt: ExportFormat | str, out: str | os.PathLike[str]) -> Path:
    """Write ``genome`` (architecture and weights) to ``out`` in format ``fmt``.

    Args:
        genome: a genome with weights (not a weightless skeleton).
        fmt: ``"torchscript"``, ``"onnx"``, ``"state_dict"`` or ``"exported_program"``.
        out: file to write; missing parent folders are created.

    Returns:
        ``out`` as a :class:`Path`.

    Raises:
        ValueError: unknown ``fmt``, a genome without weights, or ``out`` a folder or not writable.
    """
    allowed = [f.value for f in ExportFormat]
    if fmt not in allowed:
        raise ValueError(f"export fmt={fmt!r} is not supported; allowed: {allowed}")
    if not genome.weights:
        raise ValueError("export genome has no weights (a skeleton); load the stored genome first")
    out = Path(out)
    if out.is_dir():  # torch's writers would fail with an obscure RuntimeError
        raise ValueError(f"export out={str(out)!r} is a folder; give a file path, e.g. {str(out / 'model.pt')!r}")
    writers = {
        ExportFormat.TORCHSCRIPT: _save_torchscript,
        ExportFormat.ONNX: _save_onnx,
        ExportFormat.STATE_DICT: Genome.save,
        ExportFormat.EXPORTED_PROGRAM: _save_exported_program,
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(out.parent, os.W_OK):  # torch's writers would fail with an obscure RuntimeError
            raise PermissionError(errno.EACCES, "permission denied")
        writers[ExportFormat(fmt)](genome, out)
    except OSError as err:
        raise ValueError(f"export out={str(out)!r} is not writable: {err.strerror or err}") from err
    return out


def example_input(genome: Genome, batch: int = _EXAMPLE_BATCH) -> torch.Tensor:
    """A zero input batch of the genome's input shape, for tracing and shape checks."""
    return torch.zeros(batch, *genome.input_shape)


def _eval_module(genome: Genome) -> GenomeNet:
    module = genome.to_module()
    module.eval()  # dropout off: the exported graph is the inference graph
    return module


def _save_torchscript(genome: Genome, out: Path) -> None:
    # TorchScript is deprecated in favour of torch.export but still the format LibTorch runs; silence the notice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(_eval_module(genome), example_input(genome))  # type: ignore[no-untyped-call]
        torch.jit.save(traced, str(out), _extra_files={GENOME_JSON: genome.to_json()})


def _batch_dynamic() -> tuple[dict[int, Any], ...]:
    """``dynamic_shapes`` for the single input: any batch size."""
    return ({0: torch.export.Dim("batch", min=1)},)


def _save_exported_program(genome: Genome, out: Path) -> None:
    program = torch.export.export(_eval_module(genome), (example_input(genome),), dynamic_shapes=_batch_dynamic())
    torch.export.save(program, out, extra_files={GENOME_JSON: genome.to_json()})


def _save_onnx(genome: Genome, out: Path) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
    except ImportError as err:  # an optional extra: say how to get it
        raise ValueError("export fmt='onnx' needs onnx and onnxscript: pip install 'neuroplastic-evo[export]'") from err
    program = torch.onnx.export(
        _eval_module(genome),
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
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, genome.to_json()
    onnx.save_model(model, str(out))
