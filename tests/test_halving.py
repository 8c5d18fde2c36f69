"""Successive halving inside a generation: rung budgets, promotion of the best, continued training, resume."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import torch

from evo.backends import SerialBackend
from evo.config import ConfigError, HalvingConfig, load_config
from evo.evolution import Evolution
from evo.operators.registry import make_operator
from evo.records import Individual, Reporter
from evo.store import RunStore
from evo.task_kinds import build_task
from evo.tasks import Evaluation, Job, Task
from evo.testing import ToyTask

MUTATE = [(make_operator({"op": "mutate_weights", "sigma": 0.05}), 1.0)]
HALVING = ["evolution.halving.rungs=2", "evolution.halving.eta=2", "evolution.eval_steps=4"]


class RecordingBackend(SerialBackend):
    """Serial, remembering each map call's jobs and evaluations; raises in map call ``crash_at`` (a kill)."""

    def __init__(self, crash_at: int | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[list[Job], list[Evaluation]]] = []
        self.crash_at = crash_at

    def map(self, task: Task, jobs: Iterable[Job]) -> Iterator[Evaluation]:
        if len(self.calls) == self.crash_at:
            raise KeyboardInterrupt
        call: tuple[list[Job], list[Evaluation]] = (list(jobs), [])
        self.calls.append(call)
        for evaluation in super().map(task, call[0]):
            call[1].append(evaluation)
            yield evaluation


class Told(Reporter):
    def __init__(self) -> None:
        self.ids: list[int] = []

    def on_evaluated(self, individual: Individual) -> None:
        self.ids.append(individual.id)


def evolution(*overrides: str, backend: SerialBackend | None = None, store: RunStore | None = None,
              reporters: tuple[Reporter, ...] = ()) -> Evolution:
    cfg = load_config(None, ["evolution.population_size=8", "evolution.generations=1", "evolution.seed=3",
                             "evolution.init.hidden=[4]", *overrides])
    return Evolution(cfg, ToyTask(), backend or SerialBackend(), MUTATE, store, reporters)


def test_rung_steps_end_at_eval_steps() -> None:
    assert HalvingConfig(rungs=3, eta=3).steps(90) == [10, 30, 90]
    assert HalvingConfig(rungs=2, eta=2).steps(4) == [2, 4]
    assert HalvingConfig().steps(7) == [7]


def test_halving_needs_enough_steps_and_a_trained_task() -> None:
    with pytest.raises(ConfigError, match="need eval_steps >= 9"):
        load_config(None, ["evolution.halving.rungs=3", "evolution.eval_steps=8"])
    load_config(None, ["evolution.halving.rungs=3"])  # eval_steps 0: the task's default, known at run time
    with pytest.raises(ConfigError, match="needs a supervised or custom task, not 'xor'"):
        load_config(None, [*HALVING, "task.kind=xor"])


def test_the_best_half_trains_on_and_every_child_records_its_rung_and_budget() -> None:
    backend, told = RecordingBackend(), Told()
    result = evolution(*HALVING, backend=backend, reporters=(told,)).run()
    assert len(backend.calls) == 4  # two rungs per generation, each one map
    (first, first_results), (second, _) = backend.calls[2], backend.calls[3]
    children = [ind for ind in result.individuals.values() if ind.generation == 1]
    assert len(children) == len(first) == 8 and len(second) == 4
    assert all(job.budget.steps == 2 for job in first) and all(job.budget.steps == 2 for job in second)
    by_fitness = sorted(first_results, key=lambda e: e.objectives["fitness"], reverse=True)
    promoted = {e.individual_id for e in by_fitness[:4]}
    assert {job.individual_id for job in second} == promoted
    trained = {e.individual_id: e.genome for e in first_results}
    for job in second:  # Lamarckian: rung 1 continues from the genome rung 0 returned
        assert all(torch.equal(job.genome.weights[k], trained[job.individual_id].weights[k]) for k in job.genome.weights)
    for child in children:
        assert child.evaluation is not None
        rung = 1 if child.id in promoted else 0
        assert child.evaluation.metrics["rung"] == rung
        assert child.evaluation.budget_used.steps == (4 if rung else 2)
    assert sorted(told.ids) == sorted(result.individuals)  # each individual reported once, when final
    assert result.history[1].budget_used.steps - result.history[0].budget_used.steps == 4 * 2 + 4 * 4


def test_halving_off_by_default_runs_one_job_per_child() -> None:
    backend = RecordingBackend()
    result = evolution("evolution.eval_steps=4", backend=backend).run()
    assert [len(jobs) for jobs, _ in backend.calls] == [8, 8]
    assert all("rung" not in ind.evaluation.metrics for ind in result.individuals.values() if ind.evaluation)


