"""benchmarks/peers/wallclock.py: the Optuna script's split and choice, and its smoke mode end to end."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.peers import wallclock
from benchmarks.peers.wallclock import Trial, choose, user_split
from evo.config import load_config
from evo.tasks.data import load_dataset


def test_the_user_picks_by_validation_accuracy_then_loss_never_by_test() -> None:
    trials = [Trial(0.9, 0.5, 0.99, 10), Trial(0.9, 0.3, 0.7, 20), Trial(0.8, 0.1, 1.0, 5)]
    assert choose(trials) is trials[1]


def test_the_user_sees_evos_samples_standardised_without_its_shifted_copies() -> None:
    evo = load_dataset(load_config(wallclock.ROOT / wallclock.CONFIGS["digits"]).task)  # type: ignore[arg-type]
    user = user_split("digits")
    assert torch.equal(user.y_val, evo.y_val) and torch.equal(user.y_test, evo.y_test)
    assert len(user.x_train) * 9 == len(evo.x_train)  # the config's one-pixel shifts: 9 copies
    assert torch.equal(user.y_train, evo.y_train[: len(user.y_train)])
    assert user.input_shape == (64,)
    assert user.x_train.mean(0).abs().max() < 1e-4  # standardised on the training split


@pytest.mark.ray
def test_smoke_runs_evo_then_optuna_and_writes_no_docs(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(wallclock, "update_section", lambda *args: pytest.fail("smoke mode wrote docs/benchmarks.md"))
    wallclock.main(["--smoke", "--datasets", "mnist1d", "--seeds", "0"])
    out = capsys.readouterr().out
    row = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert row["dataset"] == "mnist1d" and row["evo_seconds"] > 0 and 0 < row["evo_test"] <= 1
    assert row["trials"] >= 1 and row["optuna_seconds"] >= wallclock.SMOKE_SECONDS and 0 < row["optuna_test"] <= 1
    assert "| mnist1d | 0 |" in out and "mnist1d: evo" in out
