"""The runner: ``--runs-dir`` means one thing for ``evo run``, ``evo search`` and ``evo dashboard``."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from evo.cli import app
from evo.mirror import open_storage

XOR = {"task": {"kind": "xor"}, "evolution": {"generations": 1, "population_size": 3}, "backend": {"kind": "serial"}}
SPACE = {"parameters": {"evolution.lamarckian": {"type": "categorical", "choices": [True, False]}}}


def _studies(database: Path) -> set[str]:
    return {s.study_name for s in optuna.get_all_study_summaries(open_storage(f"sqlite:///{database}"))}


def test_runs_dir_holds_the_mirror_and_the_searches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("xor.yaml").write_text(yaml.safe_dump(XOR))
    Path("space.yaml").write_text(yaml.safe_dump(SPACE))
    cli = CliRunner()
    ran = cli.invoke(app, ["run", "xor.yaml", "--runs-dir", "a", "--name", "r", "--quiet"])
    assert ran.exit_code == 0, ran.output
    searched = cli.invoke(app, ["search", "xor.yaml", "--space", "space.yaml", "--trials", "1", "--runs-dir", "b",
                                "--pruner", "none"])
    assert searched.exit_code == 0, searched.output
    assert "browse: evo dashboard --runs-dir b" in searched.output
    assert _studies(Path("a/evo.db")) == {"run:r"}
    assert _studies(Path("b/evo.db")) == {"search:xor:space", "run:search:xor:space/trial_0000"}
    assert Path("a/artifacts").is_dir() and Path("b/artifacts").is_dir()
    assert (Path("b") / "search_xor_space" / "trial_0000" / "config.yaml").is_file()
    assert not Path("runs").exists()  # nothing went to the default runs dir
    missing = cli.invoke(app, ["dashboard", "--runs-dir", "c"])
    assert missing.exit_code == 2 and f"{Path('c') / 'evo.db'}: no such storage file" in missing.output


def test_a_mirror_write_failing_at_the_run_end_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's exit waits for the mirror's last write (after the plots): its error is still one line, exit 2."""
    monkeypatch.chdir(tmp_path)
    Path("xor.yaml").write_text(yaml.safe_dump(XOR))
    url = f"sqlite:///{tmp_path / 'evo.db'}"
    optuna.create_study(storage=url, study_name="other")
    with sqlite3.connect(tmp_path / "evo.db") as db:  # a database refusing what the mirror writes
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON trial_values BEGIN SELECT RAISE(ABORT, 'refused'); END")
    ran = CliRunner().invoke(app, ["run", "xor.yaml", "--runs-dir", "runs", "--name", "r", "--storage", url, "--quiet"])
    assert ran.exit_code == 2, ran.output
    assert ran.output.startswith(f"error: {url}: cannot write the Optuna mirror (refused)")
    assert "Traceback" not in ran.output and multiprocessing.active_children() == []
    assert Path("runs/r/config.yaml").is_file()


def test_a_ray_run_mirrors_every_individual_before_the_command_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the real Ray backend, with the mirror's process writing: the runner's exit (after the plots, before the
    backend shuts down) waits for the last write, so the study holds every individual once `evo run` returns."""
    monkeypatch.chdir(tmp_path)
    config = {**XOR, "evolution": {"generations": 2, "population_size": 4}, "backend": {"kind": "ray", "workers": 2}}
    Path("xor.yaml").write_text(yaml.safe_dump(config))
    ran = CliRunner().invoke(app, ["run", "xor.yaml", "--runs-dir", "runs", "--name", "r", "--quiet"])
    assert ran.exit_code == 0, ran.output
    (study,) = optuna.get_all_study_summaries(open_storage(f"sqlite:///{tmp_path / 'runs' / 'evo.db'}"))
    assert study.study_name == "run:r" and study.n_trials == 12  # 4 per generation, generations 0-2
    assert Path("runs/r/fitness.png").is_file() and multiprocessing.active_children() == []
