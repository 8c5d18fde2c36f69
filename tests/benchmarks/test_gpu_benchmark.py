"""benchmarks/gpu.py: its arithmetic, and its CPU smoke mode end to end (so the GPU script cannot rot)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import gpu


def test_report_gives_rates_and_speed_ups_over_the_cpu() -> None:
    setup = gpu.Setup(60_000, 10_000, (16, 32), (64,), 100, 128, 32, (1, 4), gpu=True)
    text = gpu.report(setup, 2.0, {(1, "fp32"): 10.0, (1, "bf16"): 12.0, (4, "fp32"): 30.0, (4, "bf16"): 41.0}, "H100")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "| 0.25 | 30.00 | 41.00 | 15.0× | 20.5× |" in rows["4"]
    assert "| 1 | 10.00 | 12.00 | 5.0× | 6.0× |" in rows["1"]
    assert "**2.00 evaluations/s**" in text and "on H100" in text


def test_without_a_gpu_only_the_smoke_mode_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        gpu.main(["--jobs", "2"])
    assert gpu.Setup.from_args(argparse.Namespace(smoke=True)).gpu is False


@pytest.mark.ray
def test_smoke_mode_runs_every_level_and_precision_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(gpu, "update_section", lambda *args: pytest.fail("smoke mode wrote docs/benchmarks.md"))
    gpu.main(["--smoke"])
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [r[0].strip() for r in rows[1:]] == ["1", "2"]
    assert all(float(cell) > 0 for r in rows[1:] for cell in r[2:4])
