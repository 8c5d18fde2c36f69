"""Add many finished trials to an Optuna storage at once: the mirror writes a whole generation this way.

Optuna's ``create_new_trial(template_trial=...)`` runs two or three SQL queries per parameter and per
attribute, each through the ORM: about 13 ms per mirrored individual, more than a small network takes to
evaluate. For a database storage this module inserts a batch of trials with their values, params and
attributes as rows of Optuna's own tables in one transaction (well under a millisecond per trial);
any other storage (a journal file, in memory) gets Optuna's ordinary ``create_new_trial`` per trial.

Example:
    >>> import optuna
    >>> storage = optuna.storages.RDBStorage("sqlite:///:memory:")
    >>> study = optuna.create_study(storage=storage)
    >>> trial = optuna.trial.create_trial(value=1.0, params={"x": 2},
    ...                                   distributions={"x": optuna.distributions.IntDistribution(0, 3)})
    >>> add_trials(storage, study._study_id, [trial])
    >>> study.trials[0].params
    {'x': 2}
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from optuna.distributions import distribution_to_json
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial
from sqlalchemy import Table, func, insert, select

__all__ = ["add_trials"]


def add_trials(storage: BaseStorage, study_id: int, trials: Sequence[FrozenTrial]) -> None:
    """Add ``trials`` (finished templates, as ``optuna.trial.create_trial`` makes them) to the study, in order."""
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    if not trials:
        return  # an insert of no rows would be one row of defaults
    if not isinstance(backend, RDBStorage):
        for trial in trials:
            storage.create_new_trial(study_id, template_trial=trial)
        return
    with _create_scoped_session(backend.scoped_session) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)  # numbers stay unique
        first = session.scalar(select(func.count()).where(models.TrialModel.study_id == study_id))
        trial_table = models.TrialModel.__table__
        session.execute(insert(trial_table), [
            {"number": number, "study_id": study_id, "state": trial.state,
             "datetime_start": _utc(trial.datetime_start), "datetime_complete": _utc(trial.datetime_complete)}
            for number, trial in enumerate(trials, first)])
        ids = dict(session.execute(select(trial_table.c.number, trial_table.c.trial_id).where(
            trial_table.c.study_id == study_id, trial_table.c.number >= first)).all())
        children: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        for number, trial in enumerate(trials, first):
            for table, row in _children(trial):
                children[table].append({"trial_id": ids[number], **row})
        for table, rows in children.items():
            session.execute(insert(table), rows)  # one executemany per table


def _children(trial: FrozenTrial) -> Iterator[tuple[Table, dict[str, Any]]]:
    """The rows of ``trial``'s values, params and attributes, each with the table it goes into."""
    for objective, value in enumerate(trial.values or ()):
        stored, kind = models.TrialValueModel.value_to_stored_repr(value)
        yield models.TrialValueModel.__table__, {"objective": objective, "value": stored, "value_type": kind}
    for name, value in trial.params.items():
        distribution = trial.distributions[name]
        yield models.TrialParamModel.__table__, {"param_name": name, "param_value": distribution.to_internal_repr(value),
                                                 "distribution_json": distribution_to_json(distribution)}
    for key, value in trial.user_attrs.items():
        yield models.TrialUserAttributeModel.__table__, {"key": key, "value_json": json.dumps(value)}
    for key, value in trial.system_attrs.items():
        yield models.TrialSystemAttributeModel.__table__, {"key": key, "value_json": json.dumps(value)}


def _utc(moment: datetime | None) -> datetime | None:
    """Optuna's database storage keeps naive UTC times."""
    return None if moment is None else moment.astimezone(timezone.utc).replace(tzinfo=None)
