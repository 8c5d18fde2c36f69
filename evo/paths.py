"""Where a run's files and its Optuna mirror go unless told otherwise: one rule for every runs dir.

A run lives in ``<runs dir>/<name>/`` (a search's trials in ``<runs dir>/<study>/trial_NNNN``); the runs and
searches under a runs dir share the Optuna storage ``sqlite:///<runs dir>/evo.db`` and keep architecture
diagrams in ``<runs dir>/artifacts``. The runner, the mirror, the search and the dashboard all read these
names here, so ``--runs-dir`` means the same for ``evo run``, ``evo search`` and ``evo dashboard``.

Example:
    >>> storage_url("runs")
    'sqlite:///runs/evo.db'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_ARTIFACTS", "DEFAULT_RUNS_DIR", "DEFAULT_STORAGE", "RUN_CONFIG", "artifacts_dir", "storage_url"]

#: Where run directories go unless told otherwise.
DEFAULT_RUNS_DIR = Path("runs")
#: A run's resolved config, inside its directory: the first file a run writes, so its presence marks a run
#: directory (for the store, ``evo.load`` and the config loader's "continue that run" hint alike).
RUN_CONFIG = "config.yaml"


def storage_url(runs_dir: str | Path) -> str:
    """The Optuna storage of the runs and searches under ``runs_dir`` unless one is named: its ``evo.db``."""
    return f"sqlite:///{Path(runs_dir) / 'evo.db'}"


def artifacts_dir(runs_dir: str | Path) -> Path:
    """Where the mirror of the runs under ``runs_dir`` keeps architecture diagrams."""
    return Path(runs_dir) / "artifacts"


#: The default runs dir's storage and diagram folder.
DEFAULT_STORAGE = storage_url(DEFAULT_RUNS_DIR)
DEFAULT_ARTIFACTS = artifacts_dir(DEFAULT_RUNS_DIR)
