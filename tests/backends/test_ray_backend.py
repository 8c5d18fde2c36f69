"""The Ray backend on a local instance: the backend contract, determinism, timeouts, bounds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import ray
import torch

from evo.backends import RayBackend, SerialBackend
from evo.backends.ray import _Attempt, _failed
from evo.genome import Genome
from evo.plasticity import PlasticityConfig
from evo.tasks import Budget, ControlTask, Job, XorTask
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.es import STD, WeightSearch
from evo.tasks.supervised import SupervisedTask
from evo.testing import BackendContract, CrashOnceTask, HangingTask, ToyTask, assert_same_evaluations, make_jobs

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_backend() -> Iterator[RayBackend]:
    """One local Ray instance (2 CPUs) for the whole module, started lazily by the backend itself."""
    if ray.is_initialized():
        ray.shutdown()
    backend = RayBackend(workers=2, num_cpus=1)
    yield backend
    backend.close()
    assert not ray.is_initialized()


class TestRayContract(BackendContract):
    @pytest.fixture
    def backend(self, ray_backend: RayBackend) -> RayBackend:
        return ray_backend


def test_serial_and_ray_give_identical_evaluations(ray_backend: RayBackend) -> None:
    jobs = make_jobs(8, seed=7)
    task = ToyTask(sleep_s={j.seed: 0.02 * (i % 3) for i, j in enumerate(jobs)})
    serial = {e.individual_id: e for e in SerialBackend().map(task, jobs)}
    parallel = {e.individual_id: e for e in ray_backend.map(task, jobs)}
    assert_same_evaluations(parallel, serial)


def test_workers_use_their_cpu_share_of_threads(ray_backend: RayBackend) -> None:
    evaluations = list(ray_backend.map(ToyTask(), make_jobs(2, seed=8)))
    assert {e.metrics["threads"] for e in evaluations} == {1.0}
    assert {e.metrics["cuda"] for e in evaluations} == {0.0}
    assert len(ray_backend.stats().nodes) == 1


def test_hanging_evaluation_times_out_and_the_map_goes_on(ray_backend: RayBackend) -> None:
    assert ray.is_initialized()
    backend = RayBackend(timeout_s=1.5)  # joins the running instance
    jobs = make_jobs(4, seed=9)
    got = {e.individual_id: e for e in backend.map(HangingTask(hang_seeds={jobs[0].seed}, sleep_s=0.1), jobs)}
    assert set(got) == {j.individual_id for j in jobs}
    assert got[jobs[0].individual_id].error == "timed out after 1.5 s"
    assert got[jobs[0].individual_id].budget_used.seconds >= 1.5  # the time it held a worker counts
    assert all(got[j.individual_id].ok for j in jobs[1:])
    assert (backend.stats().timed_out, backend.stats().failed) == (1, 1)
    backend.close()
    assert ray.is_initialized()  # it did not start Ray, so it leaves it running


def test_never_more_than_max_in_flight(ray_backend: RayBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = RayBackend(max_in_flight=3)
    puts: list[object] = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value: puts.append(value) or real_put(value))
    pulled = 0

    def jobs() -> Iterator[object]:
        nonlocal pulled
        for job in make_jobs(9, seed=10):
            pulled += 1
            yield job

    outstanding, live = [], []
    for done, _ in enumerate(backend.map(ToyTask(sleep_s=0.05), jobs()), start=1):  # type: ignore[arg-type]
        outstanding.append(pulled - done + 1)  # submitted but not yielded, counting the one just yielded
        live.append(backend.stats())
    assert max(outstanding) == 3 and len(outstanding) == 9
    assert max(s.in_flight for s in live) in (1, 2)  # busy workers: at most the 2 CPUs
    assert max(s.in_flight + s.queued for s in live) <= 3
    assert puts == []  # a small task travels inside each batch's message, not through the object store


def test_a_large_task_goes_to_the_object_store_once(ray_backend: RayBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    puts: list[object] = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value: puts.append(value) or real_put(value))
    task = ToyTask(sleep_s=dict.fromkeys(range(30_000), 0.0))  # pickles to more than Ray's 100 KB inline limit
    jobs = make_jobs(6, seed=13)
    evaluations = {e.individual_id: e for e in RayBackend(evals_per_task=2).map(task, jobs)}
    assert puts == [task]
    assert_same_evaluations(evaluations, {e.individual_id: e for e in SerialBackend().map(task, jobs)})


def test_worker_lost_beyond_the_retries_is_a_failed_evaluation(ray_backend: RayBackend, tmp_path: Path) -> None:
    jobs = make_jobs(1, seed=11)
    [lost] = RayBackend(max_retries=0).map(CrashOnceTask(tmp_path), jobs)
    assert lost.error == "worker lost (WorkerCrashedError) after 1 attempt"
    assert lost.individual_id == jobs[0].individual_id and lost.genome is None
    assert lost.budget_used.seconds > 0  # the time it held a worker counts, though its steps are unknown
    [retried] = RayBackend(max_retries=0).map(CrashOnceTask(tmp_path), jobs)  # the marker says: not a first attempt
    assert retried.ok


def test_a_batch_is_charged_the_time_all_its_attempts_held_workers() -> None:
    jobs = tuple(make_jobs(2, seed=16))
    attempt = _Attempt(jobs, refs=(), tries=1, spent=3.0, started=time.monotonic() - 1.0)  # lost once after 3 s
    assert 4.0 <= attempt.held_s() < 4.5
    assert [e.budget_used.seconds for e in _failed(ToyTask(), attempt, "lost")] == pytest.approx([2.0, 2.0], abs=0.2)
    assert _Attempt(jobs, refs=()).held_s() == 0.0  # never got a worker


def spy_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch RayBackend submits, in order."""
    sizes: list[int] = []
    real = RayBackend._submit
    monkeypatch.setattr(RayBackend, "_submit",
                        lambda self, task, jobs, *rest: sizes.append(len(jobs)) or real(self, task, jobs, *rest))
    return sizes


