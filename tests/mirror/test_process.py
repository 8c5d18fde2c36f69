"""A mirror given a storage URL writes from a process of its own: it ends with the run, its errors reach the driver
as one StorageError line, and a resumed run's individuals are mirrored once."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from evo.errors import StorageError
from evo.mirror import OptunaMirror, open_storage, run_study_name
from tests.mirror.test_mirror import OBJECTIVES, _generation_end, _individual


def _writer_process() -> multiprocessing.process.BaseProcess:
    (child,) = multiprocessing.active_children()
    return child


def test_a_url_is_written_from_a_process_that_ends_with_the_run(tmp_path: Path) -> None:
    mirror = OptunaMirror(f"sqlite:///{tmp_path}/evo.db", "r", OBJECTIVES, artifacts=tmp_path / "art")
    child = _writer_process()
    assert child.pid != os.getpid() and child.is_alive()
    for i in range(3):
        mirror.on_evaluated(_individual(i, (4 + i,), parents=(i - 1,) if i else ()))
    _generation_end(mirror, best_id=2)
    mirror.on_run_end()
    assert not child.is_alive() and multiprocessing.active_children() == []
    trials = mirror.study.trials
    assert [(t.user_attrs["individual_id"], t.user_attrs["lineage"]) for t in trials] == [(0, []), (1, [0]), (2, [0, 1])]
    assert mirror.writer_cpu_s > 0  # the process's own CPU seconds, reported with each write


def test_a_storage_error_in_the_mirror_process_is_one_storage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/evo.db"
    mirror = OptunaMirror(url, "r", OBJECTIVES, artifacts=None)
    mirror.on_evaluated(_individual(0, (8,)))
    _generation_end(mirror, best_id=0)
    with sqlite3.connect(tmp_path / "evo.db") as db:
        db.execute("DROP TABLE trial_values")  # what a damaged or foreign database can do to the next write
    mirror.on_evaluated(_individual(1, (8,), parents=(0,)))
    with pytest.raises(StorageError, match=f"^{url}: cannot write the Optuna mirror \\(no such table: trial_values\\)"):
        mirror.on_run_end()
    assert multiprocessing.active_children() == []


def test_a_mirror_its_owner_closes_raises_the_writer_error_at_close_unless_the_run_ended_on_its_own(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/evo.db"
    mirrors = [OptunaMirror(url, name, OBJECTIVES, artifacts=None, wait_at_run_end=False) for name in ("a", "b")]
    for mirror in mirrors:
        mirror.flush()  # set up: the study exists
    with sqlite3.connect(tmp_path / "evo.db") as db:
        db.execute("DROP TABLE trial_values")
    for mirror in mirrors:
        mirror.on_evaluated(_individual(0, (8,)))
        mirror.on_run_end()  # hands the batch over: no wait, no error yet
    with pytest.raises(StorageError, match=f"^{url}: cannot write the Optuna mirror \\(no such table: trial_values\\)"):
        mirrors[0].close()
    mirrors[1].close(raise_errors=False)  # the run is ending on an error of its own, which this must not hide
    assert multiprocessing.active_children() == []


def test_a_bad_url_is_one_storage_error_when_the_driver_next_waits() -> None:
    """The process sets the storage up while the run starts; its error comes out at the first write's wait."""
    mirror = OptunaMirror("nosuchdb://host/evo", "r", OBJECTIVES, artifacts=None)
    mirror.on_evaluated(_individual(0, (8,)))
    with pytest.raises(StorageError, match="^storage 'nosuchdb://host/evo': Can't load plugin"):
        mirror.flush()
    with pytest.raises(StorageError, match="^storage 'nosuchdb://host/evo'"):
        mirror.study  # noqa: B018 - reading the study meets the same error
    mirror.on_evaluated(_individual(1, (8,)))
    mirror.on_run_end()  # the error came out once; the mirror writes nothing more
    assert multiprocessing.active_children() == []


def test_a_trial_left_open_is_finished_by_the_mirror_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/evo.db"
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name=run_study_name("r"), directions=["maximize", "minimize"])
    study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={"individual_id": 0}))
    study.add_trial(optuna.trial.create_trial(values=[0.5, 1.0], user_attrs={"individual_id": 1}))
    resumed = OptunaMirror(url, "r", OBJECTIVES, artifacts=None)
    for i in range(3):  # 0 and 1 redone after a kill, 2 new
        resumed.on_evaluated(_individual(i, (8,), parents=(i - 1,) if i else ()))
    _generation_end(resumed, best_id=2)
    resumed.on_run_end()
    trials = optuna.load_study(study_name=run_study_name("r"), storage=storage).trials
    assert [(t.state, t.user_attrs["individual_id"]) for t in trials] == [(TrialState.COMPLETE, i) for i in range(3)]
    assert trials[2].user_attrs["lineage"] == [0, 1]  # the lineage runs through the individuals mirrored before

