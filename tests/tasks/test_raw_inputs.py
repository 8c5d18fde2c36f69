"""A dataset's recorded preprocessing turns its raw samples into exactly the task's inputs, and its class
indices back into the data's labels (what exports rely on to take raw data)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn import datasets as skd
from torch import nn

from evo.network import as_inputs
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.data import SplitData, load_dataset, split_indices
from evo.tasks.supervised import SupervisedTask


def raw_inputs(data: SplitData, raw: np.ndarray) -> torch.Tensor:
    """``raw`` samples through the recorded preprocessing alone."""
    x = torch.as_tensor(raw, dtype=torch.float32).reshape(len(raw), *data.input_shape)
    with torch.no_grad():
        out: torch.Tensor = data.preprocessing.wrap(nn.Identity(), data.input_shape)(x)
    return out


def held_out_test(labels: np.ndarray, cfg: SupervisedTaskConfig) -> np.ndarray:
    """The test split's indices, drawn as :func:`load_dataset` draws them for a set without its own."""
    _, codes = np.unique(labels, return_inverse=True)
    return split_indices(codes, cfg.test_fraction, cfg.split_seed, stratify=True)[1]


@pytest.mark.parametrize("options", [{}, {"standardize": True}, {"standardize": True, "as_image": True}])
def test_digits_raw_pixels_become_the_task_inputs_exactly(options: dict[str, Any]) -> None:
    cfg = SupervisedTaskConfig(dataset="digits", **options)
    data = load_dataset(cfg)
    raw = skd.load_digits()
    test = held_out_test(raw.target, cfg)
    assert torch.equal(raw_inputs(data, raw.data[test]), data.x_test)
    prep = data.preprocessing
    assert prep.scale == 16.0 and (prep.mean is not None) == bool(options) and prep.classes == tuple(range(10))


@pytest.mark.parametrize("standardize", [None, True])
def test_mnist_uint8_pixels_become_the_task_inputs_exactly(
    tmp_path: Path, mnist_writer: Callable[..., dict[str, np.ndarray]], standardize: bool | None
) -> None:
    written = mnist_writer(tmp_path, n_train=30, n_test=9)
    data = load_dataset(SupervisedTaskConfig(dataset="mnist", path=str(tmp_path), standardize=standardize))
    assert data.preprocessing.scale == 255.0
    assert torch.equal(raw_inputs(data, written["t10k-images-idx3-ubyte"]), as_inputs(data.x_test))


def test_csv_string_labels_are_recorded_and_inputs_standardised(tmp_path: Path) -> None:
    iris = skd.load_iris()
    names = iris.target_names[iris.target]
    rows = [",".join([*map(str, x), name]) for x, name in zip(iris.data, names)]
    (tmp_path / "iris.csv").write_text("a,b,c,d,species\n" + "\n".join(rows) + "\n")
    cfg = SupervisedTaskConfig(dataset="csv", path=str(tmp_path / "iris.csv"))
    data = load_dataset(cfg)
    prep = SupervisedTask(data).preprocessing()
    assert prep.classes == ("setosa", "versicolor", "virginica") and prep.scale == 1.0 and prep.mean is not None
    test = held_out_test(names, cfg)
    features = np.asarray([row.split(",")[:4] for row in rows], dtype=np.float32)
    assert torch.equal(raw_inputs(data, features[test]), data.x_test)
    assert prep.labels(data.y_test) == list(names[test])


def test_regression_records_no_labels(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("x,y\n" + "\n".join(f"{i},{i * 0.5}" for i in range(30)) + "\n")
    data = load_dataset(SupervisedTaskConfig(dataset="csv", path=str(tmp_path / "r.csv"), problem="regression"))
    assert data.preprocessing.classes is None and data.preprocessing.mean is not None
