"""The Optuna storage runs are mirrored into and searches run in: opened from a URL, created on demand.

Storage URLs:

- nothing: ``sqlite:///runs/evo.db``, the default runs dir's (:data:`evo.paths.DEFAULT_STORAGE`; created on
  demand, nothing to start);
- any SQLAlchemy URL (``postgresql://...``, with the ``postgres`` extra's driver psycopg; ``mysql://...``);
  several searches may open a fresh database at once;
- ``journal:///path/file.log`` or any path ending in ``.log``: an Optuna journal file, for clusters
  that share a file system but no database.

A database storage records a heartbeat per running trial; a trial whose heartbeat stops (its process
was killed) is failed and re-queued with the same parameters (:func:`retry_stale`).

Example:
    >>> type(open_storage("sqlite:///:memory:")).__name__
    'RDBStorage'
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from evo.errors import StorageError
from evo.paths import DEFAULT_STORAGE

__all__ = ["WORKER_ATTR", "experimental", "journal_path", "open_storage", "retry_stale", "storage_file"]

#: seconds SQLite waits for a lock held by another thread or process before "database is locked".
SQLITE_TIMEOUT_S = 60
#: a re-queued trial is retried this many times before it stays failed.
MAX_RETRY = 2
#: user attribute naming the process that runs a trial ("host:pid").
WORKER_ATTR = "worker"
#: attempts at opening a database another process is creating the tables of at the same moment.
CREATE_TRIES = 5


@contextmanager
def experimental() -> Iterator[None]:
    """Optuna calls heartbeats and their callbacks experimental; resume relies on them, so silence that here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


class _Requeue(RetryHeartbeatStaleTrialCallback):
    """Optuna's re-queueing of a dead trial, without the dead process's :data:`WORKER_ATTR`: the copy would carry
    it (Optuna copies user attributes) until the process taking the trial tags it, and in that window another
    process's check for dead processes would fail the trial under its new runner."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial = copy.copy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != WORKER_ATTR}
        super().__call__(study, trial)


def retry_stale() -> RetryHeartbeatStaleTrialCallback:
    """Re-queue a dead trial with its parameters, at most :data:`MAX_RETRY` times."""
    # Intermediate values carry over: a retried trial resumes its run directory from the last checkpoint.
    with experimental():
        return _Requeue(max_retry=MAX_RETRY, inherit_intermediate_values=True)


def journal_path(url: str) -> Path | None:
    """The journal file a URL names, or None for a database URL."""
    if url.startswith("journal://"):
        return Path(url.removeprefix("journal://"))
    return Path(url) if url.endswith(".log") and "://" not in url else None


def storage_file(url: str) -> Path | None:
    """The local file a storage URL keeps its data in (SQLite database, journal), or None for a server."""
    journal = journal_path(url)
    if journal is not None:
        return journal
    # relative after sqlite:///, absolute after sqlite:////
    database = url.removeprefix("sqlite:///").partition("?")[0] if url.startswith("sqlite:///") else ""
    return Path(database) if database not in ("", ":memory:") else None


def open_storage(url: str | None = None, *, heartbeat_interval: int = 30, grace_period: int | None = None) -> BaseStorage:
    """An Optuna storage for ``url`` (see module docstring); the SQLite file or journal folder is created on demand.

    Args:
        url: storage URL; None = :data:`~evo.paths.DEFAULT_STORAGE`.
        heartbeat_interval: seconds between a running trial's heartbeats (database storages).
        grace_period: seconds without a heartbeat after which a trial counts as dead; None = twice the interval.
    """
    url = url or DEFAULT_STORAGE
    journal = journal_path(url)
    if journal is not None:
        journal.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(journal)))
    engine_kwargs: dict[str, object] = {"pool_pre_ping": True}
    if url.startswith("sqlite:"):
        database = storage_file(url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    attempt = 1
    while True:
        try:
            with experimental():
                return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                                  grace_period=grace_period, heartbeat_stale_trial_callback=retry_stale())
        except SQLAlchemyError as err:
            if attempt == CREATE_TRIES or not _creation_race(err):
                raise StorageError(f"storage {url!r}: {str(err).splitlines()[0]}") from None
        except (ImportError, ValueError) as err:  # bad URL or missing database driver
            raise StorageError(f"storage {url!r}: {err}") from None
        time.sleep(0.2 * attempt)
        attempt += 1


def _creation_race(err: SQLAlchemyError) -> bool:
    """Whether ``err`` says another process created the same tables (or their version row) first: a fresh
    database opened by two searches at once (SQLite: "table ... already exists"; PostgreSQL: a duplicate
    key or relation). Opening again then finds the tables made."""
    return isinstance(err, IntegrityError) or "already exists" in str(err)