def test_batched_evaluations_equal_serial_ones(ray_backend: RayBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = spy_batches(monkeypatch)
    jobs = make_jobs(7, seed=12)
    task = ToyTask(sleep_s={j.seed: 0.01 * (i % 3) for i, j in enumerate(jobs)})
    backend = RayBackend(evals_per_task=3)
    batched = {e.individual_id: e for e in backend.map(task, jobs)}
    assert_same_evaluations(batched, {e.individual_id: e for e in SerialBackend().map(task, jobs)})
    assert sizes == [3, 3, 1]  # 7 jobs: two full batches and the rest
    assert backend.stats().completed == 7
    backend.close()


def test_a_task_that_evaluates_batches_gets_them_in_the_worker(ray_backend: RayBackend,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """XorTask.evaluate_batch runs each Ray task's jobs as one stack; every evaluation equals the job's alone."""
    sizes = spy_batches(monkeypatch)
    task = XorTask()
    jobs = [Job(i, Genome.mlp((2,), (3,), 1, seed=i), Budget(), seed=i) for i in range(7)]
    backend = RayBackend(evals_per_task=4)
    got = {e.individual_id: e for e in backend.map(task, jobs)}
    backend.close()
    assert sizes == [4, 3]
    for job in jobs:
        alone = task.evaluate(job.genome, job.budget, "cpu", job.seed)
        assert got[job.individual_id].objectives == alone.objectives and got[job.individual_id].metrics == alone.metrics


def test_auto_batches_a_sized_map_by_its_slots(ray_backend: RayBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = spy_batches(monkeypatch)
    jobs = make_jobs(19, seed=15)
    task = ToyTask(sleep_s=0.01)
    got = {e.individual_id: e for e in ray_backend.map(task, jobs)}  # the default: evals_per_task="auto"
    assert sizes == [2] * 9 + [1]  # 19 jobs // (4 batches × 2 slots)
    assert_same_evaluations(got, {e.individual_id: e for e in SerialBackend().map(task, jobs)})
    sizes.clear()
    assert len(list(ray_backend.map(task, iter(jobs)))) == 19
    assert sizes == [1] * 19  # a lazy iterator is not pulled ahead to learn its size


def test_auto_batch_size() -> None:
    auto = RayBackend()
    assert [auto.batch_size(jobs, slots) for jobs, slots in [(16, 2), (100, 8), (7, 2), (0, 2)]] == [2, 3, 1, 1]
    assert [auto.batch_size(jobs, 1) for jobs in (16, 9, 3, 0)] == [8, 4, 1, 1]  # a lone slot: two batches
    assert RayBackend(timeout_s=5).batch_size(1000, 2) == 1  # a hanging evaluation takes no batch-mates along
    assert RayBackend(evals_per_task=5, timeout_s=5).batch_size(3, 2) == 5


def test_batches_respect_max_in_flight(ray_backend: RayBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = spy_batches(monkeypatch)
    backend = RayBackend(evals_per_task=4, max_in_flight=6)
    got = list(backend.map(ToyTask(sleep_s=0.02), make_jobs(9, seed=13)))
    assert len(got) == 9 and sizes[:2] == [4, 2]  # the second batch is cut to stay within 6 in flight
    assert sum(sizes) == 9
    backend.close()


def test_a_hanging_job_times_out_its_batch_and_the_map_goes_on(ray_backend: RayBackend) -> None:
    list(ray_backend.map(ToyTask(), make_jobs(2, seed=14)))  # warm workers: start-up must not count as hanging
    jobs = make_jobs(4, seed=14)
    backend = RayBackend(timeout_s=1.0, evals_per_task=2)
    got = {e.individual_id: e for e in backend.map(HangingTask(hang_seeds={jobs[0].seed}, sleep_s=0.05), jobs)}
    assert set(got) == {j.individual_id for j in jobs}
    for job in jobs[:2]:  # the hanging job and its batch-mate
        assert got[job.individual_id].error == "timed out after 2 s (a batch of 2 evaluations)"
        assert got[job.individual_id].budget_used.seconds >= 1.0  # each its share of the batch's 2 s
    assert all(got[j.individual_id].ok for j in jobs[2:])
    assert (backend.stats().timed_out, backend.stats().failed) == (2, 2)
    backend.close()


def test_a_lost_batch_is_rerun_whole_and_recorded_once(ray_backend: RayBackend, tmp_path: Path) -> None:
    jobs = make_jobs(4, seed=15)
    backend = RayBackend(evals_per_task=2, max_retries=3)
    got = [e for e in backend.map(CrashOnceTask(tmp_path), jobs)]
    assert sorted(e.individual_id for e in got) == [j.individual_id for j in jobs]
    assert all(e.ok for e in got)
    assert backend.stats().retries == 4  # each batch crashes twice: at its first job, then (rerun) at its second
    backend.close()


def test_gpus_asked_of_a_machine_without_them_fail_fast(ray_backend: RayBackend) -> None:
    if ray.cluster_resources().get("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="num_gpus=0.5 but this machine has no GPU"):
        list(RayBackend(num_gpus=0.5).map(ToyTask(), make_jobs(1)))


def test_busy_workers_count_the_batches_still_running(ray_backend: RayBackend) -> None:
    backend = RayBackend(evals_per_task=3)
    busy = [backend.stats().in_flight for _ in backend.map(ToyTask(sleep_s=0.05), make_jobs(12, seed=14))]
    assert len(busy) == 12
    assert busy[0] >= 1  # the first batch came back while the second one held the other worker
    backend.close()


def test_ray_workers_train_on_a_memory_mapped_npz_as_the_serial_backend_does(ray_backend: RayBackend,
                                                                            tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (120, 6, 6), dtype=np.uint8), y=np.arange(120) % 3)
    task = SupervisedTask(SupervisedTaskConfig(dataset="npz", path=str(tmp_path / "d.npz"), mmap="always"))
    genome = Genome.mlp(task.input_shape, hidden=(8,), output_size=task.output_size)
    jobs = [Job(i, genome, Budget(steps=5), seed=i) for i in range(4)]
    on_ray = {e.individual_id: e for e in ray_backend.map(task, jobs)}
    serial = {e.individual_id: e for e in SerialBackend().map(task, jobs)}
    assert all(e.ok for e in on_ray.values())
    assert {i: e.objectives for i, e in on_ray.items()} == {i: e.objectives for i, e in serial.items()}


def test_carried_optimizer_state_goes_to_ray_workers_and_comes_back_as_on_the_serial_backend(
    ray_backend: RayBackend,
) -> None:
    task = SupervisedTask(SupervisedTaskConfig(dataset="iris"), PlasticityConfig(carry_optimizer=True, lr=0.01))
    parent = Genome.mlp(task.input_shape, hidden=(6,), output_size=task.output_size, seed=0)
    (trained,) = SerialBackend().map(task, [Job(0, parent, Budget(steps=3), seed=0)])
    assert trained.genome is not None and trained.genome.optim_state  # the parent's state, to be carried
    jobs = [Job(i, trained.genome, Budget(steps=4), seed=i) for i in range(1, 4)]
    on_ray = {e.individual_id: e for e in ray_backend.map(task, jobs)}
    serial = {e.individual_id: e for e in SerialBackend().map(task, jobs)}
    for i, e in on_ray.items():
        assert e.ok and e.objectives == serial[i].objectives
        steps = {name: float(entry["step"]) for name, entry in e.genome.optim_state.items()}
        assert steps == dict.fromkeys(trained.genome.weights, 7.0)  # the parent's 3 steps, then the child's 4
        for name, entry in e.genome.optim_state.items():
            assert all(torch.equal(v, serial[i].genome.optim_state[name][k]) for k, v in entry.items())


def test_inherited_snes_step_sizes_go_to_ray_workers_and_come_back_as_on_the_serial_backend(
    ray_backend: RayBackend,
) -> None:
    search = WeightSearch(algorithm="snes", iterations=2, population=4, sigma=0.3)
    task = ControlTask("CartPole-v1", episodes=2, max_episode_steps=100, weight_search=search)
    (parent,) = SerialBackend().map(task, [Job(0, Genome.mlp((4,), (4,), 2, seed=0), Budget(), seed=0)])
    assert parent.genome is not None and parent.genome.optim_state  # the step sizes a child continues from
    jobs = [Job(i, parent.genome, Budget(), seed=i) for i in range(1, 4)]
    on_ray = {e.individual_id: e for e in ray_backend.map(task, jobs)}
    serial = {e.individual_id: e for e in SerialBackend().map(task, jobs)}
    for i, e in on_ray.items():
        assert e.ok and e.objectives == serial[i].objectives and e.metrics == serial[i].metrics
        assert set(e.genome.optim_state) == set(parent.genome.weights)
        for name, entry in e.genome.optim_state.items():
            assert torch.equal(entry[STD], serial[i].genome.optim_state[name][STD])
            assert not torch.equal(entry[STD], parent.genome.optim_state[name][STD])  # the child's search moved them


def test_halving_at_the_default_budget_on_ray_equals_serial(ray_backend: RayBackend) -> None:
    """Successive halving of a supervised task's default lifetime (counted on the driver, whose task keeps its
    data when Ray ships copies without it): every rung's jobs and results as on the serial backend."""
    from evo.config import load_config
    from evo.evolution import Evolution
    from evo.operators.registry import make_operator
    from evo.task_kinds import build_task

    cfg = load_config(None, ["task.dataset=iris", "evolution.population_size=4", "evolution.generations=1",
                             "evolution.init.hidden=[8]", "plasticity.batch_size=16", "plasticity.epochs=2",
                             "evolution.halving.rungs=2", "evolution.halving.eta=2", "evolution.seed=5"])
    operators = [(make_operator({"op": "mutate_weights", "sigma": 0.05}), 1.0)]

    def outcome(backend: RayBackend | SerialBackend) -> dict[int, tuple[object, ...]]:
        result = Evolution(cfg, build_task(cfg.task, cfg.plasticity), backend, operators).run()
        return {i: (ind.objectives, ind.evaluation.budget_used.steps, ind.evaluation.metrics["rung"])
                for i, ind in result.individuals.items() if ind.evaluation is not None}

    on_ray = outcome(ray_backend)
    assert on_ray == outcome(SerialBackend())
    assert {rung for _, _, rung in on_ray.values()} == {0.0, 1.0}
