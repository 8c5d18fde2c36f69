"""load_dataset: bundled sets, file formats, scaling, seeded stratified splits, caching, errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.errors import DataError
from evo.network import as_inputs
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.data import clear_cache, load_dataset, shift_augment, split_indices

Writer = Callable[..., Any]  # the tiny-file writers from conftest.py


def cfg(**kwargs: object) -> SupervisedTaskConfig:
    return SupervisedTaskConfig.model_validate(kwargs)


@pytest.mark.parametrize(
    ("name", "shape", "classes", "total"),
    [("digits", (64,), 10, 1797), ("iris", (4,), 3, 150), ("wine", (13,), 3, 178), ("breast_cancer", (30,), 2, 569)],
)
def test_bundled_sets(name: str, shape: tuple[int, ...], classes: int, total: int) -> None:
    data = load_dataset(cfg(dataset=name))
    assert data.input_shape == shape and data.num_classes == classes == data.output_size
    sizes = [len(data.x_train), len(data.x_val), len(data.x_test)]
    assert sum(sizes) == total
    assert sizes[2] == round(0.2 * total)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert set(data.y_train.tolist()) == set(range(classes))


def test_digits_pixels_in_unit_range_and_image_shape() -> None:
    flat = load_dataset(cfg(dataset="digits"))
    image = load_dataset(cfg(dataset="digits", as_image=True))
    assert float(flat.x_train.min()) == 0.0 and float(flat.x_train.max()) == 1.0
    assert image.input_shape == (1, 8, 8)
    torch.testing.assert_close(image.x_train.flatten(1), flat.x_train)


def test_tabular_standardised_with_train_statistics() -> None:
    data = load_dataset(cfg(dataset="wine"))
    torch.testing.assert_close(data.x_train.mean(0), torch.zeros(13), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.x_train.std(0, unbiased=False), torch.ones(13), atol=1e-4, rtol=0)
    assert float(data.x_test.mean(0).abs().max()) > 1e-3  # the test split was not used for the statistics


def test_synthetic_is_configurable_and_seeded() -> None:
    a = load_dataset(cfg(dataset="synthetic", n_samples=300, n_features=20, n_informative=5, n_classes=3))
    b = load_dataset(cfg(dataset="synthetic", n_samples=300, n_features=20, n_informative=5, n_classes=3, split_seed=1))
    assert a.input_shape == (20,) and a.num_classes == 3
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 300
    assert not torch.equal(a.x_test, b.x_test)


def test_split_is_deterministic_and_seed_dependent() -> None:
    clear_cache()
    a = load_dataset(cfg(dataset="iris"))
    clear_cache()
    b = load_dataset(cfg(dataset="iris"))
    c = load_dataset(cfg(dataset="iris", split_seed=3))
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_test, c.y_test) or not torch.equal(a.x_test, c.x_test)


def test_split_is_stratified() -> None:
    data = load_dataset(cfg(dataset="digits"))
    for y in (data.y_val, data.y_test):
        share = torch.bincount(y, minlength=10).float() / len(y)
        assert float((share - 0.1).abs().max()) < 0.02


def test_max_train_samples_subsamples_train_only() -> None:
    full = load_dataset(cfg(dataset="digits"))
    small = load_dataset(cfg(dataset="digits", max_train_samples=100))
    assert len(small.x_train) == 100 and torch.equal(small.x_val, full.x_val) and torch.equal(small.x_test, full.x_test)
    assert torch.bincount(small.y_train, minlength=10).min() >= 9  # still stratified


def test_shift_augment_moves_pixels_and_zero_fills() -> None:
    image = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3)
    out = shift_augment(image, 1)
    assert out.shape == (9, 3, 3)
    assert np.array_equal(out[4], image[0])  # (dy, dx) = (0, 0) is the original
    assert np.array_equal(out[5], [[0, 1, 2], [0, 4, 5], [0, 7, 8]])  # (0, +1): one pixel right, zero column in
    assert np.array_equal(out[7], [[0, 0, 0], [1, 2, 3], [4, 5, 6]])  # (+1, 0): one pixel down


def test_augment_shift_grows_the_training_split_only() -> None:
    full = load_dataset(cfg(dataset="digits"))
    aug = load_dataset(cfg(dataset="digits", augment_shift=1))
    n = len(full.x_train)
    assert len(aug.x_train) == 9 * n and torch.equal(aug.y_train, full.y_train.repeat(9))
    assert torch.equal(aug.x_train[4 * n:5 * n], full.x_train)  # the unshifted copy
    assert torch.equal(aug.x_val, full.x_val) and torch.equal(aug.x_test, full.x_test)
    assert aug.input_shape == (64,)
    assert load_dataset(cfg(dataset="digits", as_image=True, augment_shift=1)).x_train.shape == (9 * n, 1, 8, 8)


def test_augment_shift_refuses_flat_features() -> None:
    with pytest.raises(ValueError, match="augment_shift: wine has flat features"):
        load_dataset(cfg(dataset="wine", augment_shift=1))


def test_cache_returns_the_same_object() -> None:
    assert load_dataset(cfg(dataset="iris")) is load_dataset(cfg(dataset="iris", objectives=["params"]))


@settings(max_examples=30, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=4, max_size=80),
    fraction=st.floats(0.05, 0.5),
    seed=st.integers(0, 2**40),
)
def test_split_indices_partition(labels: list[int], fraction: float, seed: int) -> None:
    y = np.array(labels)
    kept, held = split_indices(y, fraction, seed, stratify=True)
    assert sorted([*kept, *held]) == list(range(len(y)))
    assert len(held) == max(1, round(fraction * len(y)))
    again = split_indices(y, fraction, seed, stratify=True)
    assert np.array_equal(kept, again[0])


def test_mnist_folder_uses_shipped_test_split(tmp_path: Path, mnist_writer: Writer) -> None:
    written = mnist_writer(tmp_path / "MNIST" / "raw", n_train=30, n_test=9)
    data = load_dataset(cfg(dataset="mnist", path=str(tmp_path), as_image=True))
    assert data.input_shape == (1, 28, 28) and data.num_classes == 3
    assert len(data.x_test) == 9 and len(data.x_train) + len(data.x_val) == 30
    expected = torch.as_tensor(written["t10k-images-idx3-ubyte"] / 255.0, dtype=torch.float32)
    assert data.x_test.dtype == torch.uint8  # pixels stay bytes until a batch reaches the network
    torch.testing.assert_close(as_inputs(data.x_test)[:, 0], expected)
    assert load_dataset(cfg(dataset="mnist", path=str(tmp_path))).input_shape == (784,)


def test_cifar10_folder(tmp_path: Path, cifar_writer: Writer) -> None:
    cifar_writer(tmp_path / "cifar-10-batches-py", per_batch=8)
    data = load_dataset(cfg(dataset="cifar10", path=str(tmp_path), as_image=True, val_fraction=0.25))
    assert data.input_shape == (3, 32, 32) and data.num_classes == 8 and len(data.x_val) == 10
    assert 0.0 <= float(as_inputs(data.x_train).min()) and float(as_inputs(data.x_train).max()) <= 1.0


def test_npz_with_string_labels_and_image_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 5, 5)), np.array(["b", "a"] * 20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load_dataset(cfg(dataset="npz", path=str(tmp_path / "d.npz"), as_image=True))
    assert data.input_shape == (1, 5, 5) and data.num_classes == 2
    assert len(data.x_test) == 8


def test_csv_string_labels(tmp_path: Path) -> None:
    rows = [f"{i % 7},{(i * 3) % 5},{['setosa', 'virginica'][i % 2]}" for i in range(40)]
    (tmp_path / "d.csv").write_text("f1,f2,species\n" + "\n".join(rows) + "\n")
    data = load_dataset(cfg(dataset="csv", path=str(tmp_path / "d.csv")))
    assert data.input_shape == (2,) and data.num_classes == 2 and data.y_train.dtype == torch.int64


def test_csv_regression(tmp_path: Path) -> None:
    rows = [f"{i},{i * 0.5 + 0.25}" for i in range(30)]
    (tmp_path / "r.csv").write_text("x,y\n" + "\n".join(rows) + "\n")
    data = load_dataset(cfg(dataset="csv", path=str(tmp_path / "r.csv"), problem="regression"))
    assert data.num_classes is None and data.output_size == 1
    assert data.y_train.dtype == torch.float32 and data.y_train.shape == (len(data.x_train), 1)


def test_csv_real_targets_as_classes_ask_for_regression(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("x,y\n1,0.5\n2,1.5\n3,2.0\n")
    with pytest.raises(ValueError, match="r.csv: targets are not class labels.*problem: regression"):
        load_dataset(cfg(dataset="csv", path=str(tmp_path / "r.csv")))


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing.npz: file not found"):
        load_dataset(cfg(dataset="npz", path=str(tmp_path / "missing.npz")))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        load_dataset(cfg(dataset="fashion_mnist", path=str(tmp_path)))


def test_shift_augment_never_shifts_along_a_length_one_axis() -> None:
    rows = np.arange(1, 11, dtype=np.float32).reshape(2, 1, 1, 5)  # images of height 1
    out = shift_augment(rows, 1)
    assert out.shape == (6, 1, 1, 5)  # 3 horizontal shifts, no vertical ones
    assert (np.abs(out).sum(axis=(1, 2, 3)) > 0).all()  # no sample blanked
    assert np.array_equal(out[2:4], rows) and np.array_equal(out[4, 0, 0], [0, 1, 2, 3, 4])
    signals = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3)  # (n, C, L): shifted along L only
    assert np.array_equal(shift_augment(signals, 1, axes=(-1,))[0], [[2, 3, 0], [5, 6, 0]])


def test_augment_shift_refuses_samples_with_nothing_to_shift(tmp_path: Path) -> None:
    np.savez(tmp_path / "dots.npz", x=np.ones((20, 1, 1, 1), dtype=np.float32), y=np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"augment_shift: .*dots.npz's samples \(1, 1, 1\) have no position axis"):
        load_dataset(cfg(dataset="npz", path=str(tmp_path / "dots.npz"), augment_shift=1))


def test_mnist1d_is_generated_locally_with_the_papers_split(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mnist1d")
    import socket

    def no_network(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("mnist1d must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    state = np.random.get_state()[1].copy()
    data = load_dataset(cfg(dataset="mnist1d", as_image=True, val_fraction=0.25))
    assert np.array_equal(np.random.get_state()[1], state)  # the package seeds numpy's global generator: restored
    assert data.input_shape == (1, 40) and data.num_classes == 10
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (3000, 1000, 1000)
    assert torch.bincount(data.y_test, minlength=10).min() > 50
    flat = load_dataset(cfg(dataset="mnist1d", val_fraction=0.25, augment_shift=2))
    assert flat.input_shape == (40,) and len(flat.x_train) == 5 * 3000  # signals shift along L only
    assert torch.equal(flat.x_train[2 * 3000:3 * 3000], data.x_train.flatten(1))


def test_mnist1d_without_its_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # import fails as if not installed
    with pytest.raises(DataError, match=r"pip install 'neuroplastic-evo\[mnist1d\]'"):
        load_dataset(cfg(dataset="mnist1d", split_seed=99))
