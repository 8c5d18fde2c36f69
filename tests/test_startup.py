"""The ``evo`` command starts without the heavy libraries: a behaviour test (which modules a fresh process
imports), not a timing test. ``--help``, ``--version`` and ``show`` import none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from evo.config import load_config
from evo.inspect import load_run
from evo.runner import run_evolution
from evo.summary import write_plots

HEAVY = ("torch", "ray", "optuna", "sklearn", "gymnasium", "matplotlib")

_PROBE = """
import sys
import evo.cli
try:
    evo.cli.cli(sys.argv[1:])
except SystemExit:
    pass
print("heavy:", *[m for m in {heavy!r} if m in sys.modules], file=sys.stderr)
"""


def _heavy_imports(*args: str) -> list[str]:
    """The heavy modules a fresh process holds after ``evo ARGS``."""
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True,
                          check=True, timeout=120)
    line = next(line for line in proc.stderr.splitlines() if line.startswith("heavy:"))
    return line.split()[1:]


def test_import_evo_cli_imports_nothing_heavy() -> None:
    out = subprocess.run([sys.executable, "-c", f"import sys, evo.cli; print(*[m for m in {HEAVY!r} if m in sys.modules])"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.split() == []


def test_help_and_version_import_nothing_heavy() -> None:
    assert _heavy_imports("--help") == []
    assert _heavy_imports("--version") == []


def test_show_reads_a_run_without_heavy_imports(tmp_path: Path) -> None:
    config = load_config(None, ["task.kind=xor", "evolution.generations=1", "evolution.population_size=3",
                                "backend.kind=serial"])
    run_evolution(config, run_dir=tmp_path / "run")
    write_plots(load_run(tmp_path / "run"))  # as `evo run` does at the end; `evo show` draws them if missing
    assert _heavy_imports("show", str(tmp_path / "run")) == []


def test_a_mirrored_run_leaves_optuna_to_the_mirrors_process(tmp_path: Path) -> None:
    """`evo run` mirrors into a storage URL: a process of the mirror's own imports Optuna and writes, the driver never."""
    import optuna

    config = tmp_path / "xor.yaml"
    config.write_text("task: {kind: xor}\nbackend: {kind: serial}\nevolution: {generations: 1, population_size: 3}\n")
    assert "optuna" not in _heavy_imports("run", str(config), "--runs-dir", str(tmp_path / "runs"), "--name", "r")
    study = optuna.load_study(study_name="run:r", storage=f"sqlite:///{tmp_path / 'runs' / 'evo.db'}")
    assert len(study.trials) == 6  # both generations' individuals, written by the other process
