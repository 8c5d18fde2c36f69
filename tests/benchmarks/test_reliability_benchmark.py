"""The reliability benchmark's helpers on tiny cases, so the script cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reliability import (CASES, concurrent_searches, corruption_cases, crafted_files, kill_trials,
                                   search_kill_trials, toy_config)


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


def test_crafted_files_run_code_only_when_trusted(tmp_path: Path) -> None:
    rows = crafted_files(tmp_path)
    assert [(trusted, wrote) for _, trusted, _, wrote in rows] == [(False, False), (True, True)] * 2 + [
        (False, False), (True, False)]  # a genome file stays refused: it never runs code
    assert [said.split(":")[0] for _, trusted, said, _ in rows if not trusted] == [
        "UntrustedFileError", "UntrustedFileError", "DataError"]


@pytest.mark.slow
def test_concurrent_searches_run_the_asked_trials(tmp_path: Path) -> None:
    processes, asked, complete, surplus, other, codes = concurrent_searches(
        f"sqlite:///{tmp_path / 'evo.db'}", 2, 3, tmp_path)
    assert (processes, asked, complete, other, codes) == (2, 3, 3, 0, [0, 0]) and surplus in (0, 1)


def test_a_killed_search_reruns_to_the_asked_trials(tmp_path: Path) -> None:
    [trial] = search_kill_trials(0, 1, tmp_path, trials=2)
    assert trial.exact and trial.retried_same == trial.retried


def test_a_retry_of_a_trial_killed_before_it_sampled_is_counted_apart() -> None:
    """Such a trial has no parameters to pass on, so its retry draws its own: not a mismatch with the reference."""
    import optuna
    from optuna.trial import TrialState

    from benchmarks.reliability import _completed, count_retries

    study = optuna.create_study()
    done = study.ask()
    study.tell(done, done.suggest_float("x", 0, 1))
    for sampled, x in ((True, done.params["x"]), (False, 0.123)):
        killed = study.ask()
        if sampled:
            killed.suggest_float("x", 0, 1)
        study.tell(killed, state=TrialState.FAIL)
        study.enqueue_trial({"x": x} if sampled else {})
        retry = study.ask()
        study._storage.set_trial_system_attr(retry._trial_id, "failed_trial", killed.number)
        study.tell(retry, retry.suggest_float("x", 0, 1))
    reference = _completed(study.get_trials()[:1])
    assert count_retries(study.get_trials(), reference) == (1, 1, 1)
