"""Exactly the asked trials across threads and processes sharing a storage; resume draws new values; a study
keeps to one search; study names stay inside the runs directory."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from evo.config import EvoConfig, apply_overrides
from evo.errors import ConfigError, StorageError
from evo.mirror import open_storage
from evo.tuning import open_study, parse_space, run_search
from evo.tuning import loop
from evo.tuning.loop import SURPLUS_ATTR, TrialLoop
from evo.tuning.study import WORKER_ATTR, make_sampler
from evo.testing import at_once

SPACE = {"parameters": {
    "operators.mutate_weights.sigma": {"type": "float", "low": 0.05, "high": 1.0, "log": True},
    "evolution.lamarckian": {"type": "categorical", "choices": [True, False]},
}}


def _states(study: optuna.Study) -> list[TrialState]:
    return [t.state for t in study.get_trials(deepcopy=False)]


@pytest.fixture
def quick_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "POLL_S", 0.1)


def test_loops_sharing_a_storage_run_exactly_the_asked_trials(tmp_path, quick_poll: None) -> None:
    """Three 'processes' (loops with their own claim locks) of two threads each, asked for 10 trials in all."""
    url = f"sqlite:///{tmp_path}/evo.db"

    def objective(trial: optuna.Trial) -> float:
        time.sleep(0.02)
        return trial.suggest_float("x", 0, 1)

    def process() -> None:
        study = open_study(open_storage(url), "s", ["maximize"], make_sampler("random", None))
        TrialLoop(study, objective, trials=10).run(jobs=2)

    assert at_once(process, threads=3) == []
    study = optuna.load_study(study_name="s", storage=url)
    assert _states(study).count(TrialState.COMPLETE) == 10
    # a process that raced another for the last place fails its trial unrun, and says so
    assert all(t.user_attrs.get(SURPLUS_ATTR) for t in study.trials if t.state != TrialState.COMPLETE)


def test_a_worker_waits_for_a_running_trial_and_redoes_it_when_its_machine_dies(tmp_path, xor_config: EvoConfig,
                                                                              quick_poll: None) -> None:
    """A trial RUNNING on another host that stops beating is failed by the heartbeat and redone here."""
    url, space = f"sqlite:///{tmp_path}/evo.db", parse_space(SPACE)
    storage = open_storage(url, heartbeat_interval=1)
    study = open_study(storage, "search:xor", ["maximize"], make_sampler("random", 0))
    with pytest.warns(UserWarning, match="Heartbeat"):
        elsewhere = study.ask()
    space.sample(elsewhere)
    elsewhere.set_user_attr(WORKER_ATTR, "another-host:4242")
    storage.record_heartbeat(elsewhere._trial_id)  # then that machine died

    result = run_search(xor_config, space, trials=1, storage=url, runs_dir=tmp_path / "runs", mirror=False,
                        pruner="none", heartbeat=1)
    trials = result.study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].system_attrs["failed_trial"] == elsewhere.number and trials[1].params == elsewhere.params


def test_a_resumed_search_draws_new_values(tmp_path, xor_config: EvoConfig) -> None:
    kwargs = {"storage": f"sqlite:///{tmp_path}/evo.db", "runs_dir": tmp_path / "runs", "mirror": False,
              "pruner": "none"}
    run_search(xor_config, parse_space(SPACE), trials=2, **kwargs)
    result = run_search(xor_config, parse_space(SPACE), trials=3, **kwargs)  # the same command, one trial more
    sigmas = [t.params["operators.mutate_weights.sigma"] for t in result.study.trials]
    assert len(sigmas) == 3 and len(set(sigmas)) == 3
    again = run_search(xor_config, parse_space(SPACE), trials=2, storage=f"sqlite:///{tmp_path}/again.db",
                       runs_dir=tmp_path / "runs2", mirror=False, pruner="none")
    assert [t.params for t in again.study.trials] == [t.params for t in result.study.trials[:2]]  # seeded


def test_a_study_keeps_to_one_search(tmp_path, xor_config: EvoConfig) -> None:
    kwargs = {"storage": f"sqlite:///{tmp_path}/evo.db", "runs_dir": tmp_path / "runs", "mirror": False,
              "study_name": "s"}
    run_search(xor_config, parse_space(SPACE), trials=1, **kwargs)
    other_config = apply_overrides(xor_config, {"evolution.population_size": 4})
    with pytest.raises(StorageError, match="study 's' holds the trials of another search .* use another --study-name"):
        run_search(other_config, parse_space(SPACE), trials=2, **kwargs)
    other_space = parse_space({"parameters": {**SPACE["parameters"],
                                              "evolution.lamarckian": {"type": "categorical", "choices": [True]}}})
    with pytest.raises(StorageError, match="holds the trials of another search"):
        run_search(xor_config, other_space, trials=2, **kwargs)
    # another machine may evaluate differently (its backend) and name its runs otherwise: the same search
    elsewhere = apply_overrides(xor_config, {"backend.kind": "serial", "name": "other", "backend.workers": 3})
    assert len(run_search(elsewhere, parse_space(SPACE), trials=2, **kwargs).study.trials) == 2


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../../elsewhere", "..:"])
def test_study_names_stay_inside_the_runs_directory(tmp_path, xor_config: EvoConfig, name: str) -> None:
    with pytest.raises(ConfigError, match="study name: must be a plain folder name"):
        run_search(xor_config, parse_space(SPACE), trials=1, storage=f"sqlite:///{tmp_path}/evo.db", study_name=name,
                   runs_dir=tmp_path / "runs")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even the storage


def test_processes_opening_a_fresh_storage_at_once(tmp_path) -> None:
    """The first to create the tables wins; the others find them made instead of failing (alembic_version)."""
    url = f"sqlite:///{tmp_path}/evo.db"
    errors = at_once(lambda: open_study(open_storage(url), "s", ["maximize"], make_sampler("random", 0)))
    assert errors == []


def _xor_search(tmp_path: Path, generations: int, population: int, trials: int, storage: str) -> list[str]:
    """The command line of an ``evo search`` over a small XOR config (written to ``tmp_path``), serial, no mirror."""
    config = tmp_path / "xor.yaml"
    config.write_text(f"task: {{kind: xor}}\nevolution: {{generations: {generations}, population_size: {population}}}"
                      "\nbackend: {kind: serial}\n")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    return [sys.executable, "-m", "evo", "search", str(config), "--space", str(space), "--trials", str(trials),
            "--storage", storage, "--runs-dir", str(tmp_path / "runs"), "--no-mirror", "--pruner", "none"]


@pytest.mark.slow
def test_two_searches_started_at_once_on_a_fresh_storage(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/evo.db"
    cmd = _xor_search(tmp_path, generations=1, population=2, trials=6, storage=url)
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    study = optuna.load_study(study_name="search:xor:space", storage=url)
    assert _states(study).count(TrialState.COMPLETE) == 6


def test_cli_refuses_another_search_and_a_study_name_outside_runs(tmp_path) -> None:
    from typer.testing import CliRunner

    from evo.cli import app

    config = tmp_path / "xor.yaml"
    config.write_text("task: {kind: xor}\nevolution: {generations: 1, population_size: 2}\nbackend: {kind: serial}\n")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    base = ["search", str(config), "--space", str(space), "--trials", "1", "--storage", f"sqlite:///{tmp_path}/evo.db",
            "--runs-dir", str(tmp_path / "runs"), "--no-mirror"]
    assert CliRunner().invoke(app, base).exit_code == 0
    other = CliRunner().invoke(app, [*base, "--set", "evolution.population_size=3"])
    assert other.exit_code == 2 and other.output.count("\n") == 1 and "use another --study-name" in other.output
    outside = CliRunner().invoke(app, [*base, "--study-name", ".."])
    assert outside.exit_code == 2 and "study name: must be a plain folder name" in outside.output
    assert not (tmp_path / "trial_0000").exists()


def test_a_trial_another_process_ended_as_stale_is_discarded_here_and_the_search_goes_on(tmp_path,
                                                                                        quick_poll: None) -> None:
    """A process paused past the heartbeat's grace period finds, when it resumes, that another process failed
    its trial and re-queued it: Optuna then refuses its result with an error. The search warns and goes on, and
    the re-queued copy is run (here, by this same loop), so the study still ends with the asked trials."""
    from evo.tuning.study import retry_stale

    url = f"sqlite:///{tmp_path}/evo.db"
    study = open_study(open_storage(url), "s", ["maximize"], make_sampler("random", 0))
    runs: list[tuple[int, float]] = []

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        runs.append((trial.number, x))
        if trial.number == 0:  # meanwhile, another process saw no heartbeat: it failed and re-queued this trial
            storage = trial.study._storage
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            retry_stale()(trial.study, storage.get_trial(trial._trial_id))
        return x

    with pytest.warns(UserWarning, match="trial 0 was ended by another process"):
        TrialLoop(study, objective, trials=3).run()
    states = _states(study)
    assert states[0] == TrialState.FAIL and states.count(TrialState.COMPLETE) == 3
    retried = [x for number, x in runs[1:] if number == 1]
    assert retried == [runs[0][1]]  # the re-queued trial (next number) ran with the stale trial's parameters


def test_an_error_in_a_trial_nobody_else_ended_still_surfaces(tmp_path, quick_poll: None) -> None:
    study = open_study(open_storage(f"sqlite:///{tmp_path}/evo.db"), "s", ["maximize"], make_sampler("random", 0))

    def objective(trial: optuna.Trial) -> float:
        raise ValueError("a bug in the objective")

    with pytest.raises(ValueError, match="a bug in the objective"):
        TrialLoop(study, objective, trials=2).run()


def test_a_trial_whose_values_the_config_rejects_fails_in_one_line_and_the_search_goes_on(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """A rejected combination is bad input, not a bug: Optuna's warning keeps its line and drops the traceback."""
    study = open_study(open_storage(f"sqlite:///{tmp_path}/evo.db"), "s", ["maximize"], make_sampler("random", 0))

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 0:
            raise ConfigError("overrides: evolution: halving: 3 rungs with eta 3 need eval_steps >= 9 (got 2)")
        return 1.0

    with caplog.at_level("WARNING", logger="optuna"):
        TrialLoop(study, objective, trials=2, catch=(ConfigError,)).run()
    assert _states(study) == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    failed = [r for r in caplog.records if "Trial 0 failed with parameters" in r.getMessage()]
    assert len(failed) == 1 and "need eval_steps >= 9" in failed[0].getMessage()
    assert failed[0].exc_info is None and "Traceback" not in caplog.text


