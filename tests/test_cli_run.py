"""End-to-end CLI runs as subprocesses: run, kill -9 and resume, extend, show, and config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from evo.store import RunStore

EVO = [sys.executable, "-m", "evo"]

TINY = {
    "task": {"kind": "supervised", "dataset": "digits", "max_train_samples": 300},
    "evolution": {"generations": 3, "population_size": 4, "eval_steps": 20, "seed": 7},
    "plasticity": {"batch_size": 32},
    "backend": {"kind": "serial"},
}


def evo(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*EVO, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def final_state(run_dir: Path) -> dict[str, object]:
    store = RunStore.open(run_dir)
    state = store.latest_checkpoint()
    assert state is not None
    records = store.records(state)
    assert len((run_dir / "individuals.jsonl").read_text().splitlines()) == len(records)  # each exactly once
    return {
        "generation": state["generation"],
        "population": state["population"],
        "individuals": {r["id"]: (r["architecture"], r["evaluation"]["objectives"]) for r in records},
    }


def weights_equal(a: Path, b: Path) -> bool:
    """Two generations' genome files hold the same individuals (the index: architectures and where each tensor
    lies) with the same weights (the flat tensors)."""
    import torch

    fa, fb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    same_tensors = fa["tensors"].keys() == fb["tensors"].keys() and all(
        torch.equal(fa["tensors"][k], fb["tensors"][k]) for k in fa["tensors"])
    return fa["index"] == fb["index"] and same_tensors


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    write(path / "tiny.yaml", TINY)
    return path


@pytest.fixture(scope="module")
def reference_run(workdir: Path) -> Path:
    evo("run", "tiny.yaml", "--name", "ref", cwd=workdir)
    return workdir / "runs" / "ref"


def test_run_writes_a_complete_run_directory(reference_run: Path) -> None:
    assert (reference_run / "config.yaml").exists()
    # the newest two checkpoints are kept: each holds the whole run so far
    assert sorted(p.name for p in (reference_run / "checkpoints").iterdir()) == ["gen_0002.json", "gen_0003.json"]
    best = json.loads((reference_run / "best.json").read_text())
    assert best["objectives"]["val_accuracy"] > 0.3
    assert best["test"], "test metrics of the best individuals are reported"
    state = final_state(reference_run)
    assert len(state["individuals"]) == 16  # 4 initial + 3 generations × 4 children, each exactly once


def test_kill_and_resume_gives_the_same_run(workdir: Path, reference_run: Path) -> None:
    proc = subprocess.Popen([*EVO, "run", "tiny.yaml", "--name", "killed"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = workdir / "runs" / "killed"
    deadline = time.time() + 240
    while not (run_dir / "checkpoints" / "gen_0001.json").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "checkpoints" / "gen_0003.json").exists()
    evo("resume", str(run_dir), cwd=workdir)
    assert final_state(run_dir) == final_state(reference_run)
    files = sorted((reference_run / "individuals").glob("gen_*.pt"))
    assert [pt.name for pt in files] == [f"gen_{g:04d}.pt" for g in range(4)]
    for pt in files:
        assert weights_equal(pt, run_dir / "individuals" / pt.name), pt.name


def test_resume_extends_a_finished_run(workdir: Path, reference_run: Path) -> None:
    import shutil

    copy = workdir / "runs" / "extended"
    shutil.copytree(reference_run, copy)
    evo("resume", str(copy), "--set", "evolution.generations=4", cwd=workdir)
    assert final_state(copy)["generation"] == 4


def test_resume_refuses_changes_that_make_another_run(workdir: Path, reference_run: Path) -> None:
    proc = evo("resume", str(reference_run), "--set", "task.dataset=iris", cwd=workdir, check=False)
    assert proc.returncode == 2
    assert "task.dataset cannot change" in proc.stderr and "Traceback" not in proc.stderr


def test_show_lists_generations_and_lineage(workdir: Path, reference_run: Path) -> None:
    out = evo("show", str(reference_run), "--lineage", "15", cwd=workdir).stdout
    assert "generations" in out and "best individuals" in out and "lineage of #15" in out
    missing = evo("show", str(reference_run), "--lineage", "999", cwd=workdir, check=False)
    assert missing.returncode == 2 and not missing.stdout  # refused before printing anything
    assert missing.stderr.strip() == f"error: --lineage: no individual 999 in {reference_run} (ids 0..15)"


def test_export_writes_the_best_into_a_file_or_a_folder(workdir: Path, reference_run: Path) -> None:
    folder = workdir / "exports"
    folder.mkdir()
    out = evo("export", str(reference_run), "--format", "state_dict", "--out", str(folder), cwd=workdir).stdout
    written = list(folder.iterdir())
    assert len(written) == 1 and written[0].suffix == ".pt" and str(written[0].name) in out.replace("\n", "")
    evo("export", str(reference_run), "--out", str(folder / "best.pt"), cwd=workdir)
    assert (folder / "best.pt").stat().st_size > 0
    blocked = evo("export", str(reference_run), "--out", str(folder / "best.pt" / "x.pt"), cwd=workdir, check=False)
    assert blocked.returncode == 2 and "not writable" in blocked.stderr
    assert len(blocked.stderr.strip().splitlines()) == 1 and "Traceback" not in blocked.stderr


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        ({"evolution": {"generationz": 3}}, [], "evolution.generationz: unknown field"),
        ({"evolution": {"population_size": 1}}, [], "evolution.population_size"),
        ({"task": {"kind": "supervised", "dataset": "nosuch"}}, [], "task"),
        ({}, ["--set", "evolution.generations"], "must look like section.field=value"),
        ({"task": {"kind": "supervised", "dataset": "npz", "path": "missing.npz"}}, ["--backend", "serial"], "missing.npz"),
        ({"name": "../outside"}, [], "name: must be a plain folder name, without '/' or '..' (got '../outside')"),
        ({}, ["--name", "a/b"], "--name: must be a plain folder name, without '/' or '..' (got 'a/b')"),
        ({}, ["--name", ".."], "--name: must be a plain folder name"),
        # found once the run has started (the task's lifetime against the rungs): its directory goes too
        ({"task": {"kind": "supervised", "dataset": "iris"}, "evolution": {"halving": {"rungs": 5}},
          "plasticity": {"epochs": 1, "batch_size": 64}, "backend": {"kind": "serial"}}, [],
         "evolution.halving: 5 rungs with eta 3 need at least 81 training steps per evaluation"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(workdir: Path, config: dict, args: list[str], message: str) -> None:
    path = write(workdir / "bad.yaml", config)
    proc = evo("run", str(path), *args, cwd=workdir, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not list((workdir / "runs").glob("bad-*")), "a failed start must leave no run directory behind"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "CONFIG", "--bogus"], "error: evo run: No such option: --bogus (see 'evo run --help')"),
        (["run", "CONFIG", "--seed", "abc"], "error: evo run: Invalid value for '--seed'"),
        (["run"], "error: evo run: Missing argument 'config'."),
        (["nosuchcmd"], "error: evo: No such command 'nosuchcmd'."),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(workdir: Path, args: list[str], message: str) -> None:
    config = str(write(workdir / "ok.yaml", TINY))
    proc = evo(*(config if a == "CONFIG" else a for a in args), cwd=workdir, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(message) and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not list((workdir / "runs").glob("ok-*")), "a refused command must leave no run directory behind"


def test_bare_evo_shows_the_help(workdir: Path) -> None:
    proc = evo(cwd=workdir, check=False)
    assert proc.returncode == 2 and "Usage: evo" in proc.stdout and "run" in proc.stdout and not proc.stderr


def test_missing_config_file(workdir: Path) -> None:
    proc = evo("run", "nope.yaml", cwd=workdir, check=False)
    assert proc.returncode == 2 and "nope.yaml: config file not found" in proc.stderr


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr.strip()


def test_run_of_a_run_directory_points_to_resume(workdir: Path, reference_run: Path) -> None:
    line = one_error_line(evo("run", str(reference_run), cwd=workdir, check=False))
    assert line == f"error: {reference_run}: a directory, not a config file; continue that run with `evo resume {reference_run}`"


def test_a_second_process_on_a_held_run_is_refused(workdir: Path, reference_run: Path) -> None:
    """While one process holds the run (here: a process holding its lock), `evo resume` refuses and writes nothing."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; from evo.store import RunStore\n"
                               f"with RunStore({str(reference_run)!r}).lock():\n print('held', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        before = (reference_run / "individuals.jsonl").read_bytes()
        line = one_error_line(evo("resume", str(reference_run), "--set", "evolution.generations=4", cwd=workdir,
                                  check=False))
        assert f"another evo process (pid {holder.pid}) is running, resuming or extending this run" in line
        assert (reference_run / "individuals.jsonl").read_bytes() == before
    finally:
        holder.kill()
        holder.wait()


