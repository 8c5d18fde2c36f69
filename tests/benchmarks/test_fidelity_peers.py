"""The multi-fidelity peer (Optuna TPE + Hyperband pruner over fixed MLPs trained epoch by epoch)."""

from __future__ import annotations

import optuna
import pytest
import torch

from benchmarks.peers.common import PLAIN, REGULARISED, split
from benchmarks.peers.fidelity import EpochTrainer, run_pruned_search


@pytest.fixture(scope="module")
def iris():  # type: ignore[no-untyped-def]
    return split("iris")


def test_epoch_trainer_keeps_one_optimiser_and_learns(iris) -> None:  # type: ignore[no-untyped-def]
    net = EpochTrainer(iris, [16], lr=0.01, batch_size=16, seed=0)
    optimizer = net.optimizer
    before = net.evaluation(0).metrics["val_accuracy"]
    samples = sum(net.epoch(len(iris.x_train)) for _ in range(20))
    assert net.optimizer is optimizer and samples == 20 * len(iris.x_train)
    after = net.evaluation(samples)
    assert after.metrics["val_accuracy"] > max(before, 0.8)
    assert after.budget_used.samples == samples and after.genome is not None
    assert after.genome.num_params() == net.genome.num_params()


def test_epoch_trainer_decays_weights_and_smooths_labels(iris) -> None:  # type: ignore[no-untyped-def]
    def trained(**recipe: float) -> EpochTrainer:
        net = EpochTrainer(iris, [16], lr=0.01, batch_size=16, seed=0, **recipe)
        for _ in range(20):
            net.epoch(len(iris.x_train))
        return net

    def norm(net: EpochTrainer) -> float:
        return float(sum(p.detach().norm() ** 2 for p in net.module.parameters()))

    def top_probability(net: EpochTrainer) -> float:
        with torch.no_grad():
            return float(net.module(iris.x_train).softmax(1).max(1).values.mean())

    plain = trained()
    assert norm(trained(weight_decay=0.1)) < 0.5 * norm(plain)
    # smoothed targets put 0.1 of the mass on the other classes: the fitted network is less sure of itself
    assert top_probability(trained(label_smoothing=0.3)) < top_probability(plain) - 0.05


def test_epoch_trainer_stops_at_the_budget(iris) -> None:  # type: ignore[no-untyped-def]
    assert EpochTrainer(iris, [8], lr=0.01, batch_size=32, seed=0).epoch(10) == 10


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_pruned_search_spends_the_budget(iris) -> None:  # type: ignore[no-untyped-def]
    budget = 40 * len(iris.x_train)
    trace = run_pruned_search(iris, optuna.samplers.RandomSampler(seed=0), budget, seed=0)
    assert trace.used == budget  # the last trial is cut to what is left
    assert trace.best().val_accuracy > 0.8


def test_a_pruned_trial_trains_no_further(iris) -> None:  # type: ignore[no-untyped-def]
    n = len(iris.x_train)
    trace = run_pruned_search(iris, optuna.samplers.RandomSampler(seed=0), 5 * n, seed=0, pruner=AlwaysPrune())
    steps = [b.samples - a.samples for a, b in zip(trace.points, trace.points[1:])]
    assert len(trace.points) == 5 and steps == [n] * 4  # five trials of one epoch each


def test_pruned_search_is_deterministic(iris) -> None:  # type: ignore[no-untyped-def]
    def run() -> list[float]:
        trace = run_pruned_search(iris, optuna.samplers.TPESampler(seed=1), 10 * len(iris.x_train), seed=1)
        return [p.val_accuracy for p in trace.points]

    assert run() == run()


def test_pruned_search_rejects_an_empty_budget(iris) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="budget"):
        run_pruned_search(iris, optuna.samplers.RandomSampler(seed=0), 0, seed=0)


def test_dehb_spends_the_budget_repeatably(iris) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("dehb", reason="DEHB lives in the peers' venv (make peers), not in .venv")
    from benchmarks.peers.fidelity import run_dehb

    budget = 12 * len(iris.x_train)
    first, second = run_dehb(iris, budget, seed=0, max_epochs=4), run_dehb(iris, budget, seed=0, max_epochs=4)
    assert first.used == second.used == budget
    assert [p.val_accuracy for p in first.points] == [p.val_accuracy for p in second.points]


def test_regularised_dehb_searches_weight_decay_too(iris) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("dehb", reason="DEHB lives in the peers' venv (make peers), not in .venv")
    from benchmarks.peers.fidelity import _dehb_space, run_dehb

    assert "weight_decay" not in _dehb_space(0, PLAIN)
    assert _dehb_space(0, REGULARISED)["weight_decay"].upper == REGULARISED.weight_decay[1]
    budget = 6 * len(iris.x_train)
    assert run_dehb(iris, budget, seed=0, max_epochs=2, recipe=REGULARISED).used == budget
