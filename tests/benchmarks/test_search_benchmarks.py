"""The benchmark scripts end to end at toy scale: every method is charged the same budget; reports are honest."""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna
import pytest

from benchmarks import search
from benchmarks.peers import optuna_alone
from benchmarks.peers.common import Summary, Trace, run_fixed_search, split, summarize
from evo.genome import Genome
from evo.tasks import Budget, Evaluation


def fake_trace(accuracies: list[float], samples: int = 1000) -> Trace:
    trace = Trace()
    for i, acc in enumerate(accuracies):
        genome = Genome.mlp((64,), (8 + i,), 10, seed=i)
        trace.add(Evaluation(-1, {}, genome, {"val_accuracy": acc}, Budget(samples=samples)))
    return trace


def test_search_report_checks_the_targets_against_measurements() -> None:
    data = split("digits")
    traces = {search.EVO: fake_trace([0.5, 0.98, 0.99]), search.EVO_SAMPLED: fake_trace([0.5, 0.5, 0.5, 0.99]),
              search.TPE: fake_trace([0.5, 0.6, 0.7, 0.98]), search.TPE_START: fake_trace([0.98, 0.5]),
              "random search": fake_trace([0.4, 0.5])}
    runs = [{m: (t, summarize(t, data, search.TARGET, 1.0)) for m, t in traces.items()}]
    args = argparse.Namespace(seeds=[0], trials=2, trial_epochs=1, standardize=True)
    body = search.report(runs, len(data.x_train), args)
    assert "measured ratio 0.50 (met; against TPE with its first trial given: 2.00)" in body  # 2000 vs 4000, 1000
    assert "| random search |" in body and "never" in body
    assert "inputs standardised" in body
    # at 25% of its budget TPE-with-a-start already has 0.98 where evo has 0.5
    assert "every peer's at 25%, 50% and 100% of the budget: not met" in body


def test_tpe_with_a_start_trains_the_given_network_first() -> None:
    data = split("digits")
    trace = run_fixed_search(data, optuna.samplers.TPESampler(seed=0), budget=320, seed=0,
                             first=search.TPE_FIRST)  # 10 epochs, cut to the 10 batches of 32 the budget leaves
    assert [p.params for p in trace.points] == [Genome.mlp((64,), (256,), 10).num_params()]


def test_evo_search_runs_the_base_config_first(tmp_path: Path) -> None:
    data = split("digits")
    base = search.evo_search(data, seed=0, trials=1, trial_epochs=1, workdir=tmp_path / "a", standardize=True)
    sampled = search.evo_search(data, seed=0, trials=1, trial_epochs=1, workdir=tmp_path / "b", standardize=True,
                                base_first=False)
    assert len(base.points) == 16  # configs/digits_mlp.yaml's population, one epoch each
    assert len(sampled.points) != 16 or [p.params for p in sampled.points] != [p.params for p in base.points]


def test_optuna_alone_cell_gives_every_method_evo_s_budget() -> None:
    cell = optuna_alone.run_cell("wine", seed=0, epochs=3)
    assert set(cell) == {m for m in optuna_alone.METHODS if optuna_alone.available(m)}
    budget = cell[optuna_alone.LAMARCK][0].used
    for method, (trace, summary) in cell.items():
        assert budget <= trace.used < budget + 128 + len(split("wine").x_train) * 8, method
        assert summary.evaluations == len(trace.points) > 0
    body = optuna_alone.report({"wine": [cell]}, argparse.Namespace(seeds=[0], epochs=3, skip=[]))
    assert "Lamarckian vs Darwinian" in body and "train − val gap" in body


@pytest.mark.slow
def test_evo_search_charges_every_evaluation_of_every_trial(tmp_path: Path) -> None:
    data = split("digits")
    trace = search.evo_search(data, seed=0, trials=2, trial_epochs=1, workdir=tmp_path,
                              standardize=True)
    assert len(trace.points) >= 2 * 4  # every trial evaluates at least its initial population (>= 4)
    assert trace.used == len(trace.points) * len(data.x_train)


@pytest.mark.slow
@pytest.mark.ray
def test_pbt_is_charged_exactly_the_budget_it_trained(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune", reason="ray[tune] is a benchmark dependency (benchmarks/peers/requirements.txt)",
                        exc_type=ImportError)  # ray.tune raises a plain ImportError when pandas is missing
    from benchmarks.peers import ray_pbt

    one_iteration = ray_pbt.POPULATION * len(split("digits").x_train)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        trace = ray_pbt.pbt_trace("digits", seed=0, budget=one_iteration, storage=tmp_path)
    finally:
        ray.shutdown()
    assert trace.used == one_iteration and len(trace.points) == ray_pbt.POPULATION
    best = trace.best()
    assert best.genome is not None and best.genome.num_params() == Genome.mlp((64,), ray_pbt.HIDDEN, 10).num_params()


