"""Datasets for supervised tasks: load, scale, encode and split them once per process.

Every individual of a run sees the same seeded, stratified train/validation/test
split, so fitness differences come from the networks, not from the data. The
validation split drives selection; the test split is only touched for the best
individuals at the end.

Example:
    >>> from evo.tasks.config import SupervisedTaskConfig
    >>> data = load_dataset(SupervisedTaskConfig(dataset="iris"))
    >>> data.input_shape, data.num_classes, len(data.x_test)
    ((4,), 3, 30)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import os
import random
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from sklearn import datasets as skd
from sklearn.model_selection import train_test_split
from torch import Tensor

from evo.errors import DataError
from evo.files import atomic_write_with
from evo.network import PIXEL_SCALE
from evo.preprocessing import Preprocessing
from evo.tasks.readers import Arrays, read_cifar10, read_csv, read_mnist, read_npz

if TYPE_CHECKING:
    from evo.tasks.config import SupervisedTaskConfig

__all__ = ["SplitData", "clear_cache", "load_dataset", "shift_augment", "split_indices"]

_TABULAR = frozenset({"iris", "wine", "breast_cancer", "synthetic", "csv"})
#: the value range of a dataset's float features, mapped to [0, 1] (``uint8`` pixels: :data:`PIXEL_SCALE`).
_SCALES = {"digits": 16.0}
#: datasets of 1-D signals: samples ``(C, L)``, where other 3-D arrays are grey images ``(H, W)``.
_SIGNALS = frozenset({"mnist1d"})
_CACHE_SIZE = 4
#: the three splits, in :class:`SplitData`'s order (names of a memory-mapped file's cached splits)
_SPLITS = ("train", "val", "test")
#: rows gathered at a time when a memory-mapped split is written (60,000 MNIST images: 6 chunks of 7.8 MB)
_ROWS_PER_CHUNK = 10_000
_cache: OrderedDict[str, SplitData] = OrderedDict()


@dataclass(frozen=True, eq=False)
class SplitData:
    """A dataset split three ways, as tensors: inputs ``float32``, or ``uint8`` pixels (the network sees them
    through :func:`evo.network.as_inputs`); ``int64`` labels or ``float32`` targets.

    Attributes:
        input_shape: shape of one sample, ``(features,)``, ``(C, L)`` or ``(C, H, W)``.
        num_classes: number of classes, or ``None`` for regression (targets are ``(n, k)``).
        preprocessing: how the raw samples became these inputs and what the class indices stand for
            (exports put it in front of the network).
    """

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    input_shape: tuple[int, ...]
    num_classes: int | None
    preprocessing: Preprocessing = Preprocessing()

    @property
    def output_size(self) -> int:
        """Network outputs needed: one per class, or one per regression target."""
        return self.num_classes if self.num_classes is not None else int(self.y_train.shape[1])

    def to(self, device: str) -> SplitData:
        """The same splits with every tensor on ``device`` (this object when they are there already)."""
        if self.x_train.device == torch.device(device):
            return self
        moved = {f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self) if f.name[:2] in ("x_", "y_")}
        return dataclasses.replace(self, **moved)


def load_dataset(cfg: SupervisedTaskConfig, device: str = "cpu") -> SplitData:
    """The split dataset a config names, on ``device``, from a small per-process LRU cache.

    A process loads a data set once and copies it to a device once: the evaluations a worker runs one after
    another (each with a task unpickled afresh, which holds no data) all find it here.

    Raises:
        ValueError: a missing or malformed data file (the message names it and what was expected).
    """
    key = f"{_cache_key(cfg)}|{device}"
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    data = _build(cfg) if device == "cpu" else load_dataset(cfg).to(device)
    _cache[key] = data
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return data


def clear_cache() -> None:
    """Forget every loaded dataset (tests; freeing memory)."""
    _cache.clear()


def _cache_key(cfg: SupervisedTaskConfig) -> str:
    """The data-relevant config, plus the file's size and mtime so an edited file is re-read."""
    key = cfg.model_dump_json(exclude={"objectives"})
    if cfg.path is not None and Path(cfg.path).exists():
        stat = Path(cfg.path).stat()
        key += f"|{stat.st_size}|{stat.st_mtime_ns}"
    return key


