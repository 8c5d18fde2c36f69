"""Storages (SQLite, journal), samplers/pruners by name, and recovery of trials a killed process left RUNNING."""

from __future__ import annotations

import socket
import subprocess
import sys

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage
from optuna.trial import TrialState

from evo.mirror import open_storage
from evo.tuning import study as study_module
from evo.tuning.study import WORKER_ATTR, make_pruner, make_sampler, open_study, recover_orphans


def test_sqlite_storage_is_created_on_demand(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = open_storage(None)  # the default, sqlite:///runs/evo.db
    assert isinstance(storage, RDBStorage)
    open_study(storage, "s", ["maximize"], make_sampler("random", 0))
    assert (tmp_path / "runs" / "evo.db").is_file()


@pytest.mark.parametrize("form", ["journal:///{}/j/search.log", "{}/j/search.log"])
def test_journal_storage(tmp_path, form: str) -> None:
    storage = open_storage(form.format(tmp_path))
    assert isinstance(storage, JournalStorage)
    study = open_study(storage, "s", ["minimize"], make_sampler("random", 0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert (tmp_path / "j" / "search.log").is_file()
    assert len(optuna.load_study(study_name="s", storage=open_storage(form.format(tmp_path))).trials) == 2


def test_bad_storage_url() -> None:
    with pytest.raises(ValueError, match="storage 'nodb://x'"):
        open_storage("nodb://x")


def test_study_resumes_but_refuses_other_directions(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/evo.db"
    study = open_study(open_storage(url), "s", ["maximize"], make_sampler("random", 0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(open_study(open_storage(url), "s", ["maximize"], make_sampler("random", 0)).trials) == 1
    with pytest.raises(ValueError, match="exists with directions \\['maximize'\\], not \\['minimize'\\]"):
        open_study(open_storage(url), "s", ["minimize"], make_sampler("random", 0))


@pytest.mark.parametrize("name", ["tpe", "cmaes", "nsga2", "random"])
def test_samplers(name: str) -> None:
    study = optuna.create_study(sampler=make_sampler(name, 0))  # type: ignore[arg-type]
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3)
    assert len(study.trials) == 3


def test_sampler_and_pruner_errors() -> None:
    with pytest.raises(ValueError, match="sampler 'cmaes' optimises one objective"):
        make_sampler("cmaes", 0, multi_objective=True)
    with pytest.raises(ValueError, match="sampler 'grid' is unknown; allowed: tpe, cmaes, nsga2, random"):
        make_sampler("grid", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pruner 'early' is unknown; allowed: median, hyperband, none"):
        make_pruner("early", 3)  # type: ignore[arg-type]
    assert isinstance(make_pruner("hyperband", 5), optuna.pruners.HyperbandPruner)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_orphaned_trial_is_failed_and_requeued(tmp_path) -> None:
    study = open_study(open_storage(f"sqlite:///{tmp_path}/evo.db"), "s", ["maximize"], make_sampler("random", 0))
    orphan = study.ask()
    orphan.suggest_float("x", 0, 1)
    orphan.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{_dead_pid()}")
    alive = study.ask()  # this process still runs it: left alone
    alive.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{__import__('os').getpid()}")
    elsewhere = study.ask()  # another machine's: its heartbeat decides
    elsewhere.set_user_attr(WORKER_ATTR, "other-host:1")

    assert recover_orphans(study) == [orphan.number]
    states = {t.number: t.state for t in study.trials}
    assert states[orphan.number] == TrialState.FAIL
    assert states[alive.number] == states[elsewhere.number] == TrialState.RUNNING
    (requeued,) = study.get_trials(states=(TrialState.WAITING,))
    assert requeued.params == {"x": orphan.params["x"]}
    assert requeued.system_attrs["failed_trial"] == orphan.number
    assert recover_orphans(study) == []  # idempotent


def test_a_requeued_trial_does_not_carry_the_dead_process_tag(tmp_path) -> None:
    """Optuna's re-queue copies user attributes: with the dead process's tag, the copy taken by a live process
    looked orphaned until that process tagged it, and another process's check failed it under it."""
    study = open_study(open_storage(f"sqlite:///{tmp_path}/evo.db"), "s", ["maximize"], make_sampler("random", 0))
    orphan = study.ask()
    orphan.suggest_float("x", 0, 1)
    orphan.set_user_attr("overrides", {"x": 0.5})
    orphan.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{_dead_pid()}")
    assert recover_orphans(study) == [orphan.number]
    (requeued,) = study.get_trials(states=(TrialState.WAITING,))
    assert requeued.user_attrs == {"overrides": {"x": 0.5}}
    taken = study.ask()  # a live process takes it, and has not tagged it yet
    assert taken.number == requeued.number
    assert recover_orphans(study) == []  # another process's check leaves it running
    assert study.trials[taken.number].state == TrialState.RUNNING


def test_orphan_failed_by_another_process_first_is_left_to_it(tmp_path, monkeypatch) -> None:
    """Two processes see the same orphan; the one that loses the race to fail it neither raises nor re-queues."""
    study = open_study(open_storage(f"sqlite:///{tmp_path}/evo.db"), "s", ["maximize"], make_sampler("random", 0))
    orphan = study.ask()
    orphan.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{_dead_pid()}")
    stale = study.get_trials(deepcopy=True, states=(TrialState.RUNNING,))  # seen RUNNING before the other process
    study.tell(orphan, state=TrialState.FAIL)  # ...failed it first
    monkeypatch.setattr(study, "get_trials", lambda *a, **k: stale)

    assert recover_orphans(study) == []
    monkeypatch.undo()
    assert study.get_trials(states=(TrialState.WAITING,)) == []


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_that_never_named_its_process_is_requeued_after_the_grace(tmp_path, monkeypatch) -> None:
    """A process killed between creating a trial and tagging it leaves a RUNNING trial that has neither a
    process to check nor a heartbeat: found by a reliability run, where the next search waited for ever."""
    study = open_study(open_storage(f"sqlite:///{tmp_path}/evo.db"), "s", ["maximize"], make_sampler("random", 0))
    untagged = study.ask()
    untagged.suggest_float("x", 0, 1)
    assert recover_orphans(study) == []  # just created: its process may be about to tag it
    monkeypatch.setattr(study_module, "ORPHAN_GRACE_S", 0.0)
    assert recover_orphans(study) == [untagged.number]
    (requeued,) = study.get_trials(states=(TrialState.WAITING,))
    assert requeued.params == {"x": untagged.params["x"]}


def test_dashboard_outside_a_project_refuses_without_creating_a_storage(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "evo", "dashboard"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "--storage" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