def test_optuna_alone_skips_what_it_is_told_and_says_so() -> None:
    cell = optuna_alone.run_cell("wine", seed=0, epochs=1, skip={"Optuna NSGA-II", optuna_alone.DEHB})
    assert "Optuna NSGA-II" not in cell and optuna_alone.DEHB not in cell and optuna_alone.LAMARCK in cell
    body = optuna_alone.report({"wine": [cell]}, argparse.Namespace(seeds=[0], epochs=1, skip=["Optuna NSGA-II"]))
    assert "Left out of this run (`--skip`): Optuna NSGA-II." in body


def test_optuna_alone_reports_evo_rows_alone_without_a_peer_verdict() -> None:
    skip = [m for m in optuna_alone.METHODS if m not in (optuna_alone.LAMARCK, optuna_alone.CARRY)]
    cell = optuna_alone.run_cell("wine", seed=0, epochs=1, skip=skip)
    assert set(cell) == {optuna_alone.LAMARCK, optuna_alone.CARRY}
    body = optuna_alone.report({"wine": [cell]}, argparse.Namespace(seeds=[0], epochs=1, skip=skip))
    assert f"| wine | {optuna_alone.CARRY} |" in body and "Front target" not in body


def test_scoreboard_counts_the_data_sets_where_an_evo_row_beats_every_peer() -> None:
    def cell(evo_hv: float, peer_hv: float, evo_test: float, peer_test: float) -> optuna_alone.Cell:
        def summary(hv: float, test: float) -> Summary:
            return Summary(0.9, test, 100, 1.0, hv, 10, 1, 0.1)
        return {optuna_alone.LAMARCK: (Trace(), summary(evo_hv, evo_test)),
                "Optuna TPE": (Trace(), summary(peer_hv, peer_test))}

    results = {"a": [cell(3.0, 2.0, 0.9, 0.95)], "b": [cell(1.0, 2.0, 0.9, 0.9)]}
    assert optuna_alone.scoreboard(results) == [[optuna_alone.LAMARCK, "1 of 2 (a)", "1 of 2 (b)"]]


def test_optuna_alone_writes_the_section_it_is_told(monkeypatch) -> None:
    written = []
    monkeypatch.setattr(optuna_alone, "update_section", lambda *args: written.append(args))
    others = [m for m in optuna_alone.METHODS if m != optuna_alone.LAMARCK]
    optuna_alone.main(["--seeds", "0", "--epochs", "1", "--datasets", "wine", "--skip", *others,
                       "--section", "peers-tune"])
    [(name, title, body)] = written
    assert (name, title) == ("peers-tune", optuna_alone.SECTIONS["peers-tune"])
    assert "| wine | evo (Lamarckian) |" in body and "Left out of this run" in body


def test_optuna_alone_writes_its_section_after_each_data_set(monkeypatch) -> None:
    """A long run stopped part-way keeps the data sets it finished: the section is rewritten after each."""
    written = []
    monkeypatch.setattr(optuna_alone, "update_section", lambda *args: written.append(args[2]))
    others = [m for m in optuna_alone.METHODS if m != optuna_alone.LAMARCK]
    optuna_alone.main(["--seeds", "0", "--epochs", "1", "--datasets", "wine", "breast_cancer", "--skip", *others])
    first, second = written
    assert "| wine | evo (Lamarckian) |" in first and "| breast_cancer |" not in first
    assert "| wine | evo (Lamarckian) |" in second and "| breast_cancer | evo (Lamarckian) |" in second


def test_optuna_alone_no_doc_prints_the_report_and_writes_nothing(monkeypatch, capsys) -> None:
    written = []
    monkeypatch.setattr(optuna_alone, "update_section", lambda *args: written.append(args))
    others = [m for m in optuna_alone.METHODS if m != optuna_alone.LAMARCK]
    optuna_alone.main(["--seeds", "0", "--epochs", "1", "--datasets", "wine", "--skip", *others, "--no-doc"])
    assert written == [] and "| wine | evo (Lamarckian) |" in capsys.readouterr().out
