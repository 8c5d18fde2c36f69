"""Data at scale: npz files memory-mapped, uint8 pixels kept as bytes until a batch is used, and a data set
loaded (and copied to a device) once per process however many evaluations use it."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from evo.genome import Genome
from evo.network import as_inputs
from evo.tasks import Budget
from evo.tasks import data as data_module
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.data import clear_cache, load_dataset
from evo.tasks.readers import Arrays, read_npz
from evo.tasks.supervised import SupervisedTask


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


def write_pixels(path: Path, n: int = 60, compressed: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 6, 6), dtype=np.uint8)
    save = np.savez_compressed if compressed else np.savez
    save(path, x=x, y=np.arange(n) % 3)
    return x


def test_uncompressed_npz_members_are_memory_mapped_with_their_values(tmp_path: Path) -> None:
    x = write_pixels(tmp_path / "d.npz")
    fortran = np.asfortranarray(np.random.default_rng(1).random((5, 3)))
    np.savez(tmp_path / "f.npz", x=fortran, y=np.arange(5), empty=np.zeros(0))
    arrays = read_npz(tmp_path / "d.npz", mmap=True)
    assert isinstance(arrays.x, np.memmap) and np.array_equal(arrays.x, x) and np.array_equal(arrays.y, np.arange(60) % 3)
    f = read_npz(tmp_path / "f.npz", mmap=True)
    assert isinstance(f.x, np.memmap) and np.array_equal(f.x, fortran)
    assert not isinstance(read_npz(tmp_path / "d.npz").x, np.memmap)  # mapping is asked for


def test_compressed_npz_members_are_read(tmp_path: Path) -> None:
    x = write_pixels(tmp_path / "c.npz", compressed=True)
    arrays = read_npz(tmp_path / "c.npz", mmap=True)
    assert not isinstance(arrays.x, np.memmap) and np.array_equal(arrays.x, x)


def test_auto_maps_a_file_larger_than_a_workers_memory_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pixels(tmp_path / "d.npz")
    mapped: list[bool] = []
    real = data_module.read_npz
    monkeypatch.setattr(data_module, "read_npz", lambda path, mmap=False: mapped.append(mmap) or real(path, mmap))
    cfg = SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz"))
    in_memory = load_dataset(cfg)
    monkeypatch.setattr(data_module, "memory_share", lambda: 1024)  # the file is larger than this
    clear_cache()
    from_map = load_dataset(cfg)
    assert mapped == [False, True]
    assert torch.equal(from_map.x_train, in_memory.x_train) and torch.equal(from_map.x_test, in_memory.x_test)
    clear_cache()
    load_dataset(cfg.model_copy(update={"mmap": "never"}))
    assert mapped[-1] is False


def test_shipped_test_split_of_a_mapped_file_stays_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    x, x_test = rng.integers(0, 256, (40, 4, 4), dtype=np.uint8), rng.integers(0, 256, (10, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(40) % 2, x_test=x_test, y_test=np.arange(10) % 2)
    read: list[Arrays] = []
    real = data_module.read_npz
    monkeypatch.setattr(data_module, "read_npz", lambda path, mmap=False: read.append(real(path, mmap)) or read[-1])
    data = load_dataset(SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz"), mmap="always"))
    assert isinstance(read[0].x_test, np.memmap)
    assert np.shares_memory(read[0].x_test, data.x_test.numpy())  # a view of the file, never read whole
    assert torch.equal(data.x_test, torch.as_tensor(x_test.reshape(10, -1)))


def _mapped_file(t: torch.Tensor) -> str | None:
    """The file whose mapping holds a tensor's memory (Linux's /proc/self/maps), None for anonymous memory."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        low, high = (int(a, 16) for a in fields[0].split("-"))
        if low <= t.data_ptr() < high:
            return fields[5] if len(fields) == 6 and fields[5].startswith("/") else None
    return None


def test_mapped_train_and_validation_rows_are_mapped_from_a_split_file_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pixels(tmp_path / "d.npz", n=90)
    monkeypatch.setenv("EVO_CACHE_DIR", str(tmp_path / "cache"))
    cfg = SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz"), as_image=True)
    in_memory = load_dataset(cfg.model_copy(update={"mmap": "never"}))
    mapped = load_dataset(cfg.model_copy(update={"mmap": "always"}))
    files = {split: _mapped_file(getattr(mapped, f"x_{split}")) for split in ("train", "val", "test")}
    assert all(f is not None and Path(f).parent == tmp_path / "cache" / "splits" for f in files.values())
    for split in ("train", "val", "test"):
        a, b = getattr(mapped, f"x_{split}"), getattr(in_memory, f"x_{split}")
        assert a.dtype == b.dtype == torch.uint8 and torch.equal(a, b)
        assert torch.equal(getattr(mapped, f"y_{split}"), getattr(in_memory, f"y_{split}"))
    batch = mapped.x_train[torch.tensor([5, 0, 3])]  # a batch gathers its rows from the map
    assert torch.equal(batch, in_memory.x_train[torch.tensor([5, 0, 3])])


