"""benchmarks/data_scale.py end to end on a small file (so the script cannot rot): serial and Ray, read and mapped."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import data_scale


@pytest.mark.ray
def test_every_case_measures_and_the_mapped_split_is_not_copied(tmp_path: Path) -> None:
    path = str(data_scale.write_mnist_npz(tmp_path / "m.npz", n_train=3_000, n_test=500))
    rows = []
    for mode in data_scale.MODES:
        rows += [("serial", mode, r) for r in data_scale.serial_case(path, mode, evaluations=2, steps=2)]
        rows += [("Ray", mode, r) for r in data_scale.ray_case(path, mode, evaluations=2, steps=2, workers=1)]
    assert [(b, m, r["evaluations"]) for b, m, r in rows] == [
        ("serial", "never", 2), ("Ray", "never", 2), ("serial", "always", 2), ("Ray", "always", 2)]
    read, mapped = rows[1][2], rows[3][2]  # one Ray worker each: it read the file, or mapped the split files
    assert read["data_anon_mb"] > 1.5  # 2,400 training rows of 784 bytes, copied
    assert mapped["data_anon_mb"] < read["data_anon_mb"] / 2
    text = data_scale.report(rows, 2, 2, 2.7, (1.0, 1.0))
    assert text.count("\n| serial |") == 2 and "memory-mapped" in text
