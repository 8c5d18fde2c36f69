"""SupervisedTask end to end on small data: training helps, objectives, failures, test split, pickling."""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from evo.genome import Genome
from evo.plasticity import PlasticityConfig
from evo.task_kinds import build_task
from evo.tasks import Budget, SplitData, SupervisedTaskConfig, load_dataset
from evo.tasks import supervised as supervised_module
from evo.tasks.supervised import SupervisedTask

DIGITS = SupervisedTaskConfig(dataset="digits", max_train_samples=300, objectives=["val_accuracy", "params"])


@pytest.fixture(scope="module")
def task() -> SupervisedTask:
    return SupervisedTask(DIGITS, PlasticityConfig())


@pytest.fixture(scope="module")
def genome() -> Genome:
    return Genome.mlp((64,), (32,), 10, seed=0)


def test_shapes_and_objectives(task: SupervisedTask) -> None:
    assert task.input_shape == (64,) and task.output_size == 10
    assert [(o.name, o.direction.value) for o in task.objectives] == [("val_accuracy", "maximize"), ("params", "minimize")]


def test_short_training_beats_chance_by_far(task: SupervisedTask, genome: Genome) -> None:
    before = task.test(genome)["test_accuracy"]
    ev = task.evaluate(genome, Budget(steps=150), "cpu", seed=0)
    assert ev.ok, ev.error
    assert ev.objectives["val_accuracy"] > 0.7 > before + 0.3
    assert ev.genome is not None and ev.objectives["params"] == ev.genome.num_params()
    assert {"params", "flops", "train_loss", "steps", "val_loss", "val_accuracy"} <= ev.metrics.keys()
    assert ev.budget_used.steps == ev.metrics["steps"] > 0 and ev.budget_used.samples > 0
    assert task.test(ev.genome)["test_accuracy"] > 0.6


def test_evaluation_is_deterministic_for_a_seed(task: SupervisedTask, genome: Genome) -> None:
    a = task.evaluate(genome, Budget(steps=10), "cpu", seed=3)
    b = task.evaluate(genome, Budget(steps=10), "cpu", seed=3)
    assert a.objectives == b.objectives and a.metrics["train_loss"] == b.metrics["train_loss"]


def test_diverging_training_fails_with_worst_objectives(
    task: SupervisedTask, genome: Genome, monkeypatch: pytest.MonkeyPatch
) -> None:
    def diverge(*args: Any, **kwargs: Any) -> Any:
        raise FloatingPointError("loss is inf at step 3")

    monkeypatch.setattr(supervised_module, "train", diverge)
    ev = task.evaluate(genome, Budget(steps=5), "cpu", seed=0)
    assert not ev.ok and "loss is inf" in (ev.error or "") and ev.genome is None
    assert ev.objectives == {"val_accuracy": -math.inf, "params": math.inf}


def test_huge_learning_rate_fails_and_counts_the_steps_it_took(genome: Genome) -> None:
    task = SupervisedTask(DIGITS, PlasticityConfig(optimizer="sgd", lr=1e30))  # weights overflow float32
    ev = task.evaluate(genome, Budget(steps=30), "cpu", seed=0)
    assert not ev.ok and ev.objectives["val_accuracy"] == -math.inf and ev.genome is None
    assert re.fullmatch(r"Diverged: loss became (nan|inf) at step \d+", ev.error or "")
    step = int((ev.error or "").rsplit(" ", 1)[1])
    assert 0 < ev.budget_used.steps == step + 1 < 30  # the work up to the divergence is spent budget
    assert ev.budget_used.samples == 32 * ev.budget_used.steps and ev.budget_used.seconds > 0


def test_non_finite_weights_fail(task: SupervisedTask, genome: Genome) -> None:
    broken = genome.with_weights({k: torch.full_like(v, math.inf) for k, v in genome.weights.items()})
    ev = task.evaluate(broken, Budget(steps=2), "cpu", seed=0)
    assert not ev.ok and ev.objectives["val_accuracy"] == -math.inf


def test_calibration_batch(task: SupervisedTask) -> None:
    x, y = task.calibration_batch(50, seed=1) or (None, None)
    x2, _ = task.calibration_batch(50, seed=1) or (None, None)
    assert x is not None and y is not None and x.shape == (50, 64) and y.shape == (50,)
    assert torch.equal(x, x2)
    everything = task.calibration_batch(10_000, seed=1)
    assert everything is not None and len(everything[0]) == 300


def test_pickles_without_the_data(task: SupervisedTask, genome: Genome) -> None:
    blob = pickle.dumps(task)
    assert len(blob) < 20_000  # a config, not 300 digits
    clone = pickle.loads(blob)
    assert clone.test(genome) == task.test(genome)


def test_from_split_data_with_flops_objective(genome: Genome) -> None:
    data = load_dataset(DIGITS)
    task = SupervisedTask(data, objectives=["flops"])
    assert isinstance(data, SplitData) and task.objectives[0].name == "flops"
    ev = task.evaluate(genome, Budget(steps=3), "cpu", seed=0)
    assert ev.ok and ev.genome is not None
    assert ev.objectives == {"flops": float(ev.genome.flops())}


def test_regression_on_csv(tmp_path: Path) -> None:
    rows = [f"{i / 10},{(i % 7) / 7},{0.3 * i / 10 - 0.5 * (i % 7) / 7}" for i in range(120)]
    (tmp_path / "r.csv").write_text("a,b,y\n" + "\n".join(rows) + "\n")
    cfg = SupervisedTaskConfig(dataset="csv", path=str(tmp_path / "r.csv"), problem="regression")
    task = build_task(cfg, PlasticityConfig())
    assert isinstance(task, SupervisedTask) and task.output_size == 1 and task.objectives[0].name == "val_loss"
    ev = task.evaluate(Genome.mlp((2,), (8,), 1), Budget(steps=20), "cpu", seed=0)
    assert ev.ok and ev.genome is not None and math.isfinite(ev.objectives["val_loss"])
    assert set(task.test(ev.genome)) == {"test_loss"}


@pytest.mark.parametrize(("objectives", "message"), [(["accuracy"], "unknown"), (["val_accuracy"], "use val_loss")])
def test_bad_objectives(tmp_path: Path, objectives: list[str], message: str) -> None:
    (tmp_path / "r.csv").write_text("a,y\n" + "\n".join(f"{i},{i * 0.5}" for i in range(20)) + "\n")
    data = load_dataset(SupervisedTaskConfig(dataset="csv", path=str(tmp_path / "r.csv"), problem="regression"))
    with pytest.raises(ValueError, match=message):
        SupervisedTask(data, objectives=objectives)
