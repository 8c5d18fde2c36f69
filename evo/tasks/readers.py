"""Readers for dataset files on disk: torchvision's formats, ``.npz`` and ``.csv``; never a download.

Each reader returns :class:`Arrays` of raw numpy data (pixels still ``uint8``,
labels as stored) and raises ``ValueError`` naming the file and what was
expected when a file is missing or malformed; :mod:`evo.tasks.data` scales,
encodes and splits them.
"""

from __future__ import annotations

import csv
import gzip
import pickle
import struct
import zipfile
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from evo.errors import DataError

__all__ = ["Arrays", "read_cifar10", "read_csv", "read_idx", "read_mnist", "read_npz"]

#: IDX type codes (LeCun's format): code → big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MNIST_FILES = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
)
_CIFAR_DIR = "cifar-10-batches-py"


class Arrays(NamedTuple):
    """Samples and targets as read; ``x_test``/``y_test`` only when the dataset ships its own test split."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (optionally gzip-compressed): magic ``0 0 type ndim``, big-endian dims, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read IDX file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (expected magic bytes 0 0 <type> <ndim>)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path}: IDX data has {len(raw)} bytes, expected {expected} for shape {dims}")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find_file(root: Path, name: str, folder: str) -> Path:
    for base in (root, root / folder / "raw"):
        for candidate in (base / name, base / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(f"{root}: {name}[.gz] not found (expected IDX files in the folder or under {folder}/raw/)")


def read_mnist(root: Path, folder: str = "MNIST") -> Arrays:
    """MNIST or Fashion-MNIST raw IDX files in ``root`` or ``root/<folder>/raw/`` (torchvision's layout)."""
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found (expected the {folder} IDX files)")
    x, y, x_test, y_test = (read_idx(_find_file(root, name, folder)) for name in _MNIST_FILES)
    for images, labels, name in ((x, y, "train"), (x_test, y_test, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{root}: {name} images {images.shape} and labels {labels.shape} do not match")
    return Arrays(x[:, None], y, x_test[:, None], y_test)


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles only plain data and numpy arrays: a dataset file must not be able to run code."""

    def find_class(self, module: str, name: str) -> Any:
        if name in ("_reconstruct", "ndarray", "dtype", "scalar") and module.startswith("numpy"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def _load_plain(f: IO[bytes]) -> Any:
    return _PlainUnpickler(f, encoding="bytes").load()


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _load_plain(f)
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise DataError(f"{path}: CIFAR-10 batch not found") from None
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as err:
        expected = "a pickled dict with b'data', b'labels'"
        raise DataError(f"{path}: not a CIFAR-10 python batch ({expected}): {err}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{path}: CIFAR-10 data must be N×3072 with N labels, got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10(root: Path) -> Arrays:
    """CIFAR-10 python batches: ``data_batch_1..5`` and ``test_batch`` in ``root/cifar-10-batches-py/`` or ``root``."""
    folder = root / _CIFAR_DIR if (root / _CIFAR_DIR).is_dir() else root
    if not folder.is_dir():
        raise DataError(f"{root}: dataset folder not found (expected {_CIFAR_DIR}/data_batch_1..5, test_batch)")
    train = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _read_cifar_batch(folder / "test_batch")
    return Arrays(np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]), x_test, y_test)


def read_npz(path: Path, mmap: bool = False) -> Arrays:
    """Arrays ``x``, ``y`` or ``x_train``, ``y_train`` (and optionally ``x_test``, ``y_test``); no pickles.

    ``mmap``: map the arrays stored uncompressed (``np.savez``) instead of reading them (:func:`_mapped`);
    compressed ones (``np.savez_compressed``) are read, as they must be decompressed.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected an .npz with arrays x, y or x_train, y_train)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            mapped = _mapped(path, npz.zip) if mmap else {}
            arrays = {k: mapped[k] if k in mapped else npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable .npz file ({err})") from None
    if {"x", "y"} <= arrays.keys():
        found = Arrays(arrays["x"], arrays["y"])
    elif {"x_train", "y_train"} <= arrays.keys():
        found = Arrays(arrays["x_train"], arrays["y_train"], arrays.get("x_test"), arrays.get("y_test"))
    else:
        raise DataError(f"{path}: expected arrays x, y or x_train, y_train, found {sorted(arrays)}")
    if (found.x_test is None) != (found.y_test is None):
        raise DataError(f"{path}: x_test and y_test must come together")
    for xs, ys in ((found.x, found.y), (found.x_test, found.y_test)):
        if xs is not None and ys is not None and len(xs) != len(ys):
            raise DataError(f"{path}: {len(xs)} samples but {len(ys)} targets")
    return found


def _mapped(path: Path, archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    """The archive's uncompressed ``.npy`` members as copy-on-write memory maps of ``path``, by array name.

    ``np.load(mmap_mode=...)`` maps ``.npy`` files only; a member stored without compression is a ``.npy``
    file at a known offset of the ``.npz``: its local header (30 bytes, then the name and an extra field of
    the lengths it gives), then the ``.npy`` header, then the data. Pages are read when touched and shared,
    through the page cache, by every process mapping the file; copy-on-write keeps them writable for torch
    without ever writing the file.
    """
    mapped = {}
    with open(path, "rb") as f:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                continue
            f.seek(info.header_offset)
            local = f.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise ValueError(f"member {info.filename}: bad local header")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            f.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject or not np.prod(shape):
                continue  # left to np.load: it refuses pickled objects, and an empty array has nothing to map
            mapped[info.filename[:-4]] = np.memmap(
                path, dtype, mode="c", offset=f.tell(), shape=shape, order="F" if fortran else "C"
            )
    return mapped


def read_csv(path: Path, target: str | int | None = None) -> Arrays:
    """A CSV file with a header row; the target column by name or index (default: the last).

    Features must be numeric; targets are returned as strings (the caller decides
    between class labels and regression values).
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected a .csv with a header row)")
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if len(rows) < 2:
        raise DataError(f"{path}: expected a header row and at least one data row")
    header, body = rows[0], rows[1:]
    column = _target_column(path, header, target)
    if any(len(row) != len(header) for row in body):
        raise DataError(f"{path}: every row must have {len(header)} columns like the header")
    features = [[v for j, v in enumerate(row) if j != column] for row in body]
    try:
        x = np.asarray(features, dtype=np.float32)
    except ValueError as err:
        raise DataError(f"{path}: feature columns must be numeric ({err})") from None
    return Arrays(x, np.asarray([row[column].strip() for row in body]))


def _target_column(path: Path, header: list[str], target: str | int | None) -> int:
    if target is None:
        return len(header) - 1
    if isinstance(target, int):
        if not -len(header) <= target < len(header):
            raise DataError(f"{path}: target column {target} out of range for {len(header)} columns")
        return target % len(header)
    names = [h.strip() for h in header]
    if target not in names:
        raise DataError(f"{path}: target column {target!r} not in the header {names}")
    return names.index(target)
