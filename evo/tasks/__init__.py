"""Tasks: the problems genomes are evaluated on."""

from __future__ import annotations

from evo.tasks._base import Budget, Direction, Evaluation, Job, Objective, Task
from evo.tasks.config import ContinualTaskConfig, ControlTaskConfig, SupervisedTaskConfig, TaskConfig, XorTaskConfig, build_task
from evo.tasks.control import ControlTask
from evo.tasks.data import SplitData, load_dataset
from evo.tasks.xor import XorTask

__all__ = [
    "Budget",
    "ContinualTaskConfig",
    "ControlTask",
    "ControlTaskConfig",
    "Direction",
    "Evaluation",
    "Job",
    "Objective",
    "SplitData",
    "SupervisedTaskConfig",
    "Task",
    "TaskConfig",
    "XorTask",
    "XorTaskConfig",
    "build_task",
    "load_dataset",
]
