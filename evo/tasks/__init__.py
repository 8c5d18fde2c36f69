"""Tasks: the problems genomes are evaluated on.

The value types tasks return (:class:`Evaluation`, :class:`Budget`, ...) live in :mod:`evo.types` and are
re-exported here; the union of every task kind's config and ``build_task`` are in :mod:`evo.task_kinds`.
"""

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

#: names imported on first use: a module that needs only the Task interface (the backends, the loop) does
#: not import gymnasium, scikit-learn or every task.
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
