"""Task config models: the discriminated union, strictness, checks, descriptions, build_task."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from evo.task_kinds import TaskConfig, build_task
from evo.tasks import ControlTask, XorTask
from evo.tasks.config import ControlTaskConfig, SupervisedTaskConfig, XorTaskConfig

ADAPTER: TypeAdapter[Any] = TypeAdapter(TaskConfig)


def test_default_section_is_supervised_digits() -> None:
    cfg = ADAPTER.validate_python({})
    assert isinstance(cfg, SupervisedTaskConfig) and cfg.dataset == "digits"
    assert cfg.resolved_objectives() == ("val_accuracy",)


def test_kinds_select_their_models() -> None:
    control = ADAPTER.validate_python({"kind": "control", "env": "Acrobot-v1", "episodes": 2})
    assert isinstance(control, ControlTaskConfig) and control.episodes == 2
    assert isinstance(ADAPTER.validate_python({"kind": "xor"}), XorTaskConfig)
    supervised = ADAPTER.validate_python({"kind": "supervised", "dataset": "iris", "objectives": ["val_accuracy", "params"]})
    assert supervised.resolved_objectives() == ("val_accuracy", "params")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "supervised", "datasett": "iris"}, "Extra inputs are not permitted"),
        ({"kind": "control", "dataset": "iris"}, "Extra inputs are not permitted"),
        ({"kind": "supervised", "dataset": "nosuch"}, "dataset"),
        ({"kind": "bandit"}, "bandit"),
        ({"dataset": "npz"}, "needs `path`"),
        ({"dataset": "digits", "problem": "regression"}, "needs dataset npz or csv"),
        ({"dataset": "csv", "path": "d.csv", "problem": "regression", "objectives": ["val_accuracy"]}, "use val_loss"),
        ({"dataset": "synthetic", "n_features": 4, "n_informative": 8}, "n_informative"),
        ({"objectives": ["accuracy"]}, "objectives"),
        ({"kind": "control", "episodes": 0}, "episodes"),
        ({"val_fraction": 1.0}, "val_fraction"),
    ],
)
def test_invalid_sections_fail(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ADAPTER.validate_python(data)


def test_regression_defaults_to_val_loss() -> None:
    cfg = SupervisedTaskConfig(dataset="csv", path="d.csv", problem="regression")
    assert cfg.resolved_objectives() == ("val_loss",)


@pytest.mark.parametrize("model", [SupervisedTaskConfig, ControlTaskConfig, XorTaskConfig])
def test_every_field_is_described(model: type[BaseModel]) -> None:
    assert all(field.description for field in model.model_fields.values())


def test_build_gradient_free_tasks() -> None:
    control = build_task(ControlTaskConfig(env="CartPole-v1", episodes=2, max_episode_steps=50))
    assert isinstance(control, ControlTask) and control.episodes == 2 and control.max_episode_steps == 50
    assert isinstance(build_task(XorTaskConfig()), XorTask)


def test_build_with_a_missing_file_names_it(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="missing.npz"):
        build_task(SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "missing.npz")))
