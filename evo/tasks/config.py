"""Configuration of the task kinds this package holds: one model per kind, chosen by ``kind``.

The union of every kind (these and :class:`~evo.continual.config.ContinualTaskConfig`) and the task each
config builds are in :mod:`evo.task_kinds`, above both packages.

Example:
    >>> cfg = SupervisedTaskConfig(dataset="iris")
    >>> cfg.kind, cfg.resolved_objectives()
    ('supervised', ('val_accuracy',))
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evo.tasks.custom import CustomTaskConfig
from evo.tasks.es import WeightSearch

__all__ = ["ControlTaskConfig", "CustomTaskConfig", "SupervisedTaskConfig", "XorTaskConfig"]

DatasetName = Literal[
    "digits", "iris", "wine", "breast_cancer", "synthetic", "mnist1d", "mnist", "fashion_mnist", "cifar10", "npz", "csv"
]
ObjectiveName = Literal["val_accuracy", "val_loss", "params", "flops"]
#: datasets read from ``path``: a folder (torchvision formats) or a file.
FILE_DATASETS = frozenset({"mnist", "fashion_mnist", "cifar10", "npz", "csv"})


class SupervisedTaskConfig(BaseModel):
    """Learn a labelled dataset; fitness is measured on a validation split, the test split is kept for the best."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["supervised"] = Field("supervised", description="Task kind.")
    dataset: DatasetName = Field(
        "digits",
        description="digits/iris/wine/breast_cancer: scikit-learn's bundled sets; synthetic: make_classification; "
        "mnist1d: MNIST-1D's 4,000/1,000 signals of length 40, generated locally (pip install "
        "'neuroplastic-evo[mnist1d]'); mnist/fashion_mnist/cifar10: torchvision-format files in the folder `path` (never downloaded); "
        "npz/csv: the file `path`.",
    )
    path: str | None = Field(None, description="Folder (mnist, fashion_mnist, cifar10) or file (npz, csv) to read.")
    problem: Literal["classification", "regression"] = Field(
        "classification", description="regression: real-valued targets, MSE loss (npz, csv)."
    )
    target: str | int | None = Field(None, description="csv: the target column, by name or index; null = the last.")
    mmap: Literal["auto", "always", "never"] = Field(
        "auto",
        description="npz: memory-map the arrays stored uncompressed (np.savez, not np.savez_compressed) instead of "
        "reading them; the rows each split picks are written once per machine to a .npy file in evo's cache folder "
        "($EVO_CACHE_DIR, else ~/.cache/evo) and mapped from there, so every worker shares one copy through the "
        "page cache (with augment_shift or standardize the splits are built in memory). auto: when the file is "
        "larger than a worker's share of memory (physical memory / CPU cores).",
    )
    as_image: bool = Field(
        False,
        description="Keep samples shaped for conv layers: images (C, H, W), e.g. digits as (1, 8, 8), signals "
        "(C, L), e.g. mnist1d as (1, 40); else flatten.",
    )
    standardize: bool | None = Field(
        None,
        description="Scale features to zero mean, unit variance with train-split statistics; "
        "null = yes for tabular sets (iris, wine, breast_cancer, synthetic, csv), no for images and npz.",
    )
    n_samples: int = Field(2000, ge=10, description="synthetic: number of samples.")
    n_features: int = Field(100, ge=2, description="synthetic: number of features.")
    n_informative: int = Field(10, ge=1, description="synthetic: informative features (the rest are noise/redundant).")
    n_classes: int = Field(4, ge=2, description="synthetic: number of classes.")
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of all samples held out for testing (when the dataset has no test split)."
    )
    val_fraction: float = Field(0.15, gt=0, lt=1, description="Share of the training samples used for validation.")
    max_train_samples: int = Field(0, ge=0, description="Subsample the training split to this many; 0 = all.")
    augment_shift: int = Field(
        0,
        ge=0,
        le=4,
        description="Image or signal data: add copies of the training split shifted by up to this many positions "
        "along each position axis longer than 1 (zero fill): (2n+1)² times the training samples, memory and steps "
        "per epoch for images, (2n+1) times for signals; 0 = none. Validation and test stay as they are.",
    )
    split_seed: int = Field(
        0, description="Seed of the (stratified) train/validation/test split and of synthetic data."
    )
    objectives: list[ObjectiveName] | None = Field(
        None,
        description="Objectives, the first being the fitness: val_accuracy (maximize), val_loss, params, flops "
        "(minimize); null = [val_accuracy] for classification, [val_loss] for regression.",
    )

    @model_validator(mode="after")
    def _check(self) -> SupervisedTaskConfig:
        if self.dataset in FILE_DATASETS and not self.path:
            raise ValueError(f"dataset {self.dataset!r} needs `path` (a folder or file to read)")
        if self.problem == "regression" and self.dataset not in ("npz", "csv"):
            raise ValueError(f"problem 'regression' needs dataset npz or csv, got {self.dataset!r}")
        if self.problem == "regression" and "val_accuracy" in self.resolved_objectives():
            raise ValueError("objective val_accuracy needs problem 'classification'; use val_loss")
        if self.dataset == "synthetic" and self.n_informative > self.n_features:
            raise ValueError(f"n_informative ({self.n_informative}) must be <= n_features ({self.n_features})")
        return self

    def resolved_objectives(self) -> tuple[str, ...]:
        """The objectives, with the default filled in for the problem type."""
        if self.objectives:
            return tuple(dict.fromkeys(self.objectives))
        return ("val_accuracy",) if self.problem == "classification" else ("val_loss",)


class ControlTaskConfig(BaseModel):
    """A gymnasium environment; fitness is the mean episode return of the network as policy (gradient-free)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["control"] = Field("control", description="Task kind.")
    env: str = Field(
        "CartPole-v1",
        description="Gymnasium environment id with a flat Box observation: CartPole-v1, Acrobot-v1, MountainCar-v0, "
        "Pendulum-v1, LunarLander-v3 (needs Box2D: `make box2d`).",
    )
    episodes: int = Field(5, ge=1, description="Episodes per evaluation (fitness = mean return).")
    max_episode_steps: int | None = Field(
        None, ge=1, description="Truncate episodes after this many steps; null = the env's limit."
    )
    normalize: bool = Field(
        False, description="Map observation dimensions with finite bounds to [-1, 1] before the policy sees them "
        "(e.g. MountainCar's velocity, ±0.07); unbounded dimensions pass unchanged.")
    test_episodes: int = Field(
        100, ge=0, description="Fresh episodes (never seen in evolution) the best individuals are tested on at the "
        "end of a run: the test_mean_return of the run's test results; 0 = no test.")
    weight_search: WeightSearch | None = Field(
        None, description="An evolution strategy on the weights within each evaluation (Lamarckian: the improved "
        "weights are the individual's); null = weights change only through mutation operators.")


class XorTaskConfig(BaseModel):
    """neat-python's XOR benchmark: fitness 4 − Σ(σ(out) − y)², solved above 3.9 (gradient-free)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["xor"] = Field("xor", description="Task kind.")
