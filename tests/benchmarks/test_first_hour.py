"""benchmarks/first_hour.py in its smoke mode (so the script cannot rot), and its timers against a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import first_hour


def test_smoke_mode_measures_the_mirror_and_the_start_up(capsys: pytest.CaptureFixture[str]) -> None:
    first_hour.main(["--smoke"])
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in out.splitlines() if line.startswith("| `")}
    xor = [cell.strip() for cell in rows["`configs/xor.yaml`"]]
    assert xor[0] == "1" and float(xor[1]) > 0 and float(xor[2]) > 0  # one pair, both runs timed
    assert float(xor[5]) > 0  # the mirror's set-up was timed: the probe wrapped the real entry point
    assert {"`evo --version`", "`evo --help`", "`evo show RUN`"} <= rows.keys()


def test_a_run_without_the_mirror_spends_nothing_in_it(tmp_path: Path) -> None:
    run = first_hour.evo_run("configs/xor.yaml", False, tmp_path, "off", first_hour.SMOKE_SET)
    assert (run.setup, run.hooks, run.writer) == (0.0, 0.0, 0.0) and run.wall > 0
    assert run.result["run_dir"] == str(tmp_path / "off")
