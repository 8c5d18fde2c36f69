"""ContinualTask behind the Task interface, and its config section."""

from __future__ import annotations


import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from evo.config import ConfigError, load_config
from evo.continual.config import ContinualTaskConfig, LearnerConfig
from evo.continual.task import ContinualTask
from evo.genome import Genome
from evo.task_kinds import TaskConfig, build_task
from evo.types import Budget, Direction

SMALL = {"class_splits": [[0, 1], [2, 3]], "max_train_samples": 100, "learner": {"epochs": 2, "growth": 4}}


@pytest.fixture(scope="module")
def task() -> ContinualTask:
    return ContinualTask(ContinualTaskConfig(objectives=["acc", "params"], **SMALL))


def test_kind_continual_builds_a_continual_task() -> None:
    cfg = TypeAdapter(TaskConfig).validate_python({"kind": "continual", **SMALL})
    built = build_task(cfg)
    assert isinstance(built, ContinualTask) and built.output_size == 10 and built.input_shape == (64,)


def test_evaluate_reports_objectives_and_every_metric(task: ContinualTask) -> None:
    genome = Genome.mlp((64,), (12,), 10, seed=1)
    result = task.evaluate(genome, Budget(), "cpu", seed=0)
    assert result.ok and result.genome is genome  # evolution passes on the starting network
    assert [(o.name, o.direction) for o in task.objectives] == [("acc", Direction.MAXIMIZE), ("params", Direction.MINIMIZE)]
    assert result.objectives["acc"] == result.metrics["task_acc"]
    assert result.objectives["params"] == result.metrics["params_after_1"] > result.metrics["params_after_0"]
    for key in ("task_bwt", "task_max_forgetting", "class_acc", "class_bwt", "class_forgetting"):
        assert key in result.metrics
    again = task.evaluate(genome, Budget(), "cpu", seed=0)
    assert again.objectives == result.objectives


def test_step_budget_is_per_task_and_test_uses_the_test_split(task: ContinualTask) -> None:
    genome = Genome.mlp((64,), (12,), 10, seed=1)
    result = task.evaluate(genome, Budget(steps=3), "cpu", seed=0)
    retrain = 2 * 2 * 4  # two tasks × retrain_epochs × ceil(100 / 32) batches
    assert result.budget_used.steps == 2 * 3 + retrain
    assert set(task.test(genome)) >= {"test_task_acc", "test_class_bwt"}
    x, y = task.calibration_batch(16, seed=0)
    assert x.shape == (16, 64) and set(y.tolist()) <= {0, 1, 2, 3}


def test_a_genome_that_does_not_fit_fails_the_evaluation(task: ContinualTask) -> None:
    result = task.evaluate(Genome.mlp((64,), (12,), 3), Budget(), "cpu", seed=0)
    assert not result.ok and "output 10" in str(result.error) and result.objectives["acc"] == float("-inf")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["task.kind=continual", "task.stream=rotated"], "stream: Input should be"),
        (["task.kind=continual", "task.learner.method=ewc"], "learner.method"),
        (["task.kind=continual", "task.learner.keep_fraction=0"], "keep_fraction"),
        (["task.kind=continual", "task.learner.protection=1.5"], "protection"),
        (["task.kind=continual", "task.class_splits=[[0, 1], [1, 2]]"], "distinct"),
        (["task.kind=continual", "task.objectives=[]"], "at least one"),
        (["task.kind=continual", "task.learner.growht=3"], "unknown field"),
        (["task.kind=continual", "task.dataset=mnist"], "dataset"),
    ],
)
def test_config_validation_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_learner_knobs_are_reachable_by_dotted_paths() -> None:
    cfg = load_config(None, ["task.kind=continual", "task.learner.growth=3", "task.learner.method=packnet"])
    assert cfg.task.learner.growth == 3 and cfg.task.learner.method == "packnet"


@pytest.mark.parametrize("model", [ContinualTaskConfig, LearnerConfig])
def test_every_field_is_described(model: type[BaseModel]) -> None:
    assert all(field.description for field in model.model_fields.values())


def test_classes_per_task_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="classes_per_task"):
        ContinualTaskConfig(classes_per_task=0)
