"""Search across machines: several ``evo search`` processes sharing one PostgreSQL storage.

A throwaway PostgreSQL cluster is started on a temporary folder and a free localhost port (as the
``postgres`` user when the tests run as root: PostgreSQL refuses root). Skipped, with the reason, where
the server binaries or the Python driver are missing (CI installs Debian's ``postgresql``).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from evo.tuning.study import WORKER_ATTR
from evo.testing import PostgresUnavailable, postgres_server

SPACE = {"parameters": {"operators.mutate_weights.sigma": {"type": "float", "low": 0.05, "high": 1.0, "log": True}}}


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """``postgresql://`` URL of a fresh cluster, stopped and deleted after the module."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresUnavailable as err:
            pytest.skip(str(err))
        yield url


def _running_trial_of(url: str, study_name: str, pid: int, deadline: float) -> optuna.trial.FrozenTrial:
    """Wait until process ``pid`` runs a trial of the study and has named its run directory; that trial."""
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=study_name, storage=url)
        except KeyError:  # not created yet
            study = None
        for trial in study.get_trials(states=(TrialState.RUNNING,)) if study else []:
            if trial.user_attrs.get(WORKER_ATTR, "").endswith(f":{pid}") and "run_dir" in trial.user_attrs:
                return trial
        time.sleep(0.1)
    raise AssertionError(f"process {pid} started no trial in time")


def test_searches_on_several_machines_share_one_study(tmp_path, postgres_url: str) -> None:
    """Three processes asked for 6 trials on one PostgreSQL study; one is killed mid-trial: 6 in all."""
    config = tmp_path / "xor.yaml"
    config.write_text("task: {kind: xor}\nevolution: {generations: 25, population_size: 4}\nbackend: {kind: serial}\n")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    cmd = [sys.executable, "-m", "evo", "search", str(config), "--space", str(space), "--trials", "6",
           "--storage", postgres_url, "--study-name", "across", "--runs-dir", str(tmp_path / "runs"),
           "--no-mirror", "--pruner", "none", "--heartbeat", "5"]

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    # the killed process is on this host, so its trial is recovered at once (its pid is gone); a short heartbeat
    # (grace 2 × 5 s) would fail live trials of processes starved of CPU on a loaded 2-core machine
    victim = start()  # first, so that it surely runs a trial to be killed in
    killed = _running_trial_of(postgres_url, "across", victim.pid, time.monotonic() + 120)
    others = [start(), start()]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    outputs = [proc.communicate(timeout=240)[0] for proc in others]
    assert [proc.returncode for proc in others] == [0, 0], outputs

    study = optuna.load_study(study_name="across", storage=postgres_url)
    states = {t.number: t.state for t in study.trials}
    assert list(states.values()).count(TrialState.COMPLETE) == 6
    assert states[killed.number] == TrialState.FAIL  # the dead process's trial was failed...
    [redone] = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert redone.state == TrialState.COMPLETE and redone.params == killed.params  # ...and run again by another
    assert redone.user_attrs["run_dir"] == killed.user_attrs["run_dir"]  # resuming its run directory
