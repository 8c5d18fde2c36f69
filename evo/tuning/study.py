"""Searches' studies: samplers and pruners by name, a study that keeps to one search, and recovery of trials
a killed process left behind (the storage itself is :func:`evo.mirror.open_storage`'s).

A database storage records a heartbeat per running trial; a trial whose heartbeat stops (its process
was killed) is failed and re-queued with the same parameters
(:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`). Before each trial it starts, a search
also fails and re-queues at once (:func:`recover_orphans`) the RUNNING trials whose process on this
host no longer exists — the journal storage has no heartbeat, and waiting out a grace period would be
needless there.

Example:
    >>> from evo.mirror import open_storage
    >>> study = open_study(open_storage("sqlite:///:memory:"), "demo", ["maximize"], make_sampler("random", 0))
    >>> study.direction.name
    'MAXIMIZE'
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Sequence
from typing import Literal

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from evo.errors import ConfigError, StorageError
from evo.mirror.storage import WORKER_ATTR, experimental, retry_stale

__all__ = [
    "PrunerName",
    "SamplerName",
    "make_pruner",
    "make_sampler",
    "open_study",
    "recover_orphans",
    "worker_tag",
]

SamplerName = Literal["tpe", "cmaes", "nsga2", "random"]
PrunerName = Literal["median", "hyperband", "none"]
#: seconds after its start a RUNNING trial that names no process counts as orphaned: its process died between
#: creating it and tagging it (milliseconds apart), so nothing else — no heartbeat yet either — would ever end it.
ORPHAN_GRACE_S = 60
#: study user attribute identifying the search (config, overrides, space) whose trials the study holds.
FINGERPRINT_ATTR = "search_fingerprint"


def make_sampler(name: SamplerName, seed: int | None, multi_objective: bool = False) -> optuna.samplers.BaseSampler:
    """The sampler called ``name``; CMA-ES handles one objective only."""
    if name == "tpe":
        with experimental():  # multivariate TPE with groups handles conditional parameters
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
    with experimental():
        optuna.storages.fail_stale_trials(study)
    storage, recovered = study._storage, []
    retry = retry_stale()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _orphaned(trial):
            continue
        try:
            failed = storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:  # another process failed (and re-queued) it first
            continue
        if failed:
            retry(study, storage.get_trial(trial._trial_id))
            recovered.append(trial.number)
    return recovered
