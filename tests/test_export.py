"""Export round-trips (TorchScript, ONNX, state_dict) and ``evo.load``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import evo
from evo.export import ONNX_METADATA_KEY, ExportFormat, export_genome
from evo.genome import Genome, LayerKind, LayerSpec

CONV, LINEAR = LayerKind.CONV, LayerKind.LINEAR


def mlp_genome() -> Genome:
    """Dropout, a skip and a non-ReLU activation: everything eval mode must get right."""
    layers = [LayerSpec(LINEAR, 16, "tanh", 0.3), LayerSpec(LINEAR, 12, "relu", 0.2), LayerSpec(LINEAR, 16, "gelu"), LayerSpec(LINEAR, 3, "identity")]
    return Genome.random((10,), layers, skips=[(0, 2), (1, 3)], seed=1)


def cnn_genome() -> Genome:
    layers = [
        LayerSpec(CONV, 4, "relu", 0.1, 3, 1),
        LayerSpec(CONV, 6, "relu", 0.0, 5, 1),
        LayerSpec(CONV, 4, "elu", 0.0, 3, 2),
        LayerSpec(LINEAR, 8, "relu", 0.25),
        LayerSpec(LINEAR, 5, "identity"),
    ]
    return Genome.random((2, 8, 8), layers, skips=[(0, 2)], seed=2)


def tiny_genome() -> Genome:
    """Only the output layer: no hidden layer, no skip."""
    return Genome.mlp(3, [], 2, seed=3)


GENOMES = {"mlp": mlp_genome, "cnn": cnn_genome, "tiny": tiny_genome}


def reference(genome: Genome, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return genome.to_module().eval()(x)


def batch(genome: Genome, n: int = 5) -> torch.Tensor:
    return torch.randn(n, *genome.input_shape, generator=torch.Generator().manual_seed(n))


@pytest.mark.parametrize("kind", sorted(GENOMES))
@pytest.mark.parametrize("fmt", ["torchscript", "state_dict", "exported_program"])
def test_torch_formats_reload_to_identical_outputs(tmp_path: Path, kind: str, fmt: str) -> None:
    genome = GENOMES[kind]()
    path = export_genome(genome, fmt, tmp_path / f"{kind}{ExportFormat(fmt).suffix}")
    model = evo.load(path)
    assert model.format == fmt
    assert fmt == "exported_program" or not model.module.training  # an exported graph is fixed in eval mode
    for n in (1, 7):  # batch size is not baked in
        x = batch(genome, n)
        assert torch.equal(model(x), reference(genome, x))
    assert model.genome is not None and model.genome.to_dict() == genome.to_dict()
    assert all(torch.equal(model.genome.weights[k], v) for k, v in genome.weights.items())


def test_state_dict_export_is_plain_weights_only_torch_load(tmp_path: Path) -> None:
    genome = mlp_genome()
    data = torch.load(export_genome(genome, ExportFormat.STATE_DICT, tmp_path / "g.pt"), weights_only=True)
    assert data["genome"] == genome.to_dict()
    assert set(data["weights"]) == set(genome.weights)


@pytest.mark.parametrize("kind", ["cnn", "mlp"])  # the dynamo exporter takes seconds per model
def test_onnx_matches_onnxruntime(tmp_path: Path, kind: str) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    genome = GENOMES[kind]()
    path = export_genome(genome, "onnx", tmp_path / f"{kind}{ExportFormat.ONNX.suffix}")
    assert path.suffix == ".onnx"
    onnx.checker.check_model(str(path))
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(metadata[ONNX_METADATA_KEY]) == genome.to_dict()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 9):  # dynamic batch axis
        x = batch(genome, n)
        (out,) = session.run(None, {"input": x.numpy()})
        assert out.shape == (n, genome.output_size)
        assert torch.allclose(torch.from_numpy(out), reference(genome, x), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="onnxruntime"):
        evo.load(path)


def test_bad_format_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt='keras'.*allowed"):
        export_genome(mlp_genome(), "keras", tmp_path / "x")


def test_unwritable_path_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="not writable"):
        export_genome(mlp_genome(), "state_dict", blocker / "g.pt")


def test_a_read_only_folder_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evo.export.os.access", lambda path, mode: False)  # tests may run as root
    with pytest.raises(ValueError, match="not writable: permission denied"):
        export_genome(mlp_genome(), "torchscript", tmp_path / "m.pt")


def test_a_folder_as_out_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a folder; give a file path"):
        export_genome(mlp_genome(), "torchscript", tmp_path)


def test_weightless_skeleton_raises(tmp_path: Path) -> None:
    genome = mlp_genome()
    skeleton = Genome(genome.input_shape, genome.layers, genome.skips)
    with pytest.raises(ValueError, match="no weights"):
        export_genome(skeleton, "torchscript", tmp_path / "s.pt")


@pytest.mark.parametrize("content", [b"", b"hello world", b"PK\x03\x04broken zip"])
def test_load_rejects_foreign_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a TorchScript or evo genome file"):
        evo.load(path)


def test_load_rejects_other_torch_files(tmp_path: Path) -> None:
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a TorchScript or evo genome file"):
        evo.load(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no such file"):
        evo.load(tmp_path / "missing.pt")


def test_import_evo_and_load_stay_light(tmp_path: Path) -> None:
    """A serving process must not pay for Ray, Optuna or the engine."""
    path = export_genome(mlp_genome(), "torchscript", tmp_path / "net.pt")
    genome_file = export_genome(mlp_genome(), "state_dict", tmp_path / "net_genome.pt")
    code = (
        "import sys, torch, evo\n"
        f"for p in ({str(path)!r}, {str(genome_file)!r}):\n"
        "    m = evo.load(p); m(torch.zeros(2, 10))\n"
        "heavy = ('ray', 'optuna', 'evo.evolution', 'evo.tasks', 'evo.store', 'evo.export', 'evo.viz', 'onnx', 'matplotlib')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
