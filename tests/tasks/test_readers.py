"""File readers on tiny files the tests write: IDX (plain, .gz, both layouts), CIFAR-10 batches, npz, csv."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evo.tasks.readers import read_cifar10, read_csv, read_idx, read_mnist, read_npz

Writer = Callable[..., Any]  # the tiny-file writers from conftest.py


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_mnist_reads_plain_and_gz_in_both_layouts(tmp_path: Path, gz: bool, layout: str, mnist_writer: Writer) -> None:
    folder = tmp_path if layout == "flat" else tmp_path / "FashionMNIST" / "raw"
    written = mnist_writer(folder, gz=gz)
    arrays = read_mnist(tmp_path, "FashionMNIST")
    assert arrays.x.shape == (12, 1, 28, 28) and arrays.x_test is not None and arrays.x_test.shape == (6, 1, 28, 28)
    np.testing.assert_array_equal(arrays.x[:, 0], written["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(arrays.y_test, written["t10k-labels-idx1-ubyte"])


def test_idx_rejects_bad_magic_and_truncated_data(tmp_path: Path, idx_encoder: Writer) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(idx_encoder(np.zeros((3, 2, 2)))[:-1])
    with pytest.raises(ValueError, match=r"short: IDX data has .* expected"):
        read_idx(short)


def test_mnist_missing_file_names_it(tmp_path: Path, mnist_writer: Writer) -> None:
    mnist_writer(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not found"):
        read_mnist(tmp_path)


def test_mnist_label_count_mismatch(tmp_path: Path, mnist_writer: Writer, idx_encoder: Writer) -> None:
    mnist_writer(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_encoder(np.zeros(5)))
    with pytest.raises(ValueError, match="do not match"):
        read_mnist(tmp_path)


@pytest.mark.parametrize("nested", [True, False])
def test_cifar10_reads_pickled_batches(tmp_path: Path, nested: bool, cifar_writer: Writer) -> None:
    cifar_writer(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    arrays = read_cifar10(tmp_path)
    assert arrays.x.shape == (20, 3, 32, 32) and arrays.x.dtype == np.uint8
    assert arrays.y.tolist() == [0, 1, 2, 3] * 5
    assert arrays.x_test is not None and arrays.x_test.shape == (4, 3, 32, 32)


def test_cifar10_refuses_pickles_that_run_code(tmp_path: Path, cifar_writer: Writer) -> None:
    cifar_writer(tmp_path)

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (print, ("pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    with pytest.raises(ValueError, match="test_batch: not a CIFAR-10 python batch"):
        read_cifar10(tmp_path)


def test_cifar10_missing_and_malformed(tmp_path: Path, cifar_writer: Writer) -> None:
    with pytest.raises(ValueError, match="dataset folder not found"):
        read_cifar10(tmp_path / "nope")
    cifar_writer(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(ValueError, match="data_batch_3: CIFAR-10 batch not found"):
        read_cifar10(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match="N×3072"):
        read_cifar10(tmp_path)


def test_npz_both_key_layouts(tmp_path: Path) -> None:
    x, y = np.arange(12.0).reshape(6, 2), np.array([0, 1] * 3)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    np.savez(tmp_path / "b.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    a, b = read_npz(tmp_path / "a.npz"), read_npz(tmp_path / "b.npz")
    np.testing.assert_array_equal(a.x, x)
    assert a.x_test is None and b.x_test is not None and len(b.x_test) == 2


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"features": np.zeros((3, 2)), "y": np.zeros(3)}, "expected arrays x, y or x_train, y_train"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(4)}, "3 samples but 4 targets"),
        ({"x_train": np.zeros((3, 2)), "y_train": np.zeros(3), "x_test": np.zeros((1, 2))}, "must come together"),
    ],
)
def test_npz_malformed(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        read_npz(tmp_path / "bad.npz")


def test_npz_missing_and_not_npz(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing.npz: file not found"):
        read_npz(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable .npz"):
        read_npz(tmp_path / "junk.npz")


def test_csv_target_by_default_name_and_index(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,cat\n3,4,dog\n")
    last = read_csv(path)
    assert last.y.tolist() == ["cat", "dog"] and last.x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert read_csv(path, "label").y.tolist() == ["cat", "dog"]
    with pytest.raises(ValueError, match="feature columns must be numeric"):
        read_csv(path, "a")  # then the string column is a feature
    assert read_csv(path, -1).y.tolist() == ["cat", "dog"]


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        ("a,b\n", None, "header row and at least one data row"),
        ("a,b\n1,2\n3\n", None, "every row must have 2 columns"),
        ("a,b\nx,1\n", None, "feature columns must be numeric"),
        ("a,b\n1,2\n", "c", "target column 'c' not in the header"),
        ("a,b\n1,2\n", 5, "target column 5 out of range"),
    ],
)
def test_csv_malformed(tmp_path: Path, text: str, target: str | int | None, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_csv(path, target)
