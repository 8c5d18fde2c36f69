"""Export round-trips (TorchScript, ONNX, state_dict, exported_program) and ``evo.load``: raw inputs, the data's
labels, one file per format, and no code run from a file unless the caller trusts it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_iris

import evo
import evo.cli
from evo.errors import DataError, UntrustedFileError
from evo.export import ONNX_METADATA_KEY, ONNX_PREPROCESSING_KEY, ExportFormat, export_genome, run_preprocessing
from evo.genome import Genome, LayerKind, LayerSpec
from evo.preprocessing import PREPROCESSING_JSON, Preprocessing
from evo.inspect import load_run
from evo.store import RunStore
from evo.tasks.data import split_indices
from evo.testing import MkdirPayload, crafted_exported_program, crafted_torchscript

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


def cnn1d_genome() -> Genome:
    """Conv1d on a (C, L) signal with a batch norm (trained-looking statistics), a layer norm, a skip and gap."""
    layers = [
        LayerSpec(CONV, 4, "relu", 0.1, 5, 2, "batch"),
        LayerSpec(CONV, 6, "relu", 0.0, 3, 1, "layer"),
        LayerSpec(CONV, 4, "relu", 0.0, 3, 1),
        LayerSpec(LINEAR, 8, "relu", 0.0, norm="batch"),
        LayerSpec(LINEAR, 5, "identity"),
    ]
    genome = Genome.random((3, 20), layers, skips=[(0, 2)], seed=4, gap=True)
    gen = torch.Generator().manual_seed(4)
    return genome.with_weights({k: v + torch.rand(v.shape, generator=gen) if k.startswith("norms.") else v
                                for k, v in genome.weights.items()})


def flat_conv_genome() -> Genome:
    """Conv1d reading a flat (L,) input as one channel, flattened into the head."""
    return Genome.cnn((12,), channels=(3,), hidden=(4,), output_size=2, seed=5)


GENOMES = {"mlp": mlp_genome, "cnn": cnn_genome, "tiny": tiny_genome, "cnn1d": cnn1d_genome, "flat_conv": flat_conv_genome}


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
    model = evo.load(path, trusted=True)
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


@pytest.mark.parametrize("kind", ["cnn", "cnn1d", "mlp"])  # the dynamo exporter takes seconds per model
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
        "    m = evo.load(p, trusted=True); m(torch.zeros(2, 10))\n"
        "heavy = ('ray', 'optuna', 'evo.evolution', 'evo.tasks', 'evo.store', 'evo.export', 'evo.viz', 'onnx', 'matplotlib')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"


# ----------------------------------------------------------------- raw inputs and the data's labels
PREP = Preprocessing(scale=4.0, mean=tuple(0.1 * i for i in range(10)), std=tuple(1.0 + 0.2 * i for i in range(10)),
                     classes=("no", "maybe", "yes"))


def preprocessed_reference(genome: Genome, raw: torch.Tensor) -> torch.Tensor:
    """The genome's network on the inputs the task would have given it."""
    mean, std = torch.tensor(PREP.mean), torch.tensor(PREP.std)
    return reference(genome, (raw / PREP.scale - mean) / std)


@pytest.mark.parametrize("fmt", ["torchscript", "state_dict", "exported_program"])
def test_exports_take_raw_inputs_and_carry_the_labels(tmp_path: Path, fmt: str) -> None:
    genome = mlp_genome()
    model = evo.load(export_genome(genome, fmt, tmp_path / f"m{ExportFormat(fmt).suffix}", preprocessing=PREP),
                     trusted=True)
    raw = 10 * batch(genome, 7)
    assert torch.allclose(model(raw), preprocessed_reference(genome, raw), atol=1e-6, rtol=0)
    assert model.preprocessing == PREP and model.classes == ("no", "maybe", "yes")
    assert model.predict(raw) == [PREP.classes[i] for i in model(raw).argmax(1).tolist()]
    assert model.genome is not None and set(model.genome.weights) == set(genome.weights)  # not the buffers


