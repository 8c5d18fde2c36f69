"""LEMONADE's cheap pre-filter of children and distillation of shrunken children from their parents."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from evo.backends import SerialBackend
from evo.config import ConfigError, load_config
from evo.evolution import Evolution
from evo.operators.registry import make_operator
from evo.records import Individual
from evo.selection import sample_inverse_density
from evo.store import RunStore
from evo.tasks import Evaluation, Job
from evo.tasks.supervised import SupervisedTask
from evo.testing import ToyTask

GROW_OR_SHRINK = [(make_operator({"op": "widen", "k": 3, "init": "split"}), 0.5),
                  (make_operator({"op": "prune_neurons", "amount": 2}), 0.5)]


class SpyTask(SupervisedTask):
    """A supervised task remembering every job it was given."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.jobs: list[Job] = []

    def evaluate_job(self, job: Job, device: str) -> Evaluation:
        self.jobs.append(job)
        return super().evaluate_job(job, device)


def iris(*overrides: str, store: RunStore | None = None) -> tuple[Evolution, SpyTask]:
    cfg = load_config(None, ["task.dataset=iris", "evolution.population_size=4", "evolution.generations=2",
                             "evolution.init.hidden=[8]", "evolution.eval_steps=4", "evolution.seed=5", *overrides])
    task = SpyTask(cfg.task, cfg.plasticity)
    return Evolution(cfg, task, SerialBackend(), GROW_OR_SHRINK, store), task


def test_the_prefilter_keeps_children_of_the_sparse_size_range() -> None:
    reference = [math.log(p) for p in (1000, 1010, 1020, 1030, 1040, 100)]  # a crowd, and one small network
    candidates = [math.log(p) for p in [1005, 1015, 1025, 1035, 1045, 1050] + [95, 105, 110, 98, 102, 90]]
    kept = [i for seed in range(200) for i in sample_inverse_density(candidates, reference, 3, np.random.default_rng(seed))]
    assert len(kept) == 600
    assert sum(i >= 6 for i in kept) > 0.75 * len(kept)  # half the candidates (uniform: 0.5), most kept children
    assert sample_inverse_density(candidates, reference, 6, np.random.default_rng(1)) == \
        sample_inverse_density(candidates, reference, 6, np.random.default_rng(1))
    same = [math.log(500)] * 4  # nothing spreads: uniform, still k distinct indices
    assert len(set(sample_inverse_density(same, same, 3, np.random.default_rng(0)))) == 3


def test_a_prefiltered_run_trains_the_children_it_needs_deterministically() -> None:
    def run(*overrides: str) -> dict[int, Individual]:
        cfg = load_config(None, ["evolution.population_size=6", "evolution.children=4", "evolution.generations=3",
                                 "evolution.init.strategy=random", "evolution.seed=2", *overrides])
        return Evolution(cfg, ToyTask(), SerialBackend(), GROW_OR_SHRINK).run().individuals

    plain, filtered = run(), run("evolution.prefilter.factor=5")
    assert sorted(filtered) == list(range(6 + 3 * 4))  # 4 children a generation trained, ids without gaps
    assert all(len([i for i in filtered.values() if i.generation == g]) == 4 for g in (1, 2, 3))
    again = run("evolution.prefilter.factor=5")
    assert [(i.parents, i.operators, i.objectives) for i in again.values()] == \
        [(i.parents, i.operators, i.objectives) for i in filtered.values()]
    assert [i.operators for i in plain.values()] != [i.operators for i in filtered.values()]


def test_only_children_of_non_preserving_operators_distil_from_their_parent() -> None:
    evolution, task = iris("plasticity.distill.alpha=0.5")
    result = evolution.run()
    children = [job for job in task.jobs if result.individuals[job.individual_id].generation > 0]
    assert children
    for job in children:
        child = result.individuals[job.individual_id]
        if child.operators[0].startswith("prune_neurons"):
            assert job.teacher is not None and job.teacher.num_params() > job.genome.num_params()
            parent = result.individuals[child.parents[0]]
            assert job.teacher.layers == parent.genome.layers
            assert child.evaluation is not None and child.evaluation.metrics["distilled_steps"] == 4
        else:
            assert job.teacher is None and "distilled_steps" not in child.evaluation.metrics  # type: ignore[union-attr]
    assert any(job.teacher is not None for job in children) and any(job.teacher is None for job in children)
    evolution, task = iris()  # off by default: no job carries a teacher
    evolution.run()
    assert task.jobs and all(job.teacher is None for job in task.jobs)


def test_distillation_needs_a_supervised_lamarckian_run() -> None:
    with pytest.raises(ConfigError, match="plasticity.distill: needs a supervised task, not 'xor'"):
        load_config(None, ["task.kind=xor", "plasticity.distill.alpha=0.5"])
    with pytest.raises(ConfigError, match="needs evolution.lamarckian: true"):
        load_config(None, ["evolution.lamarckian=false", "plasticity.distill.alpha=0.5"])


def test_a_resumed_run_with_prefilter_and_distillation_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    switches = ("evolution.prefilter.factor=3", "plasticity.distill.alpha=0.5", "plasticity.distill.steps=2")
    straight = iris(*switches, "evolution.generations=3")[0].run()
    store = RunStore.create(tmp_path / "run", "")
    iris(*switches, "evolution.generations=1", store=store)[0].run()
    resumed = iris(*switches, "evolution.generations=3", store=store)[0]
    resumed.restore(store.latest_checkpoint(), store)
    result = resumed.run()
    assert any("distilled_steps" in ind.evaluation.metrics for ind in result.individuals.values() if ind.evaluation)
    assert {i: (ind.operators, ind.objectives) for i, ind in result.individuals.items()} == {
        i: (ind.operators, ind.objectives) for i, ind in straight.individuals.items()}
    best = store.load_genome(result.best.id)
    assert all(torch.equal(best.weights[k], straight.best.genome.weights[k]) for k in best.weights)
