"""The gradient-free comparison: its LunarLander target stated from the measurements (runs made up here), and
EvoTorch's searchers on evo's fixed starting network (scored, counted and capped as the other libraries are)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("neat", reason="neat-python is a benchmark dependency (benchmarks/peers/requirements.txt)")
pytest.importorskip("evotorch", reason="EvoTorch is a benchmark dependency (benchmarks/peers/requirements.txt)")

from benchmarks.peers.evotorch_search import ALGORITHMS, WeightProblem, default_popsize
from benchmarks.peers import neat_compare
from benchmarks.peers.neat_compare import (BENCHMARKS, ROOT, Outcome, fixed_network, lunar_verdict, mean_return,
                                           read_log, run_evotorch, time_verdict, write_up)
from evo.config import load_config
from evo.evolution import derive_seed
from evo.runner import run_evolution
from evo.stacked import architecture_key, to_vector, with_vector
from evo.tasks import Budget, Job
from evo.tasks.xor import XorTask


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


@pytest.mark.parametrize("name", ["xor", "cartpole"])
def test_the_fixed_network_is_evos_starting_network(name: str, tmp_path: Path) -> None:
    bench = BENCHMARKS[name]
    overrides = ["evolution.generations=0", "evolution.population_size=2", "backend.kind=serial",
                 "evolution.test_top_k=0", *(["task.episodes=1"] if bench.env_id else [])]
    result = run_evolution(load_config(ROOT / "configs" / bench.evo_config, overrides), run_dir=tmp_path / "run")
    _, genome = fixed_network(bench, seed=0)
    assert {architecture_key(ind.genome) for ind in result.population} == {architecture_key(genome)}


def test_the_fixed_network_is_scored_without_evos_weight_search() -> None:
    pytest.importorskip("Box2D", reason="LunarLander needs Box2D (make box2d)")
    bench = BENCHMARKS["lunar"]
    assert load_config(ROOT / "configs" / bench.evo_config).task.weight_search is not None  # evo's config has one
    task, genome = fixed_network(bench, seed=0)
    assert task.weight_search is None and task.episodes == bench.episodes
    [evaluation] = task.evaluate_batch([Job(0, genome, Budget(), seed=1)], "cpu")
    assert evaluation.genome is genome and evaluation.budget_used.episodes == bench.episodes  # its own weights, scored once


def test_a_candidate_scores_and_acts_as_the_evo_genome_with_its_weights() -> None:
    bench = replace(BENCHMARKS["cartpole"], episodes=2)
    task, genome = fixed_network(bench, seed=0)
    vectors = np.random.default_rng(0).normal(0.0, 1.0, size=(3, genome.num_params()))
    problem = WeightProblem(task, genome, seed=7)
    batch = problem.generate_batch(3)
    batch.set_values(torch.from_numpy(vectors))
    problem.evaluate(batch)
    scores = batch.evals[:, 0].numpy()
    for i, vector in enumerate(vectors):
        policy = with_vector(genome, vector).to_module()

        def act(obs: np.ndarray) -> int:
            with torch.no_grad():
                return int(policy(torch.as_tensor(obs, dtype=torch.float32)[None]).argmax())

        seed = derive_seed(7, i)  # evo's seed rule: evaluation i of the run is individual i
        assert scores[i] == task.evaluate(with_vector(genome, vector), Budget(), "cpu", seed).objectives["mean_return"]
        assert scores[i] == pytest.approx(mean_return(bench.env_id, act, bench.episodes, seed))
    assert problem.evaluations == 3
    assert problem.best == scores.max()
    assert np.array_equal(to_vector(problem.champion), vectors[int(scores.argmax())].astype(np.float32))


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_an_evotorch_run_counts_every_fitness_call_and_stays_within_the_cap(
        algorithm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scored: list[float] = []
    evaluate_batch = XorTask.evaluate_batch

    def counting(self: XorTask, jobs, device):  # type: ignore[no-untyped-def]
        evaluations = evaluate_batch(self, jobs, device)
        scored.extend(e.objectives["fitness"] for e in evaluations)
        return evaluations

    monkeypatch.setattr(XorTask, "evaluate_batch", counting)
    outcome = run_evotorch(replace(BENCHMARKS["xor"], max_evaluations=250), seed=0, algorithm=algorithm)
    popsize = ALGORITHMS[algorithm].popsize(9)  # 2→2→1: 9 weights
    assert outcome.library == ALGORITHMS[algorithm].label
    assert outcome.evaluations == len(scored) == popsize * (250 // popsize)
    assert outcome.best == max(scored)
    assert not outcome.solved and outcome.fresh is None and outcome.stopped is None


def test_cma_es_that_breaks_down_on_xors_plateau_ends_the_run_unsolved() -> None:
    outcome = run_evotorch(BENCHMARKS["xor"], seed=1, algorithm="evotorch-cmaes")
    assert outcome.stopped == "its covariance matrix broke down (linalg.cholesky failed)"
    assert not outcome.solved and outcome.evaluations < BENCHMARKS["xor"].max_evaluations
    assert outcome.evaluations % default_popsize(9) == 0


def test_the_write_up_has_a_row_per_library_and_names_those_left_out() -> None:
    bench = BENCHMARKS["xor"]
    libraries = ["evo", "evotorch-pgpe", "evotorch-snes", "evotorch-cmaes"]
    labels = ["evo", *(ALGORITHMS[name].label for name in libraries[1:])]
    results = {bench.name: {label: [Outcome(label, 0, True, 500, 1.0, 3.95, None)] for label in labels}}
    results[bench.name]["EvoTorch CMA-ES"] = [Outcome("EvoTorch CMA-ES", 0, False, 120, 1.0, 3.5, None, "it broke")]
    text = write_up([bench], [0], results, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), libraries)
    for label in labels:
        assert f"| XOR | {label} | " in text
    assert "- Left out of this run (`--libraries`): neat-python." in text
    assert "XOR 2→2→1 (tanh hidden, 9 weights)" in text
    assert "- XOR, EvoTorch CMA-ES, seed 0: after 120 evaluations, it broke." in text


def test_the_log_gathers_invocations_and_a_rerun_replaces_its_row(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def fake(library: str):
        def run_one(bench, seed: int) -> Outcome:
            calls.append((library, seed))
            return Outcome(library, seed, True, 100 * (len(calls)), float(len(calls)), 3.95, None)
        return run_one

    monkeypatch.setattr(neat_compare, "LIBRARIES", {"neat-python": fake("neat-python"), "evo": fake("evo")})
    log = tmp_path / "runs.jsonl"
    neat_compare.run_all([BENCHMARKS["xor"]], [0, 1], ["neat-python", "evo"], log)
    assert calls == [("neat-python", 0), ("evo", 0), ("neat-python", 1), ("evo", 1)]  # alternating, seed by seed
    neat_compare.run_all([BENCHMARKS["xor"]], [1], ["evo"], log)  # evo's seed 1 again
    results = read_log(log)["XOR"]
    assert [(r.seed, r.evaluations) for r in results["evo"]] == [(0, 200), (1, 500)]
    assert [(r.seed, r.evaluations) for r in results["neat-python"]] == [(0, 100), (1, 300)]
    assert all(r.load is not None for runs in results.values() for r in runs)


def test_the_wall_time_target_compares_solved_runs_only() -> None:
    runs = {"evo": [replace(run("evo", 10, True, 0.0), seconds=1.0), replace(run("evo", 10, False, 0.0), seconds=99.0)],
            "neat-python": [replace(run("neat-python", 10, True, 0.0), seconds=3.0)]}
    assert time_verdict(runs) == "met — 0.33× (1 s vs 3 s)."
    assert time_verdict({"evo": runs["evo"]}).startswith("not comparable")
