"""The Ray backend: evaluations in parallel on this machine or on a Ray cluster.

Workers are pure — task and job in, :class:`Evaluation` out — so a worker or a
whole node may die and the job simply runs again elsewhere. The driver keeps
at most ``max_in_flight`` jobs submitted, resubmits jobs whose worker was lost
(up to ``max_retries`` times), cancels jobs that run past ``timeout_s`` and
yields every job exactly once, in completion order, stamped with its id.

A Ray task costs a few milliseconds of scheduling and transfer: several percent
of training a small network, more than a whole evaluation of a small policy.
``evals_per_task`` sends evaluations in batches, so that cost is paid once per
batch; by default (``auto``) a map of many more jobs than slots is split into
about :data:`TASKS_PER_SLOT` batches per slot (two for a lone slot). A batch is
retried, and timed out, as a whole. Jobs travel to the worker, and evaluations
back, each as its own object, so small ones stay inside Ray's messages.

Example:
    >>> backend = RayBackend(workers=2)  # doctest: +SKIP
    >>> evaluations = {e.individual_id: e for e in backend.map(task, jobs)}  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence, Sized
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import ray
import torch
from ray import cloudpickle
from ray import exceptions as rex

from evo import interrupts
from evo.backends._base import Backend
from evo.backends.config import BackendConfig
from evo.backends.reaper import Reaper
from evo.backends.serial import run_jobs
from evo.backends.stats import BackendStats, StatsMeter
from evo.errors import ConfigError
from evo.tasks import Task
from evo.types import Budget, Evaluation, Job

__all__ = ["LOST", "TASKS_PER_SLOT", "RayBackend", "worker_device"]

#: Errors meaning the worker process or node running an evaluation died: the job is resubmitted.
LOST: tuple[type[Exception], ...] = (
    rex.WorkerCrashedError,
    rex.NodeDiedError,
    rex.LocalRayletDiedError,
    rex.ObjectLostError,
    rex.OutOfMemoryError,
)

#: Ray's default ``max_direct_call_object_size``: objects up to this size travel inside task messages.
INLINE_BYTES = 100 * 1024

#: ``evals_per_task="auto"``: batches per evaluation slot in a map. More batches balance the load better
#: (a slot waits at most one batch for the others); fewer pay Ray's per-task cost less often. A lone slot has
#: no load to balance and gets two: one running while the next waits, so the worker never idles on the driver.
TASKS_PER_SLOT = 4

#: Serialises starting and stopping Ray: the trials of a parallel search share one backend from several threads,
#: and ``ray.init`` from two of them at once fails ("Perhaps you called ray.init twice by accident?").
_CONNECT_LOCK = threading.Lock()

#: Longest single ``ray.wait``: the driver looks for a stop signal (:func:`evo.interrupts.check`) this often.
POLL_S = 1.0


def worker_device(gpu_ids: Sequence[object], visible: str | None) -> str:
    """The torch device for an evaluation Ray gave ``gpu_ids``; ``cpu`` when it got none.

    Ray restricts ``CUDA_VISIBLE_DEVICES`` (``visible``) to the assigned GPUs, so the
    device index is the id's position in that list, not the id itself.
    """
    if not gpu_ids:
        return "cpu"
    gpu = str(gpu_ids[0])
    order = [d.strip() for d in (visible or "").split(",") if d.strip()]
    return f"cuda:{order.index(gpu) if gpu in order else int(gpu)}"


def _evaluate(task: Task, threads: int, *jobs: Job) -> tuple[str | Evaluation, ...]:
    """Runs in the worker: its CPU share of threads, its GPU (if any); returns the node id, then one
    evaluation per job (a task that evaluates jobs together gets the batch in one call: :func:`run_jobs`).

    Jobs come as separate arguments and evaluations go back as separate return values (``num_returns``):
    Ray sends an object under its inline limit (100 KB) inside the task's messages, a larger one through
    the object store — a batch in one object would take the slower road as soon as it held a few genomes.
    """
    torch.set_num_threads(threads)
    device = worker_device(ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"))
    return ray.get_runtime_context().get_node_id(), *run_jobs(task, jobs, device)


#: ``max_calls=0``: a worker process runs any number of evaluations, GPU ones included (Ray's default for a function
#: declared with GPUs is one call per process, to free GPU memory), so the data a worker loaded, and copied to its
#: GPU, serves all its evaluations (:func:`evo.tasks.data.load_dataset`).
_remote_evaluate = ray.remote(max_calls=0)(_evaluate)


class _TooBig(Exception):
    """Raised by :class:`_SizeLimit` once more than :data:`INLINE_BYTES` were written."""


class _SizeLimit:
    """A file that counts what is pickled into it and gives up past the inline limit, so sizing a task with
    gigabytes of data in memory costs one write, not a whole pickle."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > INLINE_BYTES:
            raise _TooBig
        return len(data)