def test_a_run_whose_every_evaluation_fails_exits_2(workdir: Path) -> None:
    import numpy as np

    rows = np.random.default_rng(0).normal(size=(40, 3))
    rows[5, 1], rows[:, 2] = np.nan, rows[:, 0] > 0
    np.savetxt(workdir / "nan.csv", rows, delimiter=",", header="a,b,y", comments="")
    config = write(workdir / "nan.yaml", {**TINY, "task": {"kind": "supervised", "dataset": "csv", "path": "nan.csv"},
                                         "evolution": {"generations": 1, "population_size": 2, "eval_steps": 2}})
    line = one_error_line(evo("run", str(config), "--name", "nan", "--no-mirror", cwd=workdir, check=False))
    assert "runs/nan: all 4 evaluations failed; the first (individual 0): Diverged: loss became nan" in line


def test_a_full_disk_is_one_line_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """ENOSPC on the first synced write of a run: `PATH: No space left on device`, exit 2 (in-process CLI)."""
    import errno

    import evo.files
    import evo.testing
    from evo.cli import cli

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    config = write(tmp_path / "toy.yaml", {"task": {"kind": "custom", "path": evo.testing.__file__, "name": "ToyTask"},
                                           "evolution": {"generations": 1, "population_size": 2},
                                           "backend": {"kind": "serial"}})
    monkeypatch.setattr(evo.files.os, "fsync", full)
    with pytest.raises(SystemExit) as exit_:
        cli(["run", str(config), "--name", "full", "--runs-dir", str(tmp_path / "runs"), "--no-mirror"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'runs' / 'full'}") and err.endswith(": No space left on device"), err
    assert len(err.splitlines()) == 1