def test_a_split_file_is_written_once_and_replaced_when_the_split_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pixels(tmp_path / "d.npz", n=90)
    monkeypatch.setenv("EVO_CACHE_DIR", str(tmp_path / "cache"))
    writes: list[Path] = []
    real = data_module._write_rows
    monkeypatch.setattr(data_module, "_write_rows", lambda target, *a: writes.append(target) or real(target, *a))
    cfg = SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz"), mmap="always")
    load_dataset(cfg)
    clear_cache()  # another worker of the machine: it maps the files the first one wrote
    load_dataset(cfg)
    assert len(writes) == 3 and len(set(writes)) == 3
    first = sorted((tmp_path / "cache" / "splits").glob("*.npy"))
    assert len(first) == 3
    load_dataset(cfg.model_copy(update={"split_seed": 1}))
    second = sorted((tmp_path / "cache" / "splits").glob("*.npy"))
    assert len(second) == 3 and not set(first) & set(second)  # the old split's files are gone


def test_an_unwritable_cache_copies_the_rows_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pixels(tmp_path / "d.npz")
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("EVO_CACHE_DIR", str(tmp_path / "cache"))
    cfg = SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz"))
    with pytest.warns(UserWarning, match="copied into each worker's memory"):
        mapped = load_dataset(cfg.model_copy(update={"mmap": "always"}))
    assert _mapped_file(mapped.x_train) is None
    assert torch.equal(mapped.x_train, load_dataset(cfg.model_copy(update={"mmap": "never"})).x_train)


def test_uint8_pixels_stay_uint8_in_the_split_and_become_floats_per_batch(tmp_path: Path) -> None:
    x = write_pixels(tmp_path / "d.npz")
    data = load_dataset(SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz"), as_image=True))
    assert {t.dtype for t in (data.x_train, data.x_val, data.x_test)} == {torch.uint8}
    assert data.preprocessing.scale == 255.0
    inputs = as_inputs(data.x_train)
    assert inputs.dtype == torch.float32 and float(inputs.max()) <= 1.0
    assert set(np.unique(inputs.numpy() * 255).round().astype(int)) <= set(np.unique(x).tolist())
    standardized = load_dataset(SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz"), standardize=True))
    assert standardized.x_train.dtype == torch.float32  # statistics need floats


def test_a_task_from_a_config_loads_its_data_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pixels(tmp_path / "d.npz")
    builds: list[str] = []
    real = data_module._build
    monkeypatch.setattr(data_module, "_build", lambda cfg: builds.append(cfg.dataset) or real(cfg))
    task = SupervisedTask(SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz")))
    genome = Genome.mlp(task.input_shape, hidden=(4,), output_size=task.output_size)
    for seed in range(3):  # as Ray runs it: a freshly unpickled task per call, without data
        shipped = pickle.loads(pickle.dumps(task))
        assert shipped._data is None
        assert shipped.evaluate(genome, Budget(steps=2), "cpu", seed).ok
    assert builds == ["npz"]


def test_data_is_copied_to_a_device_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pixels(tmp_path / "d.npz")
    cfg = SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz"))
    copies: list[str] = []
    real = data_module.SplitData.to
    monkeypatch.setattr(data_module.SplitData, "to", lambda self, device: copies.append(device) or real(self, device))
    task = SupervisedTask(cfg)
    on_meta = pickle.loads(pickle.dumps(task)).on("meta")  # the meta device stands in for a GPU
    assert on_meta.x_train.device.type == "meta" and on_meta.x_train.dtype == torch.uint8
    assert pickle.loads(pickle.dumps(task)).on("meta") is on_meta and copies == ["meta"]
    assert task.on("cpu") is task.data
    in_memory = SupervisedTask(load_dataset(cfg))  # data given as tensors: kept per task object
    assert in_memory.on("meta") is in_memory.on("meta") and copies == ["meta", "meta"]
    assert pickle.loads(pickle.dumps(in_memory))._on_device == {}
