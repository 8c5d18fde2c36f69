"""The neat-python comparison states its LunarLander target from the measurements (runs are made up here)."""

from __future__ import annotations

import pytest

pytest.importorskip("neat", reason="neat-python is a benchmark dependency (benchmarks/peers/requirements.txt)")

from benchmarks.peers.neat_compare import Outcome, lunar_verdict


def run(library: str, evaluations: int, solved: bool, fresh: float) -> Outcome:
    return Outcome(library, 0, solved, evaluations, 1.0, 250.0 if solved else 100.0, fresh)


def test_champions_that_fail_fresh_episodes_do_not_count_and_the_verdict_says_so() -> None:
    lunar = {"neat-python": [run("neat-python", 7000, True, -80.0), run("neat-python", 4000, False, -50.0)],
             "evo": [run("evo", 6000, True, -60.0), run("evo", 5000, True, 50.0)]}
    assert lunar_verdict(lunar) == (
        "not met — no evo champion held ≥ 200 on the 100 fresh episodes (on the evaluation episodes: "
        "neat-python 1/2 solved, median 7000 evaluations; evo 2/2 solved, median 5500 evaluations).")


def test_the_ratio_counts_only_fresh_solved_runs() -> None:
    lunar = {"neat-python": [run("neat-python", 8000, True, 210.0)],
             "evo": [run("evo", 3000, True, 205.0), run("evo", 1000, True, 10.0)]}
    assert lunar_verdict(lunar) == "met — evo used 0.38× neat-python's median evaluations."
