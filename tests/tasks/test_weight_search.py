"""The lifetime weight search: CMA-ES or SNES on a genome's weights inside an evaluation, Lamarckian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from evo.config import load_config
from evo.genome import Genome
from evo.stacked import to_vector
from evo.task_kinds import build_task
from evo.tasks import Budget, ControlTask, Job
from evo.operators import widen
from evo.tasks.es import SNES, STD, WeightSearch, inherited_std, search_weights


@pytest.mark.parametrize("algorithm", ["sep_cma", "cma", "snes"])
def test_search_moves_the_weights_toward_higher_scores(algorithm: str) -> None:
    g = Genome.mlp((3,), (2,), 1, seed=0)
    target = np.linspace(-1, 1, g.num_params())
    score = lambda vectors, iteration: -((vectors - target) ** 2).sum(axis=1)  # noqa: E731
    better, stats = search_weights(g, score, WeightSearch(algorithm=algorithm, iterations=40, sigma=0.3), seed=1)
    before, after = score(to_vector(g)[None], 0)[0], score(to_vector(better)[None], 0)[0]
    assert after > before / 10 and stats["es_iterations"] == 40.0
    assert str(better) == str(g)  # same architecture, other weights


@pytest.mark.parametrize("algorithm", ["sep_cma", "snes"])
def test_failed_candidates_rank_last(algorithm: str) -> None:
    g = Genome.mlp((2,), (), 1, seed=0)
    score = lambda v, i: np.where(v[:, 0] > 0, -np.inf, -np.abs(v).sum(axis=1))  # noqa: E731
    better, _ = search_weights(g, score, WeightSearch(algorithm=algorithm, iterations=20, sigma=0.5), seed=0)
    assert to_vector(better)[0] <= 0.1


def sphere(vectors: np.ndarray, iteration: int) -> np.ndarray:
    return -(vectors**2).sum(axis=1)


def test_snes_hands_its_step_sizes_down_and_a_child_continues_from_them() -> None:
    g = Genome.mlp((3,), (4,), 2, seed=0)
    search = WeightSearch(algorithm="snes", iterations=30, sigma=0.5)
    assert np.all(inherited_std(g, 0.5) == 0.5)  # nothing inherited: the configured step everywhere
    child, stats = search_weights(g, sphere, search, seed=1)
    assert set(child.optim_state) == set(g.param_shapes())
    assert all(child.optim_state[name][STD].shape == shape for name, shape in g.param_shapes().items())
    std = inherited_std(child, 0.5)
    assert np.all(std > 0) and std.mean() < 0.5 and stats["es_std"] == pytest.approx(std.mean(), rel=1e-6)
    # near the optimum SNES shrinks its steps; a child starting from them keeps refining rather than restarting
    grandchild, _ = search_weights(child, sphere, search, seed=2)
    restarted, _ = search_weights(child.replace(optim_state={}), sphere, search, seed=2)
    assert sphere(to_vector(grandchild)[None], 0)[0] > sphere(to_vector(restarted)[None], 0)[0]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 12), st.sampled_from([np.exp, np.arctan, lambda f: 3 * f - 7]))
def test_snes_depends_only_on_the_ranking_of_the_scores(seed: int, population: int, monotone) -> None:
    """Rank utilities: any strictly increasing transform of the fitness gives the same search (scale-free)."""
    a, b = (SNES(np.zeros(5), np.full(5, 0.3), population, seed) for _ in range(2))
    for _ in range(3):
        xa, xb = a.ask(), b.ask()
        scores = -np.abs(xa).sum(axis=1)
        a.tell(xa, scores)
        b.tell(xb, monotone(scores))
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.std, b.std)


def test_a_widened_child_keeps_the_step_sizes_of_its_old_units_and_new_ones_start_from_sigma() -> None:
    g = Genome.mlp((3,), (4,), 2, seed=0)
    parent, _ = search_weights(g, sphere, WeightSearch(algorithm="snes", iterations=10, sigma=0.5), seed=1)
    child = widen(parent, np.random.default_rng(0), layer=0, k=2, init="random")
    old, new = parent.optim_state, inherited_std(child, 0.7)
    by_name = dict(zip(child.param_shapes(), np.split(new, np.cumsum(
        [int(np.prod(s)) for s in child.param_shapes().values()])[:-1]), strict=True))
    hidden_in = by_name["layers.0.weight"].reshape(6, 3)  # (units, inputs): rows 4-5 are the new units
    assert np.allclose(hidden_in[:4], old["layers.0.weight"][STD].numpy()) and np.all(hidden_in[4:] == 0.7)
    out_in = by_name["layers.1.weight"].reshape(2, 6)  # the next layer's columns for the new units are new too
    assert np.allclose(out_in[:, :4], old["layers.1.weight"][STD].numpy()) and np.all(out_in[:, 4:] == 0.7)


def cartpole() -> ControlTask:
    search = WeightSearch(iterations=3, population=6, sigma=0.5, episodes=1)
    return ControlTask("CartPole-v1", episodes=2, max_episode_steps=100, weight_search=search)


def test_an_evaluation_returns_the_improved_weights_and_charges_the_search() -> None:
    task, genome = cartpole(), Genome.mlp((4,), (4,), 2, seed=2)
    ev = task.evaluate(genome, Budget(), "cpu", seed=3)
    assert ev.genome is not None and not all(torch.equal(ev.genome.weights[k], genome.weights[k]) for k in genome.weights)
    assert ev.metrics["es_iterations"] == 3.0 and ev.metrics["es_population"] == 6.0
    assert ev.budget_used.episodes == 3 * 6 + 2 and ev.metrics["episodes"] == 2.0  # fitness: its own 2 episodes
    plain = ControlTask("CartPole-v1", episodes=2, max_episode_steps=100).evaluate(ev.genome, Budget(), "cpu", seed=3)
    assert plain.objectives == ev.objectives  # the fitness is that of the weights returned
    again = task.evaluate(genome, Budget(), "cpu", seed=3)
    assert again.objectives == ev.objectives and again.metrics == ev.metrics  # deterministic for a seed


def test_a_measurement_does_not_learn_and_batches_equal_single_runs() -> None:
    task, genome = cartpole(), Genome.mlp((4,), (4,), 2, seed=2)
    [measured] = task.evaluate_batch([Job(0, genome, Budget(), 3, learn=False)], "cpu")
    assert measured.genome is genome and "es_iterations" not in measured.metrics
    jobs = [Job(i, Genome.mlp((4,), (4,), 2, seed=i), Budget(), seed=i) for i in range(3)]
    batched = task.evaluate_batch(jobs, "cpu")
    single = [task.evaluate(j.genome, j.budget, "cpu", j.seed) for j in jobs]
    assert [e.objectives for e in batched] == [e.objectives for e in single]


def test_an_snes_evaluation_returns_weights_that_carry_their_step_sizes() -> None:
    search = WeightSearch(algorithm="snes", iterations=2, population=4, sigma=0.3)
    task = ControlTask("CartPole-v1", episodes=2, max_episode_steps=100, weight_search=search)
    ev = task.evaluate(Genome.mlp((4,), (4,), 2, seed=2), Budget(), "cpu", seed=3)
    assert ev.genome is not None and ev.metrics["es_population"] == 4.0 and ev.budget_used.episodes == 2 * 4 + 2
    assert set(ev.genome.optim_state) == set(ev.genome.weights) and ev.metrics["es_std"] > 0


def test_config_section() -> None:
    cfg = load_config(None, ["task.kind=control", "task.env=Pendulum-v1", "task.normalize=true",
                             "task.weight_search={algorithm: cma, iterations: 2}"])
    task = build_task(cfg.task)
    assert isinstance(task, ControlTask) and task.weight_search == WeightSearch(algorithm="cma", iterations=2)
    with pytest.raises(ValidationError):
        WeightSearch(sigma=0)
    with pytest.raises(ValidationError, match="at least 2"):  # a single candidate cannot be ranked
        WeightSearch(population=1)