def _shipped(task: Task) -> Task | ray.ObjectRef:
    """The task as every batch's argument: itself when it pickles under Ray's inline limit (then it travels
    inside each task's message), else a reference to one copy in the object store (fetched per batch, but
    never re-sent)."""
    try:
        cloudpickle.dump(task, _SizeLimit())
    except _TooBig:
        return ray.put(task)
    return task


@dataclass
class _Attempt:
    """One submission of a batch of jobs: its return values (node id, then one per job), how many earlier
    submissions of the batch were lost and the seconds they held workers, and when this one (presumably) got
    a worker slot."""

    jobs: tuple[Job, ...]
    refs: tuple[ray.ObjectRef, ...]
    tries: int = 0
    spent: float = 0.0
    started: float | None = None

    def held_s(self) -> float:
        """Seconds this batch has held workers, over all its submissions so far."""
        return self.spent + (time.monotonic() - self.started if self.started is not None else 0.0)


def _failed(task: Task, attempt: _Attempt, error: str) -> list[Evaluation]:
    """One failed evaluation per job of ``attempt``, each stamped with its job's id and charged its share of the
    seconds the batch held workers (its steps died with them, unknown)."""
    used = Budget(seconds=attempt.held_s() / len(attempt.jobs))
    return [dataclasses.replace(task.failed(error, used=used), individual_id=job.individual_id) for job in attempt.jobs]


