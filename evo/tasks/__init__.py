"""Tasks: the problems genomes are evaluated on."""

from __future__ import annotations

import importlib
from typing import Any

from evo.tasks._base import Task
from evo.types import Budget, Direction, Evaluation, Job, Objective

__all__ = [
    "Budget",
    "ControlTask",
    "ControlTaskConfig",
    "Direction",
    "Evaluation",
    "Job",
    "Objective",
    "SplitData",
    "SupervisedTaskConfig",
    "Task",
    "XorTask",
    "XorTaskConfig",
    "load_dataset",
]

#: names imported on first use: reading a run (``evo show``) needs the value types above, not gymnasium,
#: scikit-learn or torch.
_LAZY = {
    **dict.fromkeys(("ControlTaskConfig", "SupervisedTaskConfig", "XorTaskConfig"), "evo.tasks.config"),
    "ControlTask": "evo.tasks.control",
    "SplitData": "evo.tasks.data",
    "load_dataset": "evo.tasks.data",
    "XorTask": "evo.tasks.xor",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'evo.tasks' has no attribute {name!r}")