def _build(cfg: SupervisedTaskConfig) -> SplitData:
    arrays, scale = _read(cfg)
    source = cfg.path or cfg.dataset
    classification = cfg.problem == "classification"
    y_all, classes = _encode_targets(arrays, classification, source)
    signal = cfg.dataset in _SIGNALS
    shift_axes = _shift_axes(arrays.x, signal)
    if cfg.augment_shift and arrays.x.ndim < 3:
        raise DataError(
            f"task.augment_shift: {source} has flat features {arrays.x.shape[1:]}; shifting needs images (digits, "
            "mnist, fashion_mnist, cifar10, or npz samples shaped (H, W) / (C, H, W)) or signals (mnist1d)"
        )
    if cfg.augment_shift and not shift_axes:
        raise DataError(f"task.augment_shift: {source}'s samples {arrays.x.shape[1:]} have no position axis longer than 1")
    if arrays.x_test is None:  # no shipped test split: hold one out
        train, test = split_indices(y_all[0], cfg.test_fraction, cfg.split_seed, classification)
        y_train, y_test, test_rows = y_all[0][train], y_all[0][test], (arrays.x, test)
    else:
        train, y_train, y_test, test_rows = np.arange(len(arrays.x)), y_all[0], y_all[1], (arrays.x_test, None)
    fit, val = split_indices(y_train, cfg.val_fraction, cfg.split_seed + 1, classification)
    if 0 < cfg.max_train_samples < len(fit):
        keep, _ = split_indices(y_train[fit], 1 - cfg.max_train_samples / len(fit), cfg.split_seed + 2, classification)
        fit = fit[keep]
    y_fit = y_train[fit]
    rows = [(arrays.x, train[fit]), (arrays.x, train[val]), test_rows]
    standardize = cfg.standardize if cfg.standardize is not None else cfg.dataset in _TABULAR
    if isinstance(arrays.x, np.memmap) and not cfg.augment_shift and not standardize:
        samples = functools.partial(_as_stored_samples, as_image=cfg.as_image, signal=signal)
        xs = [_mapped_rows(cfg, split, x, index, samples) for split, (x, index) in zip(_SPLITS, rows, strict=True)]
        return _split_data(xs, [y_fit, y_train[val], y_test], scale, classes)
    x_fit, *xs = (x if index is None else x[index] for x, index in rows)
    if cfg.augment_shift:
        x_fit = shift_augment(x_fit, cfg.augment_shift, shift_axes)
        y_fit = np.tile(y_fit, (len(x_fit) // len(y_fit),) + (1,) * (y_fit.ndim - 1))
    xs = [_as_samples(x, cfg.as_image, signal) for x in (x_fit, *xs)]
    mean = std = None
    if standardize:
        xs = [_floats(x) for x in xs]
        mean, std = xs[0].mean(axis=0), xs[0].std(axis=0)
        std = np.where(std > 0, std, 1.0)
        xs = [(x - mean) / std for x in xs]
    return _split_data([_stored(x) for x in xs], [y_fit, y_train[val], y_test], scale, classes, mean, std)


def _split_data(xs: list[np.ndarray], ys: list[np.ndarray], scale: float, classes: np.ndarray | None,
                mean: np.ndarray | None = None, std: np.ndarray | None = None) -> SplitData:
    """The train, validation and test splits as tensors (sharing the arrays' memory), with their preprocessing."""
    tensors = [torch.as_tensor(x) for x in xs]
    targets = [torch.as_tensor(y) for y in ys]
    preprocessing = Preprocessing(
        scale, _flat(mean), _flat(std), None if classes is None else tuple(classes.tolist())
    )
    return SplitData(
        tensors[0], targets[0], tensors[1], targets[1], tensors[2], targets[2],
        tuple(int(d) for d in tensors[0].shape[1:]), None if classes is None else len(classes), preprocessing,
    )


def cache_dir() -> Path:
    """Where memory-mapped splits are written: ``$EVO_CACHE_DIR``, else ``$XDG_CACHE_HOME/evo``, else ``~/.cache/evo``."""
    if os.environ.get("EVO_CACHE_DIR"):
        return Path(os.environ["EVO_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evo"


def _mapped_rows(cfg: SupervisedTaskConfig, split: str, x: np.ndarray, index: np.ndarray | None,
                 samples: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Split ``split`` of a memory-mapped file — its rows ``index`` of ``x`` (None: all), as ``samples`` stores
    them — itself memory-mapped, so that no worker holds a private copy of it.

    A split whose rows are the whole array in file order is a view of the file. One that picks rows is written,
    in chunks, to a ``.npy`` file in :func:`cache_dir` once per machine (atomically: concurrent workers may both
    write it, one file wins) and mapped from there by every worker: its pages live once in the page cache, read
    as touched, and a batch gathers its rows from them. A new split of the same data file (an edited file, another
    split seed) replaces the old one's files. When the cache cannot be written, the rows are copied into memory
    with a warning.
    """
    if index is None:
        return samples(x)
    source = Path(str(cfg.path)).resolve()
    of_file = f"{source.stem}-{_digest(str(source), 8)}-"  # every split file of this data file
    of_split = f"{of_file}{_digest(_cache_key(cfg), 12)}-"  # ... of this split of it
    target = cache_dir() / "splits" / f"{of_split}{split}.npy"
    for _ in range(2):  # another config's write may remove this file between its check and its mapping: write again
        try:
            if not target.exists():
                _write_rows(target, x, index, samples)
                for old in target.parent.glob(f"{of_file}*.npy"):
                    if not old.name.startswith(of_split):
                        old.unlink(missing_ok=True)  # a worker still mapping it keeps its pages until it unmaps
            return np.load(target, mmap_mode="c")
        except FileNotFoundError:
            continue
        except OSError as err:
            warnings.warn(f"{cfg.path}: could not write the {split} split to {target.parent} ({err}); "
                          "its rows are copied into each worker's memory instead", stacklevel=2)
            break
    return samples(x[index])


def _write_rows(target: Path, x: np.ndarray, index: np.ndarray, samples: Callable[[np.ndarray], np.ndarray]) -> None:
    """``samples(x[index])`` into the ``.npy`` file ``target``, a chunk of rows at a time (bounded memory),
    atomically (:func:`evo.files.atomic_write_with`: its temporary file's name starts with a dot, so it never
    matches another split's files)."""
    first = samples(x[index[:1]])

    def fill(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=first.dtype, shape=(len(index), *first.shape[1:]))
        for start in range(0, len(index), _ROWS_PER_CHUNK):
            out[start : start + _ROWS_PER_CHUNK] = samples(x[index[start : start + _ROWS_PER_CHUNK]])
        out.flush()

    atomic_write_with(target, fill, suffix=".npy")


def _digest(text: str, length: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def _as_stored_samples(x: np.ndarray, as_image: bool, signal: bool) -> np.ndarray:
    """Rows of a data file as a split keeps them (:func:`_as_samples`, then :func:`_stored`)."""
    return _stored(_as_samples(x, as_image, signal))


def _flat(values: np.ndarray | None) -> tuple[float, ...] | None:
    """Per-element statistics as float32 values, the precision of the inputs and of an exported graph."""
    return None if values is None else tuple(np.asarray(values, dtype=np.float32).reshape(-1).tolist())


def split_indices(y: np.ndarray, fraction: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(len(y))`` into (kept, held-out ``fraction``), stratified by class when possible.

    Stratification needs every class at least twice and room for each class on both sides;
    otherwise the split is plain random.
    """
    index = np.arange(len(y))
    held = max(1, round(fraction * len(y)))
    if held >= len(y):
        raise DataError(f"dataset: {len(y)} samples are too few to hold out a fraction {fraction:g}")
    classes, counts = np.unique(y, return_counts=True) if stratify else (np.empty(0), np.empty(0))
    ok = stratify and counts.min() >= 2 and len(classes) <= min(held, len(y) - held)
    kept, out = train_test_split(index, test_size=held, random_state=seed % 2**32, stratify=y if ok else None)
    return np.sort(kept), np.sort(out)


def _read(cfg: SupervisedTaskConfig) -> tuple[Arrays, float]:
    """The dataset's arrays, features scaled to [0, 1] where their range is known, and that scale."""
    readers: dict[str, Callable[[], Arrays]] = {
        "digits": lambda: _sklearn(skd.load_digits(), (1, 8, 8)),
        "iris": lambda: _sklearn(skd.load_iris()),
        "wine": lambda: _sklearn(skd.load_wine()),
        "breast_cancer": lambda: _sklearn(skd.load_breast_cancer()),
        "synthetic": lambda: _synthetic(cfg),
        "mnist1d": _mnist1d,
        "mnist": lambda: read_mnist(Path(str(cfg.path)), "MNIST"),
        "fashion_mnist": lambda: read_mnist(Path(str(cfg.path)), "FashionMNIST"),
        "cifar10": lambda: read_cifar10(Path(str(cfg.path))),
        "npz": lambda: read_npz(Path(str(cfg.path)), _maps(cfg)),
        "csv": lambda: read_csv(Path(str(cfg.path)), cfg.target),
    }
    arrays = readers[cfg.dataset]()
    if arrays.x.dtype == np.uint8:  # pixels: kept as bytes, scaled a batch at a time where used (as_inputs)
        if arrays.x_test is not None and arrays.x_test.dtype != np.uint8:
            arrays = arrays._replace(x_test=_scaled(arrays.x_test, PIXEL_SCALE))
        return arrays, PIXEL_SCALE
    scale = _SCALES.get(cfg.dataset, 1.0)
    if scale != 1.0:
        x_test = None if arrays.x_test is None else _scaled(arrays.x_test, scale)
        arrays = arrays._replace(x=_scaled(arrays.x, scale), x_test=x_test)
    return arrays, scale


def memory_share() -> int:
    """This process's share of the machine's memory in bytes: physical memory / CPU cores (a worker per core)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (os.cpu_count() or 1)


def _maps(cfg: SupervisedTaskConfig) -> bool:
    """Whether to memory-map the npz file ``cfg.path`` (``task.mmap``; auto: larger than :func:`memory_share`)."""
    if cfg.mmap != "auto":
        return cfg.mmap == "always"
    path = Path(str(cfg.path))
    return path.is_file() and path.stat().st_size > memory_share()


def shift_augment(x: np.ndarray, radius: int, axes: tuple[int, ...] = (-2, -1)) -> np.ndarray:
    """Samples and their copies shifted by every offset within ``radius`` along ``axes``, zero-filled.

    ``axes``: the position axes — ``(-2, -1)`` for images ``(n, …, H, W)``, ``(-1,)`` for signals
    ``(n, C, L)``; an axis of length 1 is never shifted (a shift there would only blank the sample).
    ``(2·radius + 1)^k`` times the samples for ``k`` shifted axes, shift-major (the copies of sample
    ``i`` are ``i + j·n``; for images the offsets (dy, dx) in row-major order). Small translations are
    label-preserving for digit-like images and the cheapest way to stop a small network from memorising
    pixel positions — on the 8×8 digits it is worth about a point of test accuracy to an MLP.
    """
    axes = tuple(a for a in axes if x.shape[a] > 1)
    copies = []
    for offsets in itertools.product(range(-radius, radius + 1), repeat=len(axes)):
        target, source = [slice(None)] * x.ndim, [slice(None)] * x.ndim
        for axis, d in zip(axes, offsets, strict=True):
            kept = max(x.shape[axis] - abs(d), 0)
            target[axis], source[axis] = slice(max(d, 0), max(d, 0) + kept), slice(max(-d, 0), max(-d, 0) + kept)
        shifted = np.zeros_like(x)
        shifted[tuple(target)] = x[tuple(source)]
        copies.append(shifted)
    return np.concatenate(copies)


def _scaled(x: np.ndarray, scale: float) -> np.ndarray:
    """Features divided by ``scale`` in float32 (half the memory of numpy's float64 default)."""
    return x.astype(np.float32) / np.float32(scale)


def _floats(x: np.ndarray) -> np.ndarray:
    """Samples as the network's inputs: ``uint8`` pixels scaled (as :func:`evo.network.as_inputs` does)."""
    return _scaled(x, PIXEL_SCALE) if x.dtype == np.uint8 else x


def _stored(x: np.ndarray) -> np.ndarray:
    """Samples as a split keeps them: ``uint8`` pixels as they are, anything else as float32; C order.

    A C-ordered array (a memory map among them) is kept, not copied."""
    return np.ascontiguousarray(x) if x.dtype == np.uint8 else np.ascontiguousarray(x, dtype=np.float32)


def _shift_axes(x: np.ndarray, signal: bool) -> tuple[int, ...]:
    """The position axes of samples ``x`` longer than 1: a signal's L, an image's H and W; none for flat features."""
    axes = (-1,) if signal else (-2, -1) if x.ndim >= 3 else ()
    return tuple(a for a in axes if x.shape[a] > 1)


def _sklearn(bunch: skd._base.Bunch, image: tuple[int, ...] | None = None) -> Arrays:
    """A bundled scikit-learn set; ``image``: the per-sample image shape its rows flatten."""
    x = np.asarray(bunch.data, dtype=np.float32)
    return Arrays(x.reshape(-1, *image) if image else x, np.asarray(bunch.target))


def _mnist1d() -> Arrays:
    """MNIST-1D (Greydanus & Kobak, ICML 2024) as ``(n, 1, 40)`` signals: 4,000 training and 1,000 test samples.

    Generated here by the ``mnist1d`` package's ``make_dataset`` with its default arguments (seed 42),
    never downloaded (its ``get_dataset`` would fetch a pickle). ``make_dataset`` seeds the global
    ``random`` and ``numpy`` generators; their state is restored afterwards, so loading the data
    changes no one else's random stream. About a second: the per-process cache is enough.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DataError("task.dataset mnist1d needs the mnist1d package: pip install 'neuroplastic-evo[mnist1d]'") from None
    saved = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    signals = [np.asarray(data[k], dtype=np.float32)[:, None, :] for k in ("x", "x_test")]
    return Arrays(signals[0], np.asarray(data["y"]), signals[1], np.asarray(data["y_test"]))


def _synthetic(cfg: SupervisedTaskConfig) -> Arrays:
    """A seeded ``make_classification`` problem: harder than the bundled sets, for benchmarks."""
    x, y = skd.make_classification(
        n_samples=cfg.n_samples,
        n_features=cfg.n_features,
        n_informative=cfg.n_informative,
        n_redundant=min(cfg.n_features - cfg.n_informative, cfg.n_informative // 2),
        n_classes=cfg.n_classes,
        random_state=cfg.split_seed % 2**32,
    )
    return Arrays(x.astype(np.float32), y)


def _as_samples(x: np.ndarray, as_image: bool, signal: bool = False) -> np.ndarray:
    """Samples as ``(n, features)``, or ``(n, C, H, W)`` / signals ``(n, C, L)`` when shaped input is wanted."""
    if signal:
        return x if as_image else x.reshape(len(x), -1)
    if x.ndim == 3:  # (n, H, W): grey images
        x = x[:, None]
    if not as_image or x.ndim == 2:
        return x.reshape(len(x), -1)
    if x.ndim != 4:
        raise DataError(f"as_image needs samples shaped (H, W) or (C, H, W), got {x.shape[1:]}")
    return x


def _encode_targets(arrays: Arrays, classification: bool, source: str) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Class labels → ``0..K-1`` (``int64``) shared by all splits, and the label of each index (sorted);
    regression targets → ``float32 (n, k)`` and ``None``."""
    ys = [y for y in (arrays.y, arrays.y_test) if y is not None]
    if not classification:
        try:
            return [np.asarray(y, dtype=np.float32).reshape(len(y), -1) for y in ys], None
        except ValueError:
            raise DataError(f"{source}: regression targets must be numeric") from None
    if any(y.ndim != 1 for y in ys):
        raise DataError(f"{source}: class labels must be one per sample, got shape {ys[0].shape}")
    if ys[0].dtype.kind == "f" and not np.all(np.mod(np.concatenate(ys), 1) == 0):
        raise DataError(f"{source}: targets are not class labels (non-integer values); set problem: regression")
    if ys[0].dtype.kind in "US":
        ys = [_numeric_strings(y, source) for y in ys]
    classes, encoded = np.unique(np.concatenate(ys), return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{source}: classification needs at least 2 classes, found {len(classes)}")
    parts = np.split(encoded.astype(np.int64), [len(ys[0])])
    return parts[: len(ys)], classes


def _numeric_strings(y: np.ndarray, source: str) -> np.ndarray:
    """CSV labels: integer-like strings become integers (so '10' sorts after '9'); others stay strings."""
    try:
        values = y.astype(np.float64)
    except ValueError:
        return y
    if not np.all(np.mod(values, 1) == 0):
        raise DataError(f"{source}: targets are not class labels (non-integer values); set problem: regression")
    return values.astype(np.int64)
