"""The shared benchmark harness: budget counting, fronts, hypervolume, confidence intervals, baselines."""

from __future__ import annotations

import math

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.peers.common import (MAX_WIDTH, MIN_WIDTH, REGULARISED, RecordingBackend, Trace, ci95, evo_config,
                                     fixed_mlp_trial, hypervolume, run_evolution_traced, run_fixed_search, split,
                                     stat_cell, summarize, train_fixed)
from evo.backends import SerialBackend
from evo.genome import Genome
from evo.tasks import Budget, Evaluation, Job
from evo.tasks.supervised import SupervisedTask


def evaluation(val: float, hidden: tuple[int, ...], samples: int = 100, ok: bool = True) -> Evaluation:
    genome = Genome.mlp((4,), hidden, 3)
    return Evaluation(-1, {"val_accuracy": val}, genome if ok else None, {"val_accuracy": val},
                      Budget(samples=samples), error=None if ok else "boom")


# ----------------------------------------------------------------- hypervolume
def test_hypervolume_of_known_fronts() -> None:
    assert hypervolume([(0.5, 3.0)], reference=(1.0, 6.0)) == pytest.approx(1.5)
    assert hypervolume([(0.1, 3.0), (0.2, 2.0)], reference=(1.0, 6.0)) == pytest.approx(3.5)
    assert hypervolume([(0.1, 3.0), (0.2, 3.5)], reference=(1.0, 6.0)) == pytest.approx(2.7)  # dominated adds nothing
    assert hypervolume([(1.2, 1.0), (0.5, 7.0)], reference=(1.0, 6.0)) == 0.0  # outside the reference box
    assert hypervolume([]) == 0.0


