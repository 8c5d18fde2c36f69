"""Population-batched evaluation: a batch scores every genome exactly as it scores alone."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from evo.backends.serial import SerialBackend, run_job, run_jobs
from evo.genome import Genome, LayerKind, LayerSpec
from evo.operators import make_operator
from evo.stacked import StackedNet, to_vector, with_vector
from evo.tasks import Budget, ControlTask, Evaluation, Job, Task, XorTask
from evo.testing import ToyTask


def population(input_size: int, outputs: int, n: int) -> list[Genome]:
    """``n`` genomes in three architectures (a plain MLP, a widened one, one with a skip), shuffled."""
    widen, skip = make_operator({"op": "widen", "k": 2, "init": "random"}), make_operator({"op": "add_skip"})
    rng = np.random.default_rng(0)
    genomes = []
    for i in range(n):
        g = Genome.random((input_size,), [LayerSpec(LayerKind.LINEAR, 4, "tanh"), LayerSpec(LayerKind.LINEAR, 4, "relu"),
                                          LayerSpec(LayerKind.LINEAR, outputs, "identity")], seed=i)
        genomes.append([g, widen.apply(g, rng), skip.apply(g, rng)][i % 3])
    return genomes


def comparable(e: Evaluation) -> tuple[object, ...]:
    """Everything an evaluation says except wall time."""
    weights = None if e.genome is None else {k: v.tolist() for k, v in e.genome.weights.items()}
    return e.objectives, e.metrics, e.error, dataclasses.replace(e.budget_used, seconds=0.0), weights


def one_by_one(task: Task, jobs: list[Job]) -> list[tuple[object, ...]]:
    return [comparable(task.evaluate(j.genome, j.budget, "cpu", j.seed)) for j in jobs]


def test_cartpole_batch_equals_one_by_one_exactly() -> None:
    task = ControlTask("CartPole-v1", episodes=3, max_episode_steps=200)
    genomes = population(4, 2, 9)
    broken = genomes[4].with_weights({k: torch.full_like(v, math.nan) for k, v in genomes[4].weights.items()})
    jobs = [Job(i, g, Budget(), seed=100 + i) for i, g in enumerate([*genomes[:4], broken, *genomes[5:]])]
    jobs.append(Job(99, genomes[0], Budget(episodes=2), seed=7))  # another episode count: its own group
    batched = [comparable(e) for e in task.evaluate_batch(jobs, "cpu")]
    assert batched == one_by_one(task, jobs)
    returns = [b[0]["mean_return"] for b in batched]
    assert len(set(returns)) > 3 and returns[4] == -math.inf  # real, different scores; the broken one failed alone


def test_xor_batch_equals_one_by_one_exactly() -> None:
    task = XorTask()
    jobs = [Job(i, g, Budget(), seed=0) for i, g in enumerate(population(2, 1, 12))]
    batched = [comparable(e) for e in task.evaluate_batch(jobs, "cpu")]
    assert batched == one_by_one(task, jobs) and len({b[0]["fitness"] for b in batched}) == len(jobs)


def test_stacked_net_computes_what_the_module_does() -> None:
    genomes = [g for g in population(5, 3, 3)]
    x = np.random.default_rng(1).standard_normal((7, 5)).astype(np.float32)
    for g in genomes:
        expected = g.to_module().eval()(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(StackedNet.of([g])(x[None])[0], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one architecture"):
        StackedNet.of(genomes)


def test_a_genome_the_stack_cannot_run_fails_alone() -> None:
    genomes = population(4, 2, 3)
    task = ControlTask("CartPole-v1", episodes=2, max_episode_steps=50)
    add_norm = make_operator({"op": "add_norm", "layer": 0, "kind": "batch"})
    normed = add_norm.apply(genomes[0], np.random.default_rng(0), data=task.calibration_batch(64, 0))
    jobs = [Job(i, g, Budget(), seed=i) for i, g in enumerate([normed, *genomes[1:]])]
    evaluations = run_jobs(task, jobs)
    assert not evaluations[0].ok and "without norm layers" in (evaluations[0].error or "")
    assert all(e.ok for e in evaluations[1:])


def test_weight_vectors_round_trip() -> None:
    g = population(3, 2, 3)[2]
    v = to_vector(g)
    assert v.shape == (g.num_params(),)
    assert all(torch.equal(a, b) for a, b in zip(with_vector(g, v).weights.values(), g.weights.values()))
    np.testing.assert_array_equal(StackedNet.from_vectors(g, np.stack([v, v]))(np.ones((2, 1, 3), np.float32))[1],
                                  StackedNet.of([g])(np.ones((1, 1, 3), np.float32))[0])


def test_serial_backend_hands_a_batching_task_all_jobs_at_once() -> None:
    task = XorTask()
    calls: list[int] = []
    original = task.evaluate_batch
    task.evaluate_batch = lambda jobs, device: calls.append(len(jobs)) or original(jobs, device)  # type: ignore[method-assign]
    jobs = [Job(10 + i, g, Budget(), seed=i) for i, g in enumerate(population(2, 1, 6))]
    evaluations = list(SerialBackend().map(task, jobs))
    assert calls == [6]
    assert [e.individual_id for e in evaluations] == [j.individual_id for j in jobs]
    assert [comparable(e) for e in evaluations] == [comparable(run_job(task, j)) for j in jobs]


def test_a_failing_batch_is_retried_job_by_job() -> None:
    class Fragile(XorTask):
        def evaluate_batch(self, jobs, device):  # type: ignore[no-untyped-def]
            if len(jobs) > 1:
                raise RuntimeError("batch broke")
            return super().evaluate_batch(jobs, device)

    jobs = [Job(i, g, Budget(), seed=0) for i, g in enumerate(population(2, 1, 3))]
    evaluations = run_jobs(Fragile(), jobs)
    assert [e.individual_id for e in evaluations] == [0, 1, 2] and all(e.ok for e in evaluations)


def test_tasks_without_a_batch_method_are_evaluated_one_by_one() -> None:
    task = ToyTask()
    jobs = [Job(i, Genome.mlp((4,), (3,), 2, seed=i), Budget(steps=2), seed=i) for i in range(3)]
    assert [comparable(e) for e in run_jobs(task, jobs)] == [comparable(run_job(task, j)) for j in jobs]


def test_normalized_observations_lie_in_the_unit_box() -> None:
    task = ControlTask("MountainCarContinuous-v0", episodes=1, normalize=True)
    x, _ = task.calibration_batch(200, seed=0) or (None, None)
    raw, _ = ControlTask("MountainCarContinuous-v0", episodes=1).calibration_batch(200, seed=0) or (None, None)
    assert x is not None and raw is not None and float(x.abs().max()) <= 1.0
    assert float(raw[:, 1].abs().max()) < 0.08 < float(x[:, 1].abs().max())  # velocity (±0.07) spread out
    prep = task.preprocessing()  # exports put the scaling in front of the network: they take raw observations
    assert prep.mean is not None and prep.std is not None
    torch.testing.assert_close((raw - torch.tensor(prep.mean)) / torch.tensor(prep.std), x)
    assert ControlTask("CartPole-v1").preprocessing().mean is None