class RayBackend(Backend):
    """Evaluates jobs as Ray tasks on a local instance (started lazily) or an existing cluster.

    Built from a validated ``backend`` section (:meth:`from_config`, as :func:`~evo.backends.make_backend` does),
    or from that section's fields as keywords (``RayBackend(workers=2, evals_per_task=4)``), checked by the
    section's own rules (:class:`~evo.backends.BackendConfig` documents each field). An unset ``address`` reads
    ``RAY_ADDRESS``, else (as ``local`` does) starts a local instance on the first :meth:`map`.

    If Ray is already initialised (by the user), that instance is used and left running on :meth:`close`.
    """

    def __init__(self, config: BackendConfig | None = None, /, **options: Any) -> None:
        if config is None:
            config = BackendConfig.checked("RayBackend", kind="ray", **options)
        elif options:
            raise TypeError("RayBackend: a BackendConfig or keyword options, not both")
        address = config.address or os.environ.get("RAY_ADDRESS") or "local"
        self.address = None if address == "local" else address
        self.workers, self.num_cpus, self.num_gpus = config.workers, config.num_cpus, config.num_gpus
        self.max_retries, self.timeout_s = config.max_retries, config.timeout_s
        self.max_in_flight, self.evals_per_task = config.max_in_flight, config.evals_per_task
        self.ship_code, self.worker_logs = config.ship_code, config.worker_logs
        self.runtime_env = dict(config.runtime_env)
        self._owns_ray = False
        self._reaper: Reaper | None = None
        self._meter = StatsMeter()

    @classmethod
    def from_config(cls, config: BackendConfig) -> RayBackend:
        """The Ray backend of a validated ``backend`` section (nothing is started until the first :meth:`map`)."""
        return cls(config)

    # ------------------------------------------------------------ connection
    def init_kwargs(self) -> dict[str, Any]:
        """The ``ray.init`` arguments this backend starts or joins Ray with."""
        kwargs: dict[str, Any] = {
            "address": self.address or "local",
            "log_to_driver": self.worker_logs,
            "logging_level": logging.WARNING,
            "ignore_reinit_error": True,
            "runtime_env": self.worker_env() or None,
        }
        if self.address is None:
            per_eval = self.workers * self.num_cpus if self.workers else os.cpu_count() or 1
            kwargs.update(num_cpus=max(1, math.ceil(per_eval)), include_dashboard=False)
        return kwargs

    def worker_env(self) -> dict[str, Any]:
        """The runtime environment workers get: the user's entries plus, when shipping code, the evo package."""
        env = dict(self.runtime_env)
        if self.ship_code == "always" or (self.ship_code == "auto" and self.address is not None):
            env["py_modules"] = [*env.get("py_modules", []), str(Path(__file__).resolve().parents[1])]  # evo/
        return env

    def _connect(self) -> None:
        with _CONNECT_LOCK:
            if not ray.is_initialized():
                with _token_notice_muted():
                    ray.init(**self.init_kwargs())
                self._owns_ray = True

    def _watch_helpers(self) -> None:
        """A local instance this backend started: have its processes stopped with the driver, however it ends."""
        with _CONNECT_LOCK:  # the trials of a parallel search map from several threads
            if self._owns_ray and self.address is None:
                self._reaper = self._reaper or Reaper()
                self._reaper.watch()

    def _slots(self) -> int:
        """Evaluations the cluster can run at once given the per-evaluation resources."""
        resources = ray.cluster_resources()
        slots = resources.get("CPU", 0.0) / self.num_cpus
        if self.num_gpus and not resources.get("GPU") and self.address is None:  # would wait forever
            raise ConfigError(f"RayBackend num_gpus={self.num_gpus:g} but this machine has no GPU; use num_gpus=0")
        if self.num_gpus:
            slots = min(slots, resources.get("GPU", 0.0) / self.num_gpus)
        return max(1, int(slots))

    # ------------------------------------------------------------ the map
    def batch_size(self, jobs: int, slots: int) -> int:
        """Evaluations per Ray task in a map of ``jobs`` jobs (0: unknown) over ``slots`` evaluation slots."""
        if self.evals_per_task != "auto":
            return self.evals_per_task
        per_slot = TASKS_PER_SLOT if slots > 1 else 2
        return 1 if self.timeout_s else max(1, jobs // (per_slot * slots))

    def map(self, task: Task, jobs: Iterable[Job]) -> Iterator[Evaluation]:
        self._connect()
        interrupts.reclaim()  # ray.init replaced the SIGTERM handler with one that exits without clean-up
        self._watch_helpers()
        task_arg = _shipped(task)
        slots = self._slots()
        # auto batches by the map's size; a lazy iterator is not pulled ahead to learn it (one job per task)
        batch = self.batch_size(len(jobs) if isinstance(jobs, Sized) else 0, slots)
        limit = self.max_in_flight or 2 * slots * batch
        queue = iter(jobs)
        running: dict[ray.ObjectRef, _Attempt] = {}
        self._meter.begin()
        try:
            while self._fill(task_arg, queue, running, limit, batch):
                self._meter.in_flight = self._start_clocks(running, slots)
                self._meter.queued = sum(len(a.jobs) for a in running.values() if a.started is None)
                wait_s = self._wait_s(running)
                timeout = POLL_S if wait_s is None else min(wait_s, POLL_S)
                ready, _ = ray.wait(list(running), num_returns=1, timeout=timeout)
                interrupts.check()
                for ref in ready:
                    yield from self._collect(task, task_arg, ref, running)
                for ref in self._expired(running):
                    yield from self._time_out(task, ref, running)
        finally:
            for ref in running:  # the caller stopped early: don't leave work behind
                ray.cancel(ref)
            self._meter.end()

    def _submit(self, task_arg: Task | ray.ObjectRef, jobs: tuple[Job, ...], running: dict[ray.ObjectRef, _Attempt],
                tries: int = 0, spent: float = 0.0) -> None:
        """Submit one batch; ``running`` holds it under its first return value (the node id: all of a task's
        return values are ready together)."""
        options = _remote_evaluate.options(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0,
                                           num_returns=1 + len(jobs))
        refs = tuple(options.remote(task_arg, max(1, int(self.num_cpus)), *jobs))
        running[refs[0]] = _Attempt(jobs, refs, tries, spent)

    def _fill(self, task_arg: Task | ray.ObjectRef, queue: Iterator[Job], running: dict[ray.ObjectRef, _Attempt],
              limit: int, batch: int) -> bool:
        """Submit batches of ``batch`` jobs while fewer than ``limit`` jobs are in flight; False when nothing is
        left to wait for."""
        in_flight = sum(len(a.jobs) for a in running.values())
        while in_flight < limit and (jobs := tuple(islice(queue, min(batch, limit - in_flight)))):
            self._submit(task_arg, jobs, running)
            in_flight += len(jobs)
        return bool(running)

    @staticmethod
    def _start_clocks(running: dict[ray.ObjectRef, _Attempt], slots: int) -> int:
        """The oldest ``slots`` submissions hold the workers (Ray dispatches in order): their timeouts run.

        Returns:
            how many submissions are running.
        """
        now = time.monotonic()
        for attempt in list(running.values())[:slots]:
            if attempt.started is None:
                attempt.started = now
        return _busy(running)

    def _wait_s(self, running: dict[ray.ObjectRef, _Attempt]) -> float | None:
        """How long ``ray.wait`` may block: until the first running deadline, or forever without a timeout."""
        if not self.timeout_s:
            return None
        now = time.monotonic()
        left = [a.started + self._limit_s(a) - now for a in running.values() if a.started is not None]
        return max(0.0, min(left)) if left else None

    def _collect(self, task: Task, task_arg: Task | ray.ObjectRef, ref: ray.ObjectRef,
                 running: dict[ray.ObjectRef, _Attempt]) -> list[Evaluation]:
        """The finished batch's evaluations; none when its worker was lost and the batch resubmitted."""
        attempt = running.pop(ref)
        node: str | None = None
        try:
            node, *evaluations = ray.get(list(attempt.refs))
        except LOST as err:
            if attempt.tries < self.max_retries:
                self._meter.retries += 1
                self._submit(task_arg, attempt.jobs, running, attempt.tries + 1, attempt.held_s())
                return []
            tries = attempt.tries + 1
            evaluations = _failed(task, attempt,
                                  f"worker lost ({type(err).__name__}) after {tries} attempt{'s' * (tries > 1)}")
        except rex.RayError as err:
            evaluations = _failed(task, attempt, f"{type(err).__name__}: {str(err).strip().splitlines()[0]}")
        for evaluation in evaluations:
            self._meter.finished(evaluation.ok, node)
        self._meter.in_flight = _busy(running)  # finished() counts evaluations down; workers hold whole batches
        return evaluations

    def _limit_s(self, attempt: _Attempt) -> float:
        """A batch's time limit: ``timeout_s`` per job in it."""
        return self.timeout_s * len(attempt.jobs)

    def _expired(self, running: dict[ray.ObjectRef, _Attempt]) -> list[ray.ObjectRef]:
        if not self.timeout_s:
            return []
        now = time.monotonic()
        return [r for r, a in running.items() if a.started is not None and now - a.started > self._limit_s(a)]

    def _time_out(self, task: Task, ref: ray.ObjectRef, running: dict[ray.ObjectRef, _Attempt]) -> list[Evaluation]:
        attempt = running.pop(ref)
        ray.cancel(ref, force=True)  # a hung evaluation may never reach a Python checkpoint
        n = len(attempt.jobs)
        error = f"timed out after {self._limit_s(attempt):g} s" + (f" (a batch of {n} evaluations)" if n > 1 else "")
        self._meter.timed_out += n
        for _ in attempt.jobs:
            self._meter.finished(False)
        self._meter.in_flight = _busy(running)
        return _failed(task, attempt, error)

    # ------------------------------------------------------------ the rest
    def stats(self) -> BackendStats:
        return self._meter.snapshot()

    def close(self) -> None:
        """Shut Ray down if this backend started it; a user's or a cluster connection made elsewhere stays."""
        with _CONNECT_LOCK:
            if self._owns_ray and ray.is_initialized():
                ray.shutdown()
            if self._reaper is not None:
                self._reaper.close()
                self._reaper = None
            self._owns_ray = False


def _busy(running: dict[ray.ObjectRef, _Attempt]) -> int:
    """Workers busy now: the submissions whose clock runs (each holds one evaluation slot)."""
    return sum(a.started is not None for a in running.values())


@contextmanager
def _token_notice_muted() -> Iterator[None]:
    """Ray's notice that a new local cluster has token authentication on (its secure default, nothing to do)
    is logged on every start, straight to stderr: through the progress bar. Mute that logger while Ray starts."""
    notice = logging.getLogger("ray._private.authentication.authentication_token_setup")
    level = notice.level
    notice.setLevel(logging.ERROR)
    try:
        yield
    finally:
        notice.setLevel(level)
