"""Re-evaluated elites: fresh episodes each generation, fitness = mean over all episodes seen, resumable."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from evo.backends import SerialBackend
from evo.config import ConfigError, load_config
from evo.evolution import _REEVALUATE, Evolution, derive_seed
from evo.genome import Genome
from evo.operators.registry import make_operator
from evo.reevaluation import merge
from evo.store import RunStore
from evo.tasks import Budget, ControlTask, Evaluation

MUTATE = [(make_operator({"op": "mutate_weights", "sigma": 0.3}), 1.0)]


def cartpole() -> ControlTask:
    return ControlTask("CartPole-v1", episodes=2, max_episode_steps=100, test_episodes=5)


def evolution(*overrides: str, store: RunStore | None = None) -> Evolution:
    cfg = load_config(None, ["task.kind=control", "evolution.population_size=4", "evolution.generations=3",
                             "evolution.seed=1", "evolution.init.hidden=[4]", "evolution.reevaluate=2",
                             "evolution.selection=tournament", "evolution.elitism=2", *overrides])
    return Evolution(cfg, cartpole(), SerialBackend(), MUTATE, store)


def test_merge_weights_objectives_by_episodes_and_a_failure_replaces() -> None:
    old = Evaluation(3, {"r": 90.0}, None, {"episodes": 2.0})
    merged = merge(old, Evaluation(-1, {"r": 30.0}, None, {"episodes": 4.0}))
    assert merged.objectives == {"r": 50.0} and merged.metrics == {"episodes": 6.0, "reevaluations": 1.0}
    assert merged.individual_id == 3
    broken = merge(old, Evaluation(-1, {"r": float("-inf")}, None, error="policy output is not finite"))
    assert broken.error and broken.objectives["r"] == float("-inf") and broken.individual_id == 3


def test_elites_carry_the_mean_of_their_first_and_fresh_episodes(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", "")
    evo = evolution(store=store)
    result = evo.run()
    task, seed = cartpole(), evo.evo.seed
    entries = result.history[1].extra["reevaluated"]
    elites = sorted((result.individuals[i] for i in result.history[0].population), key=evo.selector.key, reverse=True)
    assert sorted(map(int, entries)) == sorted(ind.id for ind in elites[:2])
    changed = 0
    for key, entry in entries.items():
        genome = store.load_genome(int(key))
        first = task.evaluate(genome, Budget(), "cpu", derive_seed(seed, int(key))).objectives["mean_return"]
        fresh = task.evaluate(genome, Budget(), "cpu", derive_seed(seed, int(key), 1, _REEVALUATE))
        assert entry["objectives"]["mean_return"] == pytest.approx((first + fresh.objectives["mean_return"]) / 2)
        assert entry["metrics"]["episodes"] == 4.0 and entry["metrics"]["reevaluations"] == 1.0
        changed += fresh.objectives["mean_return"] != first
    assert changed  # fresh episodes really are other episodes
    latest = {int(i): e for r in result.history for i, e in r.extra.get("reevaluated", {}).items()}
    assert all(result.individuals[i].objectives == e["objectives"] for i, e in latest.items())
    assert result.history[-1].budget_used.episodes == sum(
        ind.evaluation.budget_used.episodes for ind in result.individuals.values()) + 2 * 2 * 3  # 2 elites × 2 eps × 3


def test_a_resumed_run_keeps_the_merged_fitness(tmp_path: Path) -> None:
    straight = evolution().run()
    store = RunStore.create(tmp_path / "run", "")
    evolution("evolution.generations=1", store=store).run()
    resumed = evolution(store=store)
    resumed.restore(store.latest_checkpoint(), store)
    result = resumed.run()
    assert {i: ind.objectives for i, ind in result.individuals.items()} == {
        i: ind.objectives for i, ind in straight.individuals.items()}


def test_the_champion_is_tested_on_fresh_episodes() -> None:
    task = cartpole()
    genome = evolution().run().best.genome
    test = task.test(genome)
    assert test["test_episodes"] == 5.0
    assert test["test_mean_return"] == task.evaluate(genome, Budget(episodes=5), "cpu", 0x7E57).objectives["mean_return"]


def test_only_a_confirmed_fitness_reaches_the_target() -> None:
    result = evolution("evolution.target_fitness=-1000").run()  # any fitness reaches it, but only once confirmed
    assert len(result.history) == 2 and result.history[1].extra["reevaluated"]


def test_reevaluation_needs_a_noisy_task() -> None:
    with pytest.raises(ConfigError, match="reevaluate needs"):
        load_config(None, ["evolution.reevaluate=1"])


def test_an_individual_ranked_first_after_its_weights_left_memory_is_read_back(tmp_path: Path) -> None:
    """A re-measured elite can fall below an individual whose weights were already forgotten (only the population
    and the best few stay in memory): that one is then the best, and best.pt, the result and the test get its
    weights from the run's files."""
    store = RunStore.create(tmp_path / "run", "")
    evo = evolution("evolution.test_top_k=1", store=store)
    evo.run()
    alive = {ind.id for ind in evo.population}
    dead = next(ind for ind in evo.ranked() if ind.id not in alive and not ind.genome.weights)
    assert dead.evaluation is not None
    # as if the elites above it had lost their lucky fitness on fresh episodes
    evo.individuals[dead.id] = dataclasses.replace(
        dead, evaluation=dataclasses.replace(dead.evaluation, objectives={"mean_return": 1e9}))
    evo.step()
    saved = store.load_genome(dead.id)
    assert json.loads((tmp_path / "run" / "best.json").read_text())["id"] == dead.id
    assert _same_weights(Genome.load(tmp_path / "run" / "best.pt"), saved)
    best = evo.result().best
    assert best.id == dead.id and _same_weights(best.genome, saved)


def _same_weights(a: Genome, b: Genome) -> bool:
    return a.weights.keys() == b.weights.keys() and all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
