"""The generational loop on a fast toy task: counts, failures, inheritance, stopping, resume, determinism."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from evo.backends import SerialBackend
from evo.config import load_config
from evo.errors import ConfigError, NotApplicable
from evo.evolution import Evolution, build_operators, derive_seed
from evo.genome import Genome
from evo.operators import Operator
from evo.operators.registry import make_operator
from evo.selection import non_dominated_fronts, scores
from evo.store import RunStore
from evo.testing import RaisingTask, ToyTask

MUTATE = [(make_operator({"op": "mutate_weights", "sigma": 0.05}), 1.0)]


def evolution(*overrides: str, task: ToyTask | None = None, store: RunStore | None = None, operators=MUTATE) -> Evolution:
    cfg = load_config(None, ["evolution.population_size=4", "evolution.generations=3", "evolution.seed=3",
                             "evolution.init.hidden=[4]", *overrides])
    return Evolution(cfg, task or ToyTask(), SerialBackend(), operators, store)


def test_every_individual_is_evaluated_exactly_once() -> None:
    result = evolution().run()
    assert sorted(result.individuals) == list(range(16))
    assert [r.generation for r in result.history] == [0, 1, 2, 3]
    assert all(len(r.evaluated) == 4 for r in result.history)
    assert all(ind.evaluation is not None for ind in result.individuals.values())
    children = [ind for ind in result.individuals.values() if ind.generation > 0]
    assert all(len(c.parents) == 1 and c.parents[0] < c.id and c.operators for c in children)


def test_zero_generations_evaluate_the_initial_population_only() -> None:
    result = evolution("evolution.generations=0").run()
    assert sorted(result.individuals) == list(range(4))
    assert [r.generation for r in result.history] == [0]


def test_fitness_improves_under_selection() -> None:
    result = evolution("evolution.generations=8").run()
    first, last = result.history[0].best_objectives["fitness"], result.history[-1].best_objectives["fitness"]
    assert last > first


def test_failed_evaluations_get_the_worst_fitness_and_the_run_goes_on() -> None:
    failing = {derive_seed(3, i) for i in (1, 5, 6)}
    result = evolution(task=RaisingTask(fail_seeds=failing)).run()
    failed = {i for i, ind in result.individuals.items() if ind.evaluation is not None and not ind.evaluation.ok}
    assert failed == {1, 5, 6}
    assert result.individuals[5].objectives["fitness"] == -math.inf
    assert "toy failure" in (result.individuals[5].evaluation.error or "")
    assert result.best.id not in failed
    assert result.history[1].failures == 2


def test_same_seed_same_run_other_seed_other_run() -> None:
    def objectives(run):
        return {i: ind.objectives for i, ind in run.individuals.items()}

    assert objectives(evolution().run()) == objectives(evolution().run())
    assert objectives(evolution().run()) != objectives(evolution("evolution.seed=4").run())


def test_lamarckian_children_inherit_trained_weights_darwinian_do_not() -> None:
    ops = [(make_operator({"op": "set_dropout", "p": 0.1}), 1.0)]  # changes no weight
    lamarck = evolution("evolution.generations=1", operators=ops).run()
    darwin = evolution("evolution.generations=1", "evolution.lamarckian=false", operators=ops).run()
    for run, inherits in ((lamarck, True), (darwin, False)):
        child = next(ind for ind in run.individuals.values() if ind.generation == 1)
        parent = run.individuals[child.parents[0]]
        # ToyTask nudges every weight by ~0.01, so an inherited genome stays within a few nudges of its parent.
        diff = max(float((child.genome.weights[k] - parent.genome.weights[k]).abs().max()) for k in parent.genome.weights)
        assert (diff < 0.1) is inherits, diff


def test_stops_at_target_fitness_and_budget() -> None:
    assert len(evolution("evolution.generations=50", "evolution.target_fitness=-1e9").run().history) == 1
    assert len(evolution("evolution.generations=50", "evolution.max_steps=1").run().history) == 1


def test_two_objectives_select_by_nsga2_and_report_a_pareto_front() -> None:
    ops = [(make_operator({"op": "widen", "k": 1, "init": "zero"}), 0.5),
           (make_operator({"op": "prune_neurons", "amount": 1}), 0.5)]
    result = evolution("evolution.generations=4", operators=ops).run()
    assert result.pareto
    points = [scores(ind, ToyTask.objectives) for ind in result.pareto]
    assert non_dominated_fronts(points) == [list(range(len(points)))]
    assert "pareto" in result.history[-1].extra


def test_restore_from_a_checkpoint_continues_identically(tmp_path: Path) -> None:
    straight = evolution("evolution.generations=4").run()
    store = RunStore.create(tmp_path / "run", "")
    evolution("evolution.generations=2", store=store).run()
    resumed = evolution("evolution.generations=4", store=store)
    resumed.restore(store.latest_checkpoint(), store)
    result = resumed.run()
    assert {i: ind.objectives for i, ind in result.individuals.items()} == {
        i: ind.objectives for i, ind in straight.individuals.items()}
    best = store.load_genome(result.best.id)
    assert all(torch.equal(best.weights[k], straight.best.genome.weights[k]) for k in best.weights)


def test_default_operators_exist_for_every_task_kind() -> None:
    for kind in ("supervised", "control", "xor"):
        ops = build_operators(load_config(None, [f"task.kind={kind}"]))
        assert ops and all(p > 0 for _, p in ops)


def test_an_operator_that_cannot_apply_is_redrawn() -> None:
    ops = [(make_operator({"op": "remove_layer"}), 1.0), (make_operator({"op": "mutate_weights"}), 1e-9)]
    result = evolution("evolution.generations=1", "evolution.init.hidden=[4]", operators=ops).run()
    children = [ind for ind in result.individuals.values() if ind.generation == 1]
    assert all(c.operators == ("mutate_weights(sigma=0.1, rate=1.0)",) or "remove_layer" not in c.operators[0]
               for c in children)


class _Raising(Operator):
    """An operator that always raises ``error``: NotApplicable (does not apply) or anything else (a bug)."""

    def __init__(self, error: Exception) -> None:
        super().__init__("raising")
        self.error = error

    def apply(self, genome: Genome, rng, data=None) -> Genome:
        raise self.error


def test_not_applicable_is_redrawn_but_any_other_operator_error_surfaces() -> None:
    ops = [(_Raising(NotApplicable("raising: nothing to change")), 1.0), (make_operator({"op": "mutate_weights"}), 1e-9)]
    result = evolution("evolution.generations=1", operators=ops).run()
    children = [ind for ind in result.individuals.values() if ind.generation == 1]
    assert children and all(op.startswith("mutate_weights") for c in children for op in c.operators)
    bug = [(_Raising(ValueError("a bug in the operator")), 1.0), (make_operator({"op": "mutate_weights"}), 1e-9)]
    with pytest.raises(ValueError, match="a bug in the operator") as err:
        evolution("evolution.generations=1", operators=bug).run()
    assert not isinstance(err.value, NotApplicable)


@pytest.mark.ray
@pytest.mark.parametrize("population", [4, 16])  # 16 on 2 workers: auto batches of 2 evaluations per Ray task
def test_ray_and_serial_give_the_same_run(population: int) -> None:
    from evo.backends.ray import RayBackend

    cfg = load_config(None, [f"evolution.population_size={population}", "evolution.generations=2",
                             "evolution.init.hidden=[4]"])
    sleeps = {derive_seed(0, i): 0.02 * (i % 3) for i in range(3 * population)}
    serial = Evolution(cfg, ToyTask(sleep_s=sleeps), SerialBackend(), MUTATE).run()
    backend = RayBackend(workers=2)
    try:
        ray_run = Evolution(cfg, ToyTask(sleep_s=sleeps), backend, MUTATE).run()
    finally:
        backend.close()
    assert {i: ind.objectives for i, ind in ray_run.individuals.items()} == {
        i: ind.objectives for i, ind in serial.individuals.items()}


def test_checkpoints_count_records_instead_of_holding_them(tmp_path: Path) -> None:
    """Writing a checkpoint costs the same in every generation: each record goes to the log once."""
    store = RunStore.create(tmp_path / "run", "")
    result = evolution("evolution.generations=3", store=store).run()
    state = store.latest_checkpoint()
    assert state is not None and "individuals" not in state
    records = store.records(state)
    assert sorted(r["id"] for r in records) == sorted(result.individuals)
    assert [r["id"] for r in records] == [i for record in result.history for i in record.evaluated]


def test_restore_after_a_crash_between_log_and_checkpoint(tmp_path: Path) -> None:
    """A generation whose records reached the log but whose checkpoint did not is redone, recorded once."""
    straight = evolution("evolution.generations=3").run()
    store = RunStore.create(tmp_path / "run", "")
    evolution("evolution.generations=3", store=store).run()
    (tmp_path / "run" / "checkpoints" / "gen_0003.json").unlink()  # as if killed before it was written
    with open(tmp_path / "run" / "individuals.jsonl", "a") as f:
        f.write('{"id": 99, "par')
    resumed = evolution("evolution.generations=3", store=store)
    resumed.restore(store.latest_checkpoint(), store)
    result = resumed.run()
    assert {i: ind.objectives for i, ind in result.individuals.items()} == {
        i: ind.objectives for i, ind in straight.individuals.items()}
    records = store.records(store.latest_checkpoint())
    assert len(records) == len({r["id"] for r in records}) == len(straight.individuals)


def test_conv_init_reads_a_flat_input_as_a_signal() -> None:
    result = evolution("evolution.generations=0", "evolution.init.channels=[3]", "evolution.init.pool=2",
                       "evolution.init.norm=batch", "evolution.init.gap=true", task=ToyTask(inputs=12)).run()
    genome = result.best.genome
    assert genome.input_shape == (12,) and str(genome) == "12→conv3:3→bn→relu→pool2→gap→4→bn→relu→2"
    with pytest.raises(ConfigError, match=r"evolution.init: .*input \(12,\).*below 1×1"):
        evolution("evolution.init.channels=[2, 2, 2, 2]", task=ToyTask(inputs=12)).run()


def test_the_mnist1d_config_evolves_conv1d_networks(tmp_path: Path) -> None:
    pytest.importorskip("mnist1d")
    from evo.runner import run_evolution

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs" / "mnist1d_cnn.yaml", [
        "backend.kind=serial", "evolution.generations=2", "evolution.population_size=2", "evolution.mutations=3",
        "task.max_train_samples=200", "plasticity.epochs=1"])
    result = run_evolution(cfg, run_dir=tmp_path / "run")
    assert str(result.best.genome).startswith("1×40→conv5:") and result.best.genome.gap
    assert len(result.individuals) == 6 and all(i.evaluation and i.evaluation.ok for i in result.individuals.values())
    assert result.test and all(0.0 <= t["test_accuracy"] <= 1.0 for t in result.test.values())


def test_an_individual_prints_in_one_line() -> None:
    from evo.genome import Genome
    from evo.records import Individual
    from evo.tasks import Evaluation

    genome = Genome.mlp((4,), hidden=(8,), output_size=2)
    ind = Individual(3, genome, (1,), ("widen",), 2, Evaluation(3, {"acc": 0.91234}, genome))
    assert repr(ind) == "Individual(#3, gen 2, 4→8→relu→2, acc=0.9123)" and str(ind) == repr(ind)
    assert repr(Individual(4, genome)) == "Individual(#4, gen 0, 4→8→relu→2, not evaluated)"