def _wait_for(condition: Callable[[], object], what: str, timeout: float = 120.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_paused_search_process_lets_the_one_that_took_its_trial_over_resume_it(tmp_path) -> None:
    """Real processes on one SQLite study (heartbeat 1 s): A is paused (SIGSTOP, as Ctrl-Z or a sleeping laptop
    would) mid-trial; B finds A's heartbeat stale, fails and re-queues A's trial, and waits for its run
    directory, which A still holds. Woken, A sees at its next generation's end that its trial was taken over,
    lets go (one warning line), and B resumes the run directory to the end. Both exit 0."""
    url = f"sqlite:///{tmp_path}/evo.db"
    cmd = [*_xor_search(tmp_path, generations=400, population=8, trials=1, storage=url), "--study-name", "s",
           "--heartbeat", "1"]

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def trials(*states: TrialState) -> list[optuna.trial.FrozenTrial]:
        try:
            return optuna.load_study(study_name="s", storage=url).get_trials(states=states)
        except KeyError:  # not created yet
            return []

    a = start()
    [taken] = _wait_for(lambda: [t for t in trials(TrialState.RUNNING) if "run_dir" in t.user_attrs], "A's trial")
    time.sleep(1.5)  # A's heartbeat thread beats once (a trial that never beat is not stale to Optuna)
    a.send_signal(signal.SIGSTOP)
    b = start()
    try:
        _wait_for(lambda: trials(TrialState.FAIL), "B to fail A's silent trial")
        _wait_for(lambda: trials(TrialState.RUNNING), "B to start the re-queued trial")
    finally:
        a.send_signal(signal.SIGCONT)
    out_a, out_b = a.communicate(timeout=240)[0], b.communicate(timeout=240)[0]
    assert (a.returncode, b.returncode) == (0, 0), (out_a, out_b)
    assert f"trial {taken.number} was ended by another process" in out_a
    [redone], [failed] = trials(TrialState.COMPLETE), trials(TrialState.FAIL)
    assert failed.number == taken.number and redone.system_attrs.get("failed_trial") == taken.number
    assert redone.params == failed.params
    assert redone.user_attrs["run_dir"] == taken.user_attrs["run_dir"]  # B resumed A's run directory
