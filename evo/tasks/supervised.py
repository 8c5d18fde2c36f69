"""Supervised tasks: train the genome with the plastic trainer, score it on the validation split.

Training is :func:`evo.plasticity.train` (grow → train → prune within a lifetime);
this module never has its own training loop. The trained genome is returned, so
evolution can pass learned weights on (Lamarckian inheritance, LEMONADE —
Elsken et al. 2019). Only the best individuals ever see the test split
(:meth:`SupervisedTask.test`), so selection cannot overfit it.

Example:
    >>> from evo.tasks.config import SupervisedTaskConfig
    >>> task = SupervisedTask(SupervisedTaskConfig(dataset="iris"), objectives=["val_accuracy", "params"])
    >>> task.input_shape, task.output_size, [o.name for o in task.objectives]
    ((4,), 3, ['val_accuracy', 'params'])
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from evo.errors import ConfigError
from evo.genome import Genome
from evo.network import as_inputs
from evo.plasticity import Diverged, PlasticityConfig, train
from evo.plasticity.trainer import default_steps
from evo.preprocessing import Preprocessing
from evo.tasks._base import Task
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.data import SplitData, load_dataset
from evo.types import Budget, Direction, Evaluation, Job, Objective

__all__ = ["OBJECTIVES", "SupervisedTask"]

#: the objectives a supervised task can report, with their directions.
OBJECTIVES = {
    "val_accuracy": Direction.MAXIMIZE,
    "val_loss": Direction.MINIMIZE,
    "params": Direction.MINIMIZE,
    "flops": Direction.MINIMIZE,
}
_CHUNK = 4096  # samples per forward pass when measuring


class SupervisedTask(Task):
    """A labelled dataset, trained on with a :class:`PlasticityConfig`.

    Args:
        data: a config (the data is then loaded lazily in each process, so the task pickles small
            for Ray workers) or an already split dataset.
        plasticity: the lifetime-training hyperparameters; ``None``: defaults.
        objectives: names from :data:`OBJECTIVES`, the first being the fitness; ``None``: the config's, else
            ``val_accuracy`` (classification) or ``val_loss`` (regression).
    """

    def __init__(
        self,
        data: SupervisedTaskConfig | SplitData,
        plasticity: PlasticityConfig | None = None,
        objectives: Sequence[str] | None = None,
    ) -> None:
        self._cfg = _absolute_path(data) if isinstance(data, SupervisedTaskConfig) else None
        self._data = data if isinstance(data, SplitData) else None
        self._on_device: dict[str, SplitData] = {}
        self.plasticity = plasticity if plasticity is not None else PlasticityConfig()
        split = self.data
        self.classification = split.num_classes is not None
        self.loss = "cross_entropy" if self.classification else "mse"
        self._input_shape, self._output_size = split.input_shape, split.output_size
        if objectives is None and self._cfg is not None:
            objectives = self._cfg.resolved_objectives()
        self.objectives = self._resolve(objectives)

    def _resolve(self, names: Sequence[str] | None) -> tuple[Objective, ...]:
        if not names:
            names = ["val_accuracy" if self.classification else "val_loss"]
        for name in names:
            if name not in OBJECTIVES:
                raise ConfigError(f"SupervisedTask: objective {name!r} unknown; allowed: {sorted(OBJECTIVES)}")
            if name == "val_accuracy" and not self.classification:
                raise ConfigError("SupervisedTask: objective val_accuracy needs a classification dataset; use val_loss")
        return tuple(Objective(name, OBJECTIVES[name]) for name in dict.fromkeys(names))

    @property
    def data(self) -> SplitData:
        """The split dataset, loaded on first use in this process (cached by :func:`load_dataset`)."""
        if self._data is None:
            assert self._cfg is not None
            self._data = load_dataset(self._cfg)
        return self._data

    def on(self, device: str) -> SplitData:
        """The data on ``device``, copied there once: per process for a task built from a config (each Ray call
        unpickles a new task, the data stays in :func:`load_dataset`'s cache), else per task object."""
        if self._cfg is not None:
            return load_dataset(self._cfg, device)
        if device not in self._on_device:
            self._on_device[device] = self.data.to(device)
        return self._on_device[device]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the tensors when they can be reloaded from the config (Ray ships tasks to workers),
        and never with copies on a device."""
        state = self.__dict__.copy()
        state["_on_device"] = {}
        if self._cfg is not None:
            state["_data"] = None
        return state

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    @property
    def output_size(self) -> int:
        return self._output_size

    def evaluate_job(self, job: Job, device: str) -> Evaluation:
        """:meth:`evaluate`, distilling from the job's teacher when it has one."""
        return self.evaluate(job.genome, job.budget, device, job.seed, teacher=job.teacher)

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int, teacher: Genome | None = None) -> Evaluation:
        """Train for ``budget.steps`` steps (0: the plasticity config's default), then measure on validation.

        ``teacher``: a parent whose outputs the first steps imitate (``plasticity.distill``).
        A diverging loss (NaN/inf) or a runtime error gives a failed evaluation, never an exception.
        """
        start = time.perf_counter()
        data = self.on(device)
        try:
            result = train(
                genome, data.x_train, data.y_train, self.plasticity,
                steps=budget.steps or None, device=device, seed=seed, loss=self.loss, teacher=teacher,
            )
            val = self._measure(result.genome, data.x_val, data.y_val, device)
        except Diverged as err:
            used = Budget(steps=err.steps, samples=err.samples, seconds=time.perf_counter() - start)
            return self.failed(f"Diverged: {err}", used=used)
        except (FloatingPointError, RuntimeError) as err:
            return self.failed(f"{type(err).__name__}: {err}", used=Budget(seconds=time.perf_counter() - start))
        used = Budget(steps=result.steps, samples=result.samples, seconds=time.perf_counter() - start)
        if not math.isfinite(val["loss"]):
            return self.failed("validation loss is not finite", used=used)
        trained = result.genome
        values = {
            "val_accuracy": val.get("accuracy", math.nan),
            "val_loss": val["loss"],
            "params": float(trained.num_params()),
            "flops": float(trained.flops()),
        }
        metrics = {
            **result.metrics,
            **{f"val_{k}": v for k, v in val.items()},
            "params": values["params"],
            "flops": values["flops"],
            "train_loss": float(result.final_loss),
            "steps": float(result.steps),
            "events": float(len(result.events)),
        }
        return Evaluation(-1, {o.name: values[o.name] for o in self.objectives}, trained, metrics, used)

    def default_steps(self, genome: Genome) -> int:
        """``plasticity.epochs`` passes over the training split at the genome's batch size (its genes included)."""
        return default_steps(genome, len(self.data.x_train), self.plasticity)

    def test(self, genome: Genome, device: str = "cpu") -> dict[str, float]:
        """Test-split metrics (``test_loss``, and ``test_accuracy`` for classification) of a trained genome."""
        data = self.on(device)
        return {f"test_{k}": v for k, v in self._measure(genome, data.x_test, data.y_test, device).items()}

    def preprocessing(self) -> Preprocessing:
        """Scaling, standardisation (training-split statistics) and the data's class labels."""
        return self.data.preprocessing

    def calibration_batch(self, n: int, seed: int) -> tuple[Tensor, Tensor] | None:
        """``n`` training samples (all of them if fewer), drawn without replacement with ``seed``."""
        x, y = self.data.x_train, self.data.y_train
        index = np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False)
        picked = torch.as_tensor(np.sort(index))
        return as_inputs(x[picked]), y[picked]

    def _measure(self, genome: Genome, x: Tensor, y: Tensor, device: str) -> dict[str, float]:
        """Mean loss (and accuracy) in eval mode without gradients and in float32 (whatever precision training
        used: fitness stays comparable), in chunks to bound memory."""
        module = genome.to_module(device).eval()
        total, correct = 0.0, 0
        with torch.no_grad():
            for xb, yb in zip(x.split(_CHUNK), y.split(_CHUNK)):
                out, yb = module(as_inputs(xb.to(device))), yb.to(device)
                if self.classification:
                    total += float(F.cross_entropy(out, yb, reduction="sum"))
                    correct += int((out.argmax(dim=1) == yb).sum())
                else:
                    total += float(F.mse_loss(out, yb, reduction="sum"))
        measured = {"loss": total / max(y.numel(), 1)}
        if self.classification:
            measured["accuracy"] = correct / max(len(y), 1)
        return measured


def _absolute_path(cfg: SupervisedTaskConfig) -> SupervisedTaskConfig:
    """The config with its data path made absolute: workers may run in another directory."""
    if cfg.path is None:
        return cfg
    return cfg.model_copy(update={"path": str(Path(cfg.path).expanduser().resolve())})
