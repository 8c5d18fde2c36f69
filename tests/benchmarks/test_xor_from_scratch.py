"""benchmarks/xor_from_scratch.py on 2 seeds with a tiny cap (so the script cannot rot), and its verdict."""

from __future__ import annotations

from pathlib import Path

from benchmarks import xor_from_scratch
from benchmarks.peers.evo_side import Outcome


def outcome(solved: bool, evaluations: int) -> Outcome:
    return Outcome("evo", 0, solved, evaluations, 1.0, 3.95 if solved else 3.0, None)


def test_two_seeds_write_one_row_per_config_and_the_verdict(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    xor_from_scratch.main(["--seeds", "0", "1", "--max-evaluations", "100", "--doc", str(doc)])
    text = doc.read_text()
    assert text.count("<!-- xor-from-scratch:start -->") == 1 and "Target (XOR solved on every seed" in text
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| `configs/")}
    assert set(rows) == {"`configs/xor_from_scratch.yaml`", "`configs/xor.yaml`"}
    assert all(cells[0].endswith("/2") and 0 < int(cells[2]) <= 100 for cells in rows.values())


def test_the_target_needs_every_seed_solved_within_neats_evaluations() -> None:
    assert "**met** — 2/2 solved, median 4000" in xor_from_scratch.verdict([outcome(True, 3000), outcome(True, 5000)])
    assert "**not met** — 2/2 solved, median 5000" in xor_from_scratch.verdict([outcome(True, 5000), outcome(True, 5000)])
    assert "**not met** — 1/2 solved" in xor_from_scratch.verdict([outcome(True, 100), outcome(False, 30000)])
