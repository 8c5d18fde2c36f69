"""The Optuna mirror of runs: every evaluated individual a trial, so optuna-dashboard can browse a run, in the
storage that searches share (see :mod:`evo.mirror.storage`).

It sits below :mod:`evo.runner`, which adds it to a mirrored run; the search (:mod:`evo.tuning`) and the
dashboard use its storage. Importing it does not import Optuna: a run mirrored into a storage URL writes from a
process of its own (:mod:`evo.mirror.reporter`), so its driver never does; the storage's names and
``architecture_params`` import Optuna when first used.

Example:
    >>> from evo.types import Objective
    >>> mirror = OptunaMirror("sqlite:///:memory:", "demo", [Objective("fitness")], artifacts=None)
    >>> mirror.study.study_name
    'run:demo'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from evo.mirror.reporter import OptunaMirror, changed_settings, run_study_name, setting_params

if TYPE_CHECKING:
    from evo.mirror.storage import journal_path, open_storage, storage_file
    from evo.mirror.trials import architecture_params

__all__ = [
    "OptunaMirror",
    "architecture_params",
    "changed_settings",
    "journal_path",
    "open_storage",
    "run_study_name",
    "setting_params",
    "storage_file",
]

_LAZY = {"journal_path": "storage", "open_storage": "storage", "storage_file": "storage",
         "architecture_params": "trials"}


def __getattr__(name: str) -> object:
    """The names whose modules import Optuna, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
