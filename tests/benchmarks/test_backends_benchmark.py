"""The backend benchmark's arithmetic: overheads against the bare loop, Ray's own cost, parallel efficiency."""

from __future__ import annotations

import argparse
import math
import shutil

import pytest

from benchmarks import backends
from benchmarks.backends import (
    Case,
    alternate,
    by_part,
    make_digits_jobs,
    parse_instructions,
    per_evaluation,
    report,
    storing_s,
    timed,
)
from evo.plasticity import PlasticityConfig
from evo.task_kinds import build_task
from evo.tasks import Budget, Evaluation
from evo.tasks.config import SupervisedTaskConfig

NAN = math.nan


def test_report_overheads_and_efficiency() -> None:
    best = {  # evaluations/s, CPU s per evaluation, the evaluations' own seconds
        "bare": (10.0, 0.1, NAN), "bare default": (7.0, 0.14, NAN), "serial": (9.5, 0.105, 0.105),
        "ray 1": (8.0, 0.002, 0.11), "ray 1 single": (9.0, 0.001, 0.1), "ray 2": (14.4, 0.002, 0.12),
    }
    paired = {"serial": [1.02, 1.06, 1.04], "ray 1": [1.3, 1.2, 1.25]}
    text = report(best, [1, 2], jobs=16, paired=paired)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "+5.3%" in rows["serial backend"]  # 10 / 9.5
    assert "+4.0% (+2.0% to +6.0%)" in rows["serial backend"]  # the median and range of the paired rounds
    assert "+25.0% (+20.0% to +30.0%)" in rows["Ray, 1 worker (evals_per_task=auto: 8)"]
    assert "+42.9%" in rows["bare PyTorch loop, Adam's default step"]
    assert "+25.0%" in rows["Ray, 1 worker (evals_per_task=auto: 8)"]  # 16 jobs: 2 batches for the one slot
    assert "+11.1%" in rows["Ray, 1 worker, evals_per_task=1"]
    assert "+38.9%" in rows["Ray, 2 workers (evals_per_task=auto: 2)"]  # 14.4/s: 139 ms each against the bare 100
    assert "+18.8% wall with its default batches (evals_per_task=auto: 8 evaluations per task), +5.6% with one" in text
    assert "**0.90**" in text  # (14.4 / 2) / 8


def test_by_part_adds_the_trainer_ray_dispatch_and_storing() -> None:
    rounds = {  # bare 100 ms; serial 2% over it; Ray: 105 ms per evaluation of which the evaluations' own 104
        "bare": [(10.0, 0.1, NAN)] * 3,
        "serial": [(10 / 1.02, 0.1, 0.1)] * 3,
        "ray 1": [(1 / 0.105, 0.001, 0.104), (1 / 0.105, 0.001, 0.104), (1 / 0.2, 0.001, 0.104)],  # one slow round
    }
    text = by_part(rounds, {"serial": [1.01, 1.02, 1.05]}, storing=0.0005)
    assert "trainer and bookkeeping +2.0%" in text
    assert "Ray's scheduling and transfer (1.00 ms) +1.0%" in text  # the median round's 105 - 104 ms
    assert "storing (0.50 ms) +0.5%" in text
    assert "together **+3.5%**" in text


def test_timed_reports_the_evaluations_own_time() -> None:
    def run(jobs: list[int]) -> list[Evaluation]:
        return [Evaluation(i, {}, None, budget_used=Budget(seconds=0.25 * i)) for i in jobs]

    rate, cpu, own = timed(run, [1, 2, 3])  # type: ignore[arg-type]
    assert own == pytest.approx(0.5) and rate > 0 and cpu >= 0
    assert math.isnan(timed(lambda jobs: None, [1, 2])[2])  # type: ignore[arg-type]


def test_storing_writes_the_genomes_and_records() -> None:
    task = build_task(SupervisedTaskConfig(dataset="iris"), PlasticityConfig())
    assert 0 < storing_s(task, make_digits_jobs(task, 3, steps=1, hidden=4), rounds=2) < 1


def test_alternate_interleaves_rounds() -> None:
    calls: list[str] = []

    def run(name: str):  # type: ignore[no-untyped-def]
        return lambda: calls.append(name) or (float(len(calls)), 0.0, NAN)

    timings, ratios = alternate({"bare": run("bare"), "serial": run("serial"), "ray": run("ray")}, rounds=2)
    assert calls == ["bare", "serial", "bare", "ray", "bare"] * 2  # each run between two bare loops
    assert [rate for rate, *_ in timings["serial"]] == [2.0, 7.0]
    assert len(timings["bare"]) == 6
    # a rate of k evaluations/s is 1/k s each: serial's first took 1/2 s against the bare loops' 1 s and 1/3 s
    assert ratios["serial"][0] == pytest.approx(0.5 / ((1 + 1 / 3) / 2))
    assert ratios["ray"][0] == pytest.approx(0.25 / ((1 / 3 + 1 / 5) / 2))


def test_a_negative_instruction_count_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        backends.main(["--instructions", "-1", "--no-write"])
    assert exit_info.value.code == 2 and "--instructions counts N >= 0" in capsys.readouterr().err


def test_case_parse() -> None:
    assert Case.parse("708:128") == Case(708, 128)
    with pytest.raises(argparse.ArgumentTypeError, match="STEPS:HIDDEN"):
        Case.parse("708")


def test_instruction_counts_are_read_and_differenced() -> None:
    report = "==123== \n==123== I   refs:      16,569,097,309\n"
    assert parse_instructions(report) == 16_569_097_309
    with pytest.raises(RuntimeError, match="no instruction count"):
        parse_instructions("==123== error")
    assert per_evaluation({9: 1_900, 1: 1_100}) == 100  # (1900 - 1100) / (9 - 1): start-up cancels


def test_instruction_overhead_compares_the_serial_backend_with_the_bare_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    start_up = {"bare": 16_000_000_000, "serial": 16_100_000_000}  # differing imports cancel too
    per = {"bare": 300_000_000, "serial": 309_000_000}
    seen: list[tuple[str, int, Case]] = []

    def fake(kind: str, evaluations: int, case: Case) -> int:
        seen.append((kind, evaluations, case))
        return start_up[kind] + evaluations * per[kind]

    monkeypatch.setattr(backends, "instructions", fake)
    text = backends.instruction_overhead(Case(300, 64), 8)
    assert sorted(seen) == [(k, n, Case(300, 64)) for k in ("bare", "serial") for n in (1, 9)]
    assert "bare loop 300.0 M, serial backend 309.0 M" in text and "**+3.0%**" in text


def test_a_counted_process_evaluates_its_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated: list[int] = []
    real = backends.SerialBackend.map

    def spy(self, task, jobs):  # type: ignore[no-untyped-def]
        evaluated.extend(job.individual_id for job in jobs)
        return real(self, task, jobs)

    monkeypatch.setattr(backends.SerialBackend, "map", spy)
    backends.main(["--count", "serial", "2", "3:4"])  # what valgrind runs: one warm-up, then the counted two
    assert evaluated == [0, 1, 2]


@pytest.mark.slow  # a minute: Python, torch and Ray's imports under valgrind
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_valgrind_counts_a_process() -> None:
    assert backends.instructions("bare", 1, Case(2, 4)) > 10**8  # Python, torch and the imports at least
