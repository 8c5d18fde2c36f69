"""The Optuna mirror of runs: every evaluated individual a trial, so optuna-dashboard can browse a run, in the
storage that searches share (see :mod:`evo.mirror.storage`).

It sits below :mod:`evo.runner`, which adds it to a mirrored run; the search (:mod:`evo.tuning`) and the
dashboard use its storage. Importing it imports Optuna: the runner does so only for a run that is mirrored.

Example:
    >>> from evo.types import Objective
    >>> mirror = OptunaMirror("sqlite:///:memory:", "demo", [Objective("fitness")], artifacts=None)
    >>> mirror.study.study_name
    'run:demo'
"""

from evo.mirror.reporter import OptunaMirror, architecture_params, changed_settings, run_study_name, setting_params
from evo.mirror.storage import journal_path, open_storage, storage_file

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