points = st.lists(st.tuples(st.floats(0, 1), st.floats(0, 6)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(points, st.tuples(st.floats(0, 1), st.floats(0, 6)))
def test_hypervolume_grows_with_points_and_stays_in_the_box(front: list[tuple[float, float]],
                                                            extra: tuple[float, float]) -> None:
    before, after = hypervolume(front), hypervolume([*front, extra])
    assert after >= before - 1e-9
    assert 0.0 <= after <= 6.0 + 1e-9


# ----------------------------------------------------------------- trace
def test_trace_charges_every_budget_and_keeps_only_front_genomes() -> None:
    trace = Trace()
    trace.add(evaluation(0.8, (16,), samples=100))
    trace.add(evaluation(0.7, (32,), samples=50))  # dominated: less accurate and larger
    trace.add(evaluation(0.0, (8,), samples=30, ok=False))  # failed: costs its budget, scores nothing
    trace.add(evaluation(0.9, (64,), samples=20))
    trace.add(evaluation(0.6, (4,), samples=10))
    assert trace.used == 210
    assert [p.val_accuracy for p in trace.points] == [0.8, 0.7, 0.9, 0.6]
    assert [p.val_accuracy for p in trace.front()] == [0.6, 0.8, 0.9]  # by parameters, ascending
    assert [p.genome is not None for p in trace.points] == [True, False, True, True]
    assert trace.best().val_accuracy == 0.9
    assert trace.budget_to_reach(0.85) == 200
    assert math.isnan(trace.budget_to_reach(0.95))
    assert trace.best_at(150) == 0.8 and math.isnan(trace.best_at(50))


def test_best_prefers_fewer_parameters_among_equal_accuracy() -> None:
    trace = Trace()
    trace.add(evaluation(0.9, (64,)))
    trace.add(evaluation(0.9, (8,)))
    assert trace.best().params == Genome.mlp((4,), (8,), 3).num_params()
    with pytest.raises(ValueError, match="no successful evaluation"):
        Trace().best()


def test_recording_backend_records_what_it_yields() -> None:
    data = split("wine")
    task = SupervisedTask(data)
    jobs = [Job(i, Genome.mlp(data.input_shape, (8,), data.output_size, seed=i), Budget(steps=3), i) for i in range(3)]
    trace = Trace()
    results = list(RecordingBackend(SerialBackend(threads=1), trace).map(task, jobs))
    assert trace.used == sum(r.budget_used.samples for r in results) > 0
    assert [p.val_accuracy for p in trace.points] == [r.objectives["val_accuracy"] for r in results]


# ----------------------------------------------------------------- statistics
def test_ci95_matches_the_student_t_interval() -> None:
    mean, half = ci95([1.0, 2.0, 3.0, math.nan])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302652729911275 * 1.0 / math.sqrt(3))
    assert ci95([5.0]) == (5.0, 0.0)
    assert all(math.isnan(v) for v in ci95([math.nan]))


def test_stat_cell_says_how_many_seeds_reached_a_target() -> None:
    assert stat_cell([1.0, 3.0]).startswith("2 [2 ±")
    assert stat_cell([math.nan, math.nan]) == "never"
    assert stat_cell([1.0, math.nan]).endswith("(1/2 seeds)")


# ----------------------------------------------------------------- baselines and evo
def test_fixed_mlp_trial_stays_in_bounds_and_budget() -> None:
    trial = optuna.trial.FixedTrial({"depth": 2, "width_0": MIN_WIDTH, "width_1": MAX_WIDTH, "epochs": 40,
                                     "lr": 1e-3, "batch_size": 32})
    spec = fixed_mlp_trial(trial, n_train=100, remaining=250)
    assert spec == {"hidden": [MIN_WIDTH, MAX_WIDTH], "lr": 1e-3, "batch_size": 32, "samples": 250,
                    "weight_decay": 0.0, "label_smoothing": 0.0}


def test_the_regularised_recipe_searches_weight_decay_and_smooths_labels() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    plain = fixed_mlp_trial(study.ask(), n_train=100, remaining=10_000)
    assert plain["weight_decay"] == plain["label_smoothing"] == 0.0
    decays = [fixed_mlp_trial(study.ask(), 100, 10_000, REGULARISED)["weight_decay"] for _ in range(30)]
    low, high = REGULARISED.weight_decay
    assert all(low <= d <= high for d in decays) and len(set(decays)) == 30
    assert fixed_mlp_trial(study.ask(), 100, 10_000, REGULARISED)["label_smoothing"] == 0.1


def test_weight_decay_reaches_the_fixed_baseline_s_optimiser() -> None:
    data = split("wine")

    def weight_norm(decay: float) -> float:
        trained = train_fixed(data, [32], lr=0.01, batch_size=16, samples=20 * len(data.x_train), seed=0,
                              weight_decay=decay).genome
        assert trained is not None
        return float(sum(w.norm() ** 2 for w in trained.weights.values()))

    assert weight_norm(0.1) < 0.5 * weight_norm(0.0)


def test_fixed_search_spends_the_budget_and_is_seeded() -> None:
    data = split("wine")
    budget = 5 * len(data.x_train)

    def run() -> Trace:
        return run_fixed_search(data, optuna.samplers.RandomSampler(seed=0), budget, seed=0, multi_objective=True)

    first, second = run(), run()
    assert budget <= first.used < budget + 128  # the last trial is cut to what is left (whole batches)
    assert [(p.val_accuracy, p.params) for p in first.points] == [(p.val_accuracy, p.params) for p in second.points]
    with pytest.raises(ValueError, match="budget must be >= 1"):
        run_fixed_search(data, optuna.samplers.RandomSampler(seed=0), 0, seed=0)


def test_evo_run_is_charged_per_evaluation_and_summarized() -> None:
    data = split("wine")
    budget = 10 * len(data.x_train)
    trace = run_evolution_traced(evo_config("wine", budget, seed=0))
    assert trace.used >= budget  # stops at the end of the generation crossing the budget
    assert trace.used == len(trace.points) * len(data.x_train)  # one epoch per evaluation, none failed
    summary = summarize(trace, data, target=0.5, seconds=1.0)
    assert 0.0 <= summary.best_test <= 1.0 and summary.hypervolume > 0
    assert summary.to_target <= trace.used and summary.evaluations == len(trace.points)
