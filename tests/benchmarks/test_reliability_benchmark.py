"""The reliability benchmark's helpers on tiny cases, so the script cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reliability import CASES, corruption_cases, kill_trials, toy_config


def test_corruption_cases_print_one_line_and_leave_the_run_as_it_was(tmp_path: Path) -> None:
    chosen = [case for case in CASES if case[0] in ("empty config.yaml", "newest checkpoint cut (older intact)")]
    rows = corruption_cases(tmp_path, chosen)
    assert [(case, code, after) for case, code, _, after in rows] == [
        ("empty config.yaml", 2, "unchanged"), ("newest checkpoint cut (older intact)", 0, "resumed")]
    assert rows[0][2].startswith("error: c0/toy/config.yaml: incomplete run config")
    assert rows[1][2].startswith("warning: c1/toy/checkpoints/gen_0003.json: not valid JSON")


@pytest.mark.slow
def test_a_killed_run_and_extension_resume_to_the_same_result(tmp_path: Path) -> None:
    rows = kill_trials(0, 1, 1, tmp_path, toy_config())
    assert [(kind, trial.same, trial.mirror) for kind, trial in rows] == [("run", True, True), ("extension", True, True)]
