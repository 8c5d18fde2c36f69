"""Selection strategies: aging removes the oldest, tournament keeps elites, NSGA-II keeps the Pareto front."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evo.genome import Genome
from evo.records import Individual
from evo.selection import (
    AgingSelector,
    NSGA2Selector,
    TournamentSelector,
    crowding_distance,
    make_selector,
    non_dominated_fronts,
    pareto_front,
)
from evo.tasks import Direction, Evaluation, Objective

GENOME = Genome.mlp((2,), (2,), 1)
ACC = Objective("acc")
PARAMS = Objective("params", Direction.MINIMIZE)


def ind(i: int, error: str | None = None, **objectives: float) -> Individual:
    return Individual(i, GENOME, evaluation=Evaluation(i, objectives, GENOME, error=error))


def test_aging_removes_the_oldest_even_if_best() -> None:
    population = [ind(0, acc=0.99), ind(1, acc=0.5), ind(2, acc=0.6)]
    children = [ind(3, acc=0.1)]
    survivors = AgingSelector([ACC]).survivors(population, children, 3)
    assert [s.id for s in survivors] == [1, 2, 3]


def test_tournament_parents_are_the_best_of_their_sample() -> None:
    population = [ind(i, acc=i / 10) for i in range(6)]
    selector = AgingSelector([ACC], tournament_size=6)
    parents = selector.parents(population, 4, np.random.default_rng(0))
    assert all(p.id == 5 for p in parents)


def test_failed_individuals_are_never_preferred() -> None:
    population = [ind(0, error="boom", acc=math.nan), ind(1, acc=0.1)]
    parents = AgingSelector([ACC], tournament_size=2).parents(population, 3, np.random.default_rng(1))
    assert {p.id for p in parents} == {1}


def test_tournament_survivors_keep_elites() -> None:
    population = [ind(0, acc=0.9), ind(1, acc=0.2)]
    children = [ind(2, acc=0.5), ind(3, acc=0.4), ind(4, acc=0.1)]
    survivors = TournamentSelector([ACC], elitism=1).survivors(population, children, 3)
    assert [s.id for s in survivors] == [0, 2, 3]


def test_minimised_objectives_are_flipped() -> None:
    population = [ind(0, params=100.0), ind(1, params=10.0)]
    parents = AgingSelector([PARAMS], tournament_size=2).parents(population, 2, np.random.default_rng(0))
    assert {p.id for p in parents} == {1}


def test_non_dominated_fronts_constructed_case() -> None:
    points = [(1.0, 1.0), (2.0, 0.0), (0.0, 2.0), (0.5, 0.5), (0.0, 0.0)]
    assert non_dominated_fronts(points) == [[0, 1, 2], [3], [4]]


def test_crowding_distance_boundaries_infinite() -> None:
    d = crowding_distance([(0.0, 3.0), (1.0, 2.0), (3.0, 0.0)])
    assert d[0] == math.inf and d[2] == math.inf and 0 < d[1] < math.inf


def test_nsga2_survivors_keep_the_pareto_front() -> None:
    population = [ind(0, acc=0.9, params=1000.0), ind(1, acc=0.5, params=10.0), ind(2, acc=0.4, params=500.0)]
    children = [ind(3, acc=0.95, params=2000.0), ind(4, acc=0.3, params=900.0)]
    survivors = NSGA2Selector([ACC, PARAMS]).survivors(population, children, 3)
    assert {s.id for s in survivors} == {0, 1, 3}
    assert {s.id for s in pareto_front([*population, *children], [ACC, PARAMS])} == {0, 1, 3}


def test_make_selector_auto_and_errors() -> None:
    assert isinstance(make_selector("auto", [ACC]), AgingSelector)
    assert isinstance(make_selector("auto", [ACC, PARAMS]), NSGA2Selector)
    with pytest.raises(ValueError, match="allowed: auto, aging, tournament, nsga2"):
        make_selector("roulette", [ACC])


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=25))
def test_pareto_front_sweep_matches_the_first_non_dominated_front(points: list[tuple[int, int, int]]) -> None:
    """The fast sweep must agree with full non-dominated sorting, ties and duplicates included."""
    objectives = [ACC, Objective("b"), Objective("c")]
    individuals = [ind(i, acc=float(a), b=float(b), c=float(c)) for i, (a, b, c) in enumerate(points)]
    expected = non_dominated_fronts([tuple(map(float, p)) for p in points])[0]
    assert [x.id for x in pareto_front(individuals, objectives)] == expected


def test_lemonade_prefers_a_lone_small_network_over_a_crowded_region() -> None:
    widths = [1, 50, 51, 52, 53, 54]  # one small network, five of nearly the same size: all on the Pareto front
    front = []
    for i, w in enumerate(widths):
        genome = Genome.mlp((2,), (w,), 1)
        objectives = {"acc": 0.5 + i / 100, "params": float(genome.num_params())}
        front.append(Individual(i, genome, evaluation=Evaluation(i, objectives, genome)))
    dominated = Individual(6, GENOME, evaluation=Evaluation(6, {"acc": 0.1, "params": 1e6}, GENOME))
    population = [*front, dominated]
    rng = np.random.default_rng(0)
    picks = [p.id for p in make_selector("lemonade", [ACC, PARAMS]).parents(population, 3000, rng)]
    counts = np.bincount(picks, minlength=7)
    assert counts[6] == 0  # only the front is sampled
    assert counts[0] > 0.4 * len(picks) and all(counts[0] > 4 * counts[i] for i in range(1, 6))  # uniform: 1/6


def test_inverse_density_is_uniform_without_spread_and_lemonade_runs_an_evolution() -> None:
    from evo.backends import SerialBackend
    from evo.config import load_config
    from evo.evolution import Evolution
    from evo.operators.registry import make_operator
    from evo.selection import inverse_density
    from evo.testing import ToyTask

    assert inverse_density([2.0]).tolist() == [1.0] and inverse_density([1.0, 1.0]).tolist() == [0.5, 0.5]
    ops = [(make_operator({"op": "widen", "k": 1, "init": "zero"}), 0.5),
           (make_operator({"op": "prune_neurons", "amount": 1}), 0.5)]
    cfg = load_config(None, ["evolution.selection=lemonade", "evolution.population_size=4", "evolution.generations=3",
                             "evolution.init.hidden=[4]"])
    result = Evolution(cfg, ToyTask(), SerialBackend(), ops).run()
    assert len(result.individuals) == 16 and result.pareto
