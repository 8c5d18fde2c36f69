"""Where searches live: Optuna storages, samplers, pruners, and recovery of trials a killed process left behind.

Storage URLs:

- nothing: ``sqlite:///runs/evo.db``, the default runs dir's (:func:`evo.runner.storage_url`; created on demand,
  nothing to start);
- any SQLAlchemy URL (``postgresql://...``, with the ``postgres`` extra's driver psycopg; ``mysql://...``);
  several searches may open a fresh database at once;
- ``journal:///path/file.log`` or any path ending in ``.log``: an Optuna journal file, for clusters
  that share a file system but no database.

A database storage records a heartbeat per running trial; a trial whose heartbeat stops (its process
was killed) is failed and re-queued with the same parameters
(:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`). Before each trial it starts, a search
also fails and re-queues at once (:func:`recover_orphans`) the RUNNING trials whose process on this
host no longer exists — the journal storage has no heartbeat, and waiting out a grace period would be
needless there.

Example:
    >>> study = open_study(open_storage("sqlite:///:memory:"), "demo", ["maximize"], make_sampler("random", 0))
    >>> study.direction.name
    'MAXIMIZE'
"""

from __future__ import annotations

import datetime
import os
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from evo.errors import ConfigError, StorageError
from evo.runner import DEFAULT_RUNS_DIR, storage_url

__all__ = [
    "DEFAULT_STORAGE",
    "PrunerName",
    "SamplerName",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_study",
    "recover_orphans",
    "worker_tag",
]

DEFAULT_STORAGE = storage_url(DEFAULT_RUNS_DIR)
SamplerName = Literal["tpe", "cmaes", "nsga2", "random"]
PrunerName = Literal["median", "hyperband", "none"]
#: seconds SQLite waits for a lock held by another thread or process before "database is locked".
SQLITE_TIMEOUT_S = 60
#: a re-queued trial is retried this many times before it stays failed.
MAX_RETRY = 2
#: user attribute naming the process that runs a trial ("host:pid").
WORKER_ATTR = "worker"
#: seconds after its start a RUNNING trial that names no process counts as orphaned: its process died between
#: creating it and tagging it (milliseconds apart), so nothing else — no heartbeat yet either — would ever end it.
ORPHAN_GRACE_S = 60
#: study user attribute identifying the search (config, overrides, space) whose trials the study holds.
FINGERPRINT_ATTR = "search_fingerprint"
#: attempts at opening a database another process is creating the tables of at the same moment.
CREATE_TRIES = 5


@contextmanager
def _experimental() -> Iterator[None]:
    """Optuna calls heartbeats and their callbacks experimental; resume relies on them, so silence that here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _retry() -> RetryHeartbeatStaleTrialCallback:
    # Intermediate values carry over: a retried trial resumes its run directory from the last checkpoint.
    with _experimental():
        return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY, inherit_intermediate_values=True)


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
        url: storage URL; None = :data:`DEFAULT_STORAGE`.
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
            with _experimental():
                return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                                  grace_period=grace_period, heartbeat_stale_trial_callback=_retry())
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


def make_sampler(name: SamplerName, seed: int | None, multi_objective: bool = False) -> optuna.samplers.BaseSampler:
    """The sampler called ``name``; CMA-ES handles one objective only."""
    if name == "tpe":
        with _experimental():  # multivariate TPE with groups handles conditional parameters
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    if name == "cmaes":
        if multi_objective:
            raise ConfigError("sampler 'cmaes' optimises one objective; use tpe, nsga2 or random for several")
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"sampler {name!r} is unknown; allowed: tpe, cmaes, nsga2, random")


def make_pruner(name: PrunerName, generations: int) -> optuna.pruners.BasePruner:
    """The pruner called ``name``, fed one step per generation (``generations + 1`` steps in all)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(generations + 1, 2))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"pruner {name!r} is unknown; allowed: median, hyperband, none")


def open_study(
    storage: BaseStorage,
    name: str,
    directions: Sequence[str],
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner | None = None,
    fingerprint: str | None = None,
) -> optuna.Study:
    """Create the study ``name`` or load it to resume; refuses one created with other objectives or, given a
    ``fingerprint`` (see :func:`evo.tuning.driver.search_fingerprint`), by another search.

    A study that has no fingerprint yet (new, or made before fingerprints were kept) takes this one.

    Raises:
        StorageError: the study exists with other directions or another fingerprint.
    """
    study = optuna.create_study(storage=storage, study_name=name, directions=list(directions),
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    existing = [d.name.lower() for d in study.directions]
    if existing != list(directions):
        raise StorageError(f"study {name!r} exists with directions {existing}, not {list(directions)}; "
                           "use another --study-name")
    if fingerprint is not None:
        stored = study.user_attrs.get(FINGERPRINT_ATTR)
        if stored is None:
            study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
        elif stored != fingerprint:
            raise StorageError(f"study {name!r} holds the trials of another search (its config, --set overrides or "
                               "space differ, and their trials would not compare); use another --study-name")
    return study


def worker_tag() -> str:
    """``host:pid`` of this process, recorded on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(tag: object) -> bool:
    host, _, pid = str(tag).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's trial: its heartbeat decides
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _orphaned(trial: FrozenTrial) -> bool:
    """A RUNNING trial nobody will finish: its process on this host is gone, or it never named one in time."""
    tag = trial.user_attrs.get(WORKER_ATTR)
    if tag is None:
        started = trial.datetime_start or datetime.datetime.now()
        return (datetime.datetime.now() - started).total_seconds() > ORPHAN_GRACE_S
    return _process_gone(tag)


def recover_orphans(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials whose process on this host is gone, re-queue their parameters; returns their numbers.

    Trials of other hosts are left to the heartbeat (database storages): only their own process can know.
    """
    with _experimental():
        optuna.storages.fail_stale_trials(study)
    storage, recovered = study._storage, []
    retry = _retry()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _orphaned(trial) and storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            retry(study, storage.get_trial(trial._trial_id))
            recovered.append(trial.number)
    return recovered
