"""The runner: ``--runs-dir`` means one thing for ``evo run``, ``evo search`` and ``evo dashboard``."""

from __future__ import annotations

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
