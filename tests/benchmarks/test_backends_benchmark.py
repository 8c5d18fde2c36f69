"""The backend benchmark's arithmetic: overheads against the bare loop, Ray's own cost, parallel efficiency."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.backends import Case, alternate, paired_ratios, report


def test_report_overheads_and_efficiency() -> None:
    best = {  # evaluations/s, CPU s per evaluation
        "bare": (10.0, 0.1), "bare default": (7.0, 0.14), "serial": (9.5, 0.105), "ray 1": (8.0, 0.002),
        "ray 1 single": (9.0, 0.001), "ray 2": (14.4, 0.002),
    }
    paired = {"serial": [1.02, 1.06, 1.04], "ray 1": [1.3, 1.2, 1.25]}
    text = report(best, [1, 2], jobs=16, paired=paired)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "+5.3%" in rows["serial backend"]  # 10 / 9.5
    assert "+4.0% (+2.0% to +6.0%)" in rows["serial backend"]  # the median and range of the paired rounds
    assert "+25.0% (+20.0% to +30.0%)" in rows["Ray, 1 worker (evals_per_task=auto: 4)"]
    assert "+42.9%" in rows["bare PyTorch loop, Adam's default step"]
    assert "+25.0%" in rows["Ray, 1 worker (evals_per_task=auto: 4)"]  # 16 jobs: 4 batches for the one slot
    assert "+11.1%" in rows["Ray, 1 worker, evals_per_task=1"]
    assert "+38.9%" in rows["Ray, 2 workers (evals_per_task=auto: 2)"]  # 14.4/s: 139 ms each against the bare 100
    assert "+18.8% wall with its default batches (evals_per_task=auto: 4 evaluations per task), +5.6% with one" in text
    assert "**0.90**" in text  # (14.4 / 2) / 8


def test_paired_ratios_compare_each_round_with_its_bare_loop() -> None:
    rounds = {"bare": [(10.0, 0.1), (5.0, 0.2)], "serial": [(8.0, 0.1), (5.0, 0.2)]}  # round 2: all slowed alike
    assert paired_ratios(rounds) == {"serial": [1.25, 1.0]}


def test_alternate_interleaves_rounds() -> None:
    calls: list[str] = []

    def run(name: str):  # type: ignore[no-untyped-def]
        return lambda: calls.append(name) or (float(len(calls)), 0.0)

    results = alternate({"bare": run("bare"), "serial": run("serial")}, rounds=3)
    assert calls == ["bare", "serial"] * 3
    assert [rate for rate, _ in results["serial"]] == [2.0, 4.0, 6.0]


def test_case_parse() -> None:
    assert Case.parse("708:128") == Case(708, 128)
    with pytest.raises(argparse.ArgumentTypeError, match="STEPS:HIDDEN"):
        Case.parse("708")
