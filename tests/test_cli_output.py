"""What `evo run` prints, as subprocesses with tiny budgets: full lines when piped, --json, --quiet, the summary,
plots in the run directory (drawn by `evo show` when missing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from evo.config import load_config
from evo.runner import run_evolution

EVO = [sys.executable, "-m", "evo"]
XOR = ["run", "-", "--backend", "serial", "--no-mirror", "--set", "task.kind=xor", "--set", "evolution.generations=2",
       "--set", "evolution.population_size=4"]


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "xor.yaml"
    config.write_text("task: {kind: xor}\n")
    args = [a if a != "-" else str(config) for a in XOR]
    proc = subprocess.run([*EVO, *args, "--runs-dir", str(tmp_path / "runs"), "--name", "r", *extra], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_piped_output_is_one_full_line_per_generation_then_the_summary(tmp_path: Path) -> None:
    out = _run(tmp_path).stdout.splitlines()
    generations = [line for line in out if line.startswith("gen ")]
    assert [line.split(":")[0] for line in generations] == ["gen 0", "gen 1", "gen 2"]
    assert all("best #" in line and "…" not in line for line in generations)
    assert "eta" in generations[0]
    text = "\n".join(out)
    assert "chosen: #" in text and "parameters" in text
    assert f"evo show {tmp_path / 'runs' / 'r'}" in text and "evo export" in text and "evo dashboard" in text
    for name in ("fitness.png", "front.png"):
        assert (tmp_path / "runs" / "r" / name).stat().st_size > 0


def test_json_is_the_only_output(tmp_path: Path) -> None:
    data = json.loads(_run(tmp_path, "--json").stdout)
    best = json.loads((tmp_path / "runs" / "r" / "best.json").read_text())
    assert data["run_dir"] == str(tmp_path / "runs" / "r") and data["best_id"] == best["id"]
    assert data["objectives"] == best["objectives"] and data["params"] > 0 and "test" in data


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--quiet")
    assert proc.stdout == "" and (tmp_path / "runs" / "r" / "best.json").exists()


def test_show_draws_the_plots_a_run_lacks(tmp_path: Path) -> None:
    config = load_config(None, ["task.kind=xor", "evolution.generations=1", "evolution.population_size=3",
                                "backend.kind=serial"])
    run_evolution(config, run_dir=tmp_path / "run")  # the API writes no plots
    proc = subprocess.run([*EVO, "show", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"plots: {tmp_path / 'run' / 'fitness.png'}" in proc.stdout.replace("\n", "")
    assert (tmp_path / "run" / "front.png").exists()