def test_onnx_takes_raw_inputs_and_carries_the_labels(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    genome = mlp_genome()
    path = export_genome(genome, "onnx", tmp_path / "m.onnx", preprocessing=PREP)
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert Preprocessing.from_json(metadata[ONNX_PREPROCESSING_KEY], "onnx") == PREP
    raw = 10 * batch(genome, 7)
    (out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": raw.numpy()})
    assert torch.allclose(torch.from_numpy(out), preprocessed_reference(genome, raw), atol=1e-5, rtol=0)


def test_a_bare_genome_file_has_no_labels_to_predict(tmp_path: Path) -> None:
    genome = tiny_genome()
    genome.save(tmp_path / "g.pt")
    model = evo.load(tmp_path / "g.pt")
    assert model.classes is None and model.preprocessing == Preprocessing()
    with pytest.raises(DataError, match="no class labels"):
        model.predict(batch(genome))


IRIS = load_iris()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny runs whose tasks standardise their inputs: digits (standardize: true) and iris as a CSV file
    with the species' names as labels."""
    root = tmp_path_factory.mktemp("runs")
    names = IRIS.target_names[IRIS.target]
    rows = [",".join([*map(str, x), name]) for x, name in zip(IRIS.data, names)]
    (root / "iris.csv").write_text("a,b,c,d,species\n" + "\n".join(rows) + "\n")
    tasks = {"digits": {"dataset": "digits", "standardize": True}, "iris": {"dataset": "csv", "path": str(root / "iris.csv")}}
    for name, task in tasks.items():
        evo.run({"task": task, "evolution": {"generations": 0, "population_size": 2, "eval_steps": 60, "seed": 0},
                 "backend": {"kind": "serial"}}, run_dir=root / name)
    (root / "iris.csv").unlink()  # exports need the run directory alone
    return {name: root / name for name in tasks}


def raw_test_split(name: str) -> tuple[torch.Tensor, list[object]]:
    """The run's test samples as the user has them: pixels 0..16 / the CSV's numbers, and their labels."""
    source = load_digits() if name == "digits" else IRIS
    labels = source.target if name == "digits" else IRIS.target_names[IRIS.target]
    test = split_indices(source.target, 0.2, 0, stratify=True)[1]
    return torch.as_tensor(source.data[test], dtype=torch.float32), list(labels[test])


def run_test_accuracy(run_dir: Path) -> tuple[int, float]:
    best = json.loads((run_dir / "best.json").read_text())
    return best["id"], best["test"][str(best["id"])]["test_accuracy"]


def accuracy(predicted: list[object], labels: list[object]) -> float:
    return float(np.mean([p == y for p, y in zip(predicted, labels)]))


@pytest.mark.parametrize("name", ["digits", "iris"])
@pytest.mark.parametrize("fmt", [f.value for f in ExportFormat])
def test_export_on_raw_test_data_scores_the_runs_test_accuracy(runs: dict[str, Path], tmp_path: Path,
                                                                 name: str, fmt: str) -> None:
    best, expected = run_test_accuracy(runs[name])
    store = RunStore.open(runs[name])
    path = export_genome(store.load_genome(best), fmt, tmp_path / f"{best}{ExportFormat(fmt).suffix}",
                         preprocessing=run_preprocessing(store))
    x, labels = raw_test_split(name)
    if fmt == "onnx":
        onnx = pytest.importorskip("onnx")
        ort = pytest.importorskip("onnxruntime")
        metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        prep = Preprocessing.from_json(metadata[ONNX_PREPROCESSING_KEY], str(path))
        (out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
        predicted = prep.labels(torch.from_numpy(out).argmax(1))
    else:
        predicted = evo.load(path, trusted=True).predict(x)
    assert accuracy(predicted, labels) == expected
    assert expected > 0.5  # a trained network, so that a wrong preprocessing shows


@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_raw_data_as_numpy_float64_gives_the_same_answers(runs: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    """scikit-learn and numpy hand data over as float64 arrays: the export takes them as they are."""
    best, expected = run_test_accuracy(runs["digits"])
    store = RunStore.open(runs["digits"])
    path = export_genome(store.load_genome(best), fmt, tmp_path / f"{best}{ExportFormat(fmt).suffix}",
                         preprocessing=run_preprocessing(store))
    x, labels = raw_test_split("digits")
    model = evo.load(path, trusted=True)
    as_numpy = x.numpy().astype(np.float64)
    assert model.predict(as_numpy) == model.predict(x) and accuracy(model.predict(as_numpy), labels) == expected
    assert torch.equal(model.module(torch.from_numpy(as_numpy)), model.module(x))  # the module itself casts


def test_a_runs_genome_files_load_with_its_preprocessing(runs: dict[str, Path], tmp_path: Path) -> None:
    best, expected = run_test_accuracy(runs["iris"])
    x, labels = raw_test_split("iris")
    assert accuracy(evo.load(runs["iris"] / "best.pt").predict(x), labels) == expected
    copy = Path(shutil.copytree(runs["iris"], tmp_path / "old_run"))
    legacy = copy / "individuals" / f"{best}.pt"  # a run written when each individual had its own file
    load_run(copy).load_genome(best).save(legacy)
    assert accuracy(evo.load(legacy).predict(x), labels) == expected
    with pytest.raises(DataError, match="holds a whole generation of a run's individuals: export the one you want"):
        evo.load(copy / "individuals" / "gen_0000.pt")


def test_a_run_without_preprocessing_json_rebuilds_it_from_its_config(runs: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "old_run"
    shutil.copytree(runs["digits"], copy)
    (copy / PREPROCESSING_JSON).unlink()  # a run made before the file was written
    assert run_preprocessing(RunStore.open(copy)) == run_preprocessing(RunStore.open(runs["digits"]))


def test_cli_names_each_format_apart_and_never_overwrites_silently(runs: dict[str, Path], tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def export(*args: str) -> int:
        with pytest.raises(SystemExit) as exit_:
            evo.cli.cli(["export", str(runs["iris"]), "--out", str(tmp_path), *args])
        return int(exit_.value.code)

    best, _ = run_test_accuracy(runs["iris"])
    assert export("--format", "torchscript") == 0 and export("--format", "state_dict") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{best}.state_dict.pt", f"{best}.torchscript.pt"]
    before = (tmp_path / f"{best}.state_dict.pt").read_bytes()
    capsys.readouterr()
    assert export("--format", "state_dict") == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: export out={str(tmp_path / f'{best}.state_dict.pt')!r} exists; remove it, or replace it with "
        "--force (overwrite=True)"
    ]
    assert (tmp_path / f"{best}.state_dict.pt").read_bytes() == before
    assert export("--format", "state_dict", "--force") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{best}.state_dict.pt", f"{best}.torchscript.pt"]


# ----------------------------------------------------------------- untrusted files run no code
@pytest.mark.parametrize("kind", ["torchscript", "exported_program"])
def test_crafted_files_run_no_code_unless_trusted(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "best.pt"  # a name that promises a plain genome file
    if kind == "torchscript":
        crafted_torchscript(path, marker)
    else:
        crafted_exported_program(tiny_genome(), path, marker, tmp_path)
    with pytest.raises(UntrustedFileError, match=r"runs code stored in it.*evo.load\(path, trusted=True\)"):
        evo.load(path)
    assert not marker.exists()
    with contextlib.suppress(Exception), warnings.catch_warnings():  # the payload runs, whatever happens after
        warnings.simplefilter("ignore")
        evo.load(path, trusted=True)
    assert marker.exists(), "the crafted file really does run code when trusted"


def test_a_genome_file_with_a_pickled_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    genome = tiny_genome()
    torch.save({"genome": genome.to_dict(), "weights": dict(genome.weights), "x": MkdirPayload(str(marker))},
               tmp_path / "g.pt")
    with pytest.raises(DataError, match="pickled objects other than tensors and plain data"):
        evo.load(tmp_path / "g.pt")
    assert not marker.exists()
