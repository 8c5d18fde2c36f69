"""Task streams: one dataset cut into tasks that arrive one after another.

* **split** (split digits): each task holds a subset of the classes — digits in
  pairs give the classic 5-task stream, in fives a 2-task one; any list of
  class subsets can be given.
* **permuted** (permuted digits): every task holds all classes, its pixels
  shuffled by a fixed permutation drawn from a seed (task 0 keeps the original
  order) — the stream of Goodfellow et al. 2013 and, long, of Dohare et al.
  2024's loss-of-plasticity experiments.

The dataset is loaded and split once by :func:`evo.tasks.data.load_dataset`
(seeded, stratified), so every task of every individual sees the same samples.

Example:
    >>> from evo.continual.config import ContinualTaskConfig
    >>> stream = build_stream(ContinualTaskConfig(stream="split", classes_per_task=2))
    >>> len(stream.tasks), stream.tasks[1].classes.tolist(), stream.num_classes
    (5, [2, 3], 10)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from evo.continual.config import ContinualTaskConfig
from evo.errors import ConfigError, DataError
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.data import SplitData, load_dataset, split_indices

__all__ = ["Stream", "StreamTask", "build_stream", "even_splits", "permuted_stream", "split_stream"]

Part = Literal["train", "val", "test"]


@dataclass(frozen=True, eq=False)
class StreamTask:
    """One task of a stream: its samples (labels are the dataset's own) and the classes it holds."""

    name: str
    classes: Tensor
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor

    def part(self, which: Part) -> tuple[Tensor, Tensor]:
        """``(x, y)`` of the train, val or test split."""
        return getattr(self, f"x_{which}"), getattr(self, f"y_{which}")


@dataclass(frozen=True, eq=False)
class Stream:
    """Tasks in the order they arrive, all over one label space of ``num_classes`` outputs."""

    tasks: tuple[StreamTask, ...]
    input_shape: tuple[int, ...]
    num_classes: int

    def seen_classes(self, t: int) -> Tensor:
        """Every class of tasks ``0..t`` (the class-incremental output space after task ``t``)."""
        return torch.unique(torch.cat([task.classes for task in self.tasks[: t + 1]]))


def even_splits(num_classes: int, per_task: int) -> list[list[int]]:
    """Classes in label order, ``per_task`` at a time (the last task takes the remainder)."""
    if not 1 <= per_task <= num_classes:
        raise ConfigError(f"continual stream: classes_per_task must be in 1..{num_classes}, got {per_task}")
    return [list(range(c, min(c + per_task, num_classes))) for c in range(0, num_classes, per_task)]


def split_stream(data: SplitData, splits: Sequence[Sequence[int]], max_train: int = 0, seed: int = 0) -> Stream:
    """A task per class subset, holding exactly the samples of those classes."""
    num_classes = _num_classes(data)
    for split in splits:
        if max(split) >= num_classes:
            raise ConfigError(f"continual stream: class_splits label {max(split)} is not in 0..{num_classes - 1}")
    tasks = []
    for t, split in enumerate(splits):
        classes = torch.as_tensor(sorted(split), dtype=torch.long)
        parts = [_select(data, which, classes) for which in ("train", "val", "test")]
        parts[0] = _subsample(*parts[0], max_train, seed + t)
        tasks.append(StreamTask(f"classes {'/'.join(map(str, classes.tolist()))}", classes, *parts[0], *parts[1], *parts[2]))
    return Stream(tuple(tasks), data.input_shape, num_classes)


def permuted_stream(
    data: SplitData, tasks: int, seed: int = 0, max_train: int = 0, shared_head: bool = False
) -> Stream:
    """``tasks`` tasks over all K classes; task t's features shuffled by permutation t (task 0: identity).

    Args:
        shared_head: every task answers on the same K outputs (domain-incremental); else task t's class c
            is output ``t·K + c`` (a head per task, so a new task never has to overwrite old outputs).
    """
    k = _num_classes(data)
    features = math.prod(data.input_shape)
    rng = np.random.default_rng(seed)
    out = []
    for t in range(tasks):
        perm = torch.arange(features) if t == 0 else torch.as_tensor(rng.permutation(features))
        offset = 0 if shared_head else t * k
        x_train, y_train = _subsample(data.x_train, data.y_train, max_train, seed + t)
        xs = [_permute(x, perm) for x in (x_train, data.x_val, data.x_test)]
        ys = [y + offset for y in (y_train, data.y_val, data.y_test)]
        classes = torch.arange(k) + offset
        out.append(StreamTask(f"permutation {t}", classes, xs[0], ys[0], xs[1], ys[1], xs[2], ys[2]))
    return Stream(tuple(out), data.input_shape, k if shared_head else k * tasks)


def build_stream(cfg: ContinualTaskConfig) -> Stream:
    """The stream a config describes (the dataset comes from :func:`load_dataset`'s cache)."""
    data = load_dataset(SupervisedTaskConfig(dataset=cfg.dataset, split_seed=cfg.split_seed))
    if cfg.stream == "permuted":
        return permuted_stream(data, cfg.tasks, cfg.permute_seed, cfg.max_train_samples, cfg.shared_head)
    splits = cfg.class_splits or even_splits(_num_classes(data), cfg.classes_per_task)
    return split_stream(data, splits, cfg.max_train_samples, cfg.split_seed)


def _num_classes(data: SplitData) -> int:
    if data.num_classes is None:
        raise DataError("continual stream: the dataset must be a classification set")
    return data.num_classes


def _select(data: SplitData, which: Part, classes: Tensor) -> tuple[Tensor, Tensor]:
    x, y = getattr(data, f"x_{which}"), getattr(data, f"y_{which}")
    keep = torch.isin(y, classes)
    return x[keep], y[keep]


def _subsample(x: Tensor, y: Tensor, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """At most ``n`` samples (0: all), stratified and seeded."""
    if n == 0 or n >= len(x):
        return x, y
    keep, _ = split_indices(y.numpy(), 1 - n / len(x), seed, stratify=True)
    picked = torch.as_tensor(keep)
    return x[picked], y[picked]


def _permute(x: Tensor, perm: Tensor) -> Tensor:
    """``x`` with its flattened features reordered by ``perm`` (the sample shape is kept)."""
    return x.reshape(len(x), -1)[:, perm].reshape(x.shape)