def test_a_run_killed_between_rungs_resumes_identically(tmp_path: Path) -> None:
    straight = evolution(*HALVING, "evolution.generations=3").run()
    store = RunStore.create(tmp_path / "run", "")
    with pytest.raises(KeyboardInterrupt):  # killed after generation 1's first rung
        evolution(*HALVING, "evolution.generations=3", backend=RecordingBackend(crash_at=3), store=store).run()
    resumed = evolution(*HALVING, "evolution.generations=3", store=store)
    resumed.restore(store.latest_checkpoint(), store)
    result = resumed.run()

    def outcome(ind: Individual) -> tuple[object, ...]:
        assert ind.evaluation is not None
        return ind.objectives, ind.evaluation.budget_used.steps, ind.evaluation.metrics["rung"]

    assert {i: outcome(ind) for i, ind in result.individuals.items()} == {
        i: outcome(ind) for i, ind in straight.individuals.items()}


def test_supervised_children_stop_with_their_rungs_samples() -> None:
    cfg = load_config(None, ["task.dataset=iris", "evolution.population_size=4", "evolution.generations=0",
                             "evolution.init.hidden=[8]", "plasticity.batch_size=16", *HALVING])
    result = Evolution(cfg, build_task(cfg.task, cfg.plasticity), SerialBackend(), MUTATE).run()
    samples = sorted(ind.evaluation.budget_used.samples for ind in result.individuals.values() if ind.evaluation)
    assert samples == [32, 32, 64, 64]


def test_at_the_default_budget_the_rungs_split_the_tasks_epochs() -> None:
    """eval_steps 0: the rungs split plasticity.epochs passes over the training split at the batch size."""
    cfg = load_config(None, ["task.dataset=iris", "evolution.population_size=4", "evolution.generations=0",
                             "evolution.init.hidden=[8]", "plasticity.batch_size=16", "plasticity.epochs=2",
                             "evolution.halving.rungs=2", "evolution.halving.eta=4"])
    task = build_task(cfg.task, cfg.plasticity)
    n = len(task.data.x_train)
    backend = RecordingBackend()
    result = Evolution(cfg, task, backend, MUTATE).run()
    total = 2 * -(-n // 16)  # two epochs of ceil(n / 16) batches
    first = round(total / 4)
    assert [[job.budget.steps for job in jobs] for jobs, _ in backend.calls] == [[first] * 4, [total - first]]
    steps = sorted(ind.evaluation.budget_used.steps for ind in result.individuals.values() if ind.evaluation)
    assert steps == [first] * 3 + [total]


def test_a_default_budget_too_short_to_halve_is_a_config_error() -> None:
    cfg = load_config(None, ["task.dataset=iris", "evolution.population_size=2", "evolution.generations=0",
                             "plasticity.batch_size=128", "plasticity.epochs=1", "evolution.halving.rungs=3"])
    with pytest.raises(ConfigError, match="need at least 9 training steps per evaluation; the task's default is 1"):
        Evolution(cfg, build_task(cfg.task, cfg.plasticity), SerialBackend(), MUTATE).run()
    custom = load_config(None, ["evolution.population_size=2", "evolution.generations=0", "evolution.halving.rungs=2"])
    with pytest.raises(ConfigError, match="ToyTask has no default step count to halve: set evolution.eval_steps"):
        Evolution(custom, ToyTask(), SerialBackend(), MUTATE).run()


def test_the_default_step_count_follows_a_batch_size_gene() -> None:
    cfg = load_config(None, ["task.dataset=iris", "plasticity.batch_size=16", "plasticity.epochs=3"])
    task = build_task(cfg.task, cfg.plasticity)
    genome = Evolution(cfg, task, SerialBackend(), MUTATE)._initial_genome(0)
    n = len(task.data.x_train)
    assert task.default_steps(genome) == 3 * -(-n // 16)
    assert task.default_steps(genome.replace(hparams={"batch_size": 64, "epochs": 1})) == -(-n // 64)


def test_show_says_how_many_children_trained_in_each_rung(tmp_path: Path) -> None:
    """`evo show` of a halving run: per generation, the children that trained in each rung (8, then the best 4)."""
    from typer.testing import CliRunner

    from evo.cli import app
    from evo.runner import run_evolution

    cfg = load_config(None, ["task.dataset=iris", "evolution.population_size=8", "evolution.generations=1",
                             "evolution.init.hidden=[4]", "backend.kind=serial", *HALVING])
    run_evolution(cfg, run_dir=tmp_path / "run")
    out = CliRunner().invoke(app, ["show", str(tmp_path / "run")], env={"COLUMNS": "300"}).stdout
    generations = out.split("best individuals")[0].splitlines()
    rows = [line.split("│") for line in generations if line.startswith(("│ 0 ", "│ 1 "))]
    assert "trained per rung" in out and [row[3].strip() for row in rows] == ["8/4", "8/4"]
    plain = load_config(None, ["task.dataset=iris", "evolution.population_size=2", "evolution.generations=0",
                               "evolution.eval_steps=2", "backend.kind=serial"])
    run_evolution(plain, run_dir=tmp_path / "plain")
    assert "trained per rung" not in CliRunner().invoke(app, ["show", str(tmp_path / "plain")],
                                                        env={"COLUMNS": "300"}).stdout
