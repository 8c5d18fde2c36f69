"""Fakes and contract suites for testing evo's interfaces (and your own implementations of them).

The toy tasks are fast, deterministic functions of a genome's weights and the job's
seed, with variants that raise, hang, or kill their own worker process, so a
backend's failure handling can be exercised without real training.

:class:`BackendContract` holds the checks every :class:`~evo.backends.Backend` must pass;
subclass it in a test module and provide a ``backend`` fixture:

Example:
    >>> class TestSerial(BackendContract):  # doctest: +SKIP
    ...     @pytest.fixture
    ...     def backend(self):
    ...         return SerialBackend()
"""

from __future__ import annotations

import contextlib
import glob
import io
import math
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evo.backends import Backend
from evo.backends.serial import run_job
from evo.genome import Genome
from evo.tasks import Task
from evo.types import Budget, Direction, Evaluation, Job, Objective

__all__ = [
    "BackendContract",
    "CrashOnceTask",
    "HangingTask",
    "MkdirPayload",
    "PostgresUnavailable",
    "RaisingTask",
    "SetstateMarker",
    "ToyTask",
    "assert_same_evaluations",
    "at_once",
    "crafted_exported_program",
    "crafted_torchscript",
    "make_jobs",
    "postgres_server",
]


class ToyTask(Task):
    """A fast deterministic task: one seeded "training" nudge of the weights, fitness = −Σw².

    Objectives: ``fitness`` (maximise) and ``params`` (minimise), so failures exercise both
    directions of :meth:`Objective.worst`. Metrics describe where it ran (``pid``, ``threads``,
    ``cuda``) and so differ between backends; objectives and genome do not.

    Args:
        sleep_s: seconds each evaluation takes, or a map seed → seconds (to shuffle completion order).
        running_dir: if set, each evaluation holds a file ``<seed>-<pid>`` there while it runs, so a
            test can see which process is running what right now.
    """

    objectives = (Objective("fitness"), Objective("params", Direction.MINIMIZE))

    def __init__(self, sleep_s: float | Mapping[int, float] = 0.0, inputs: int = 4, outputs: int = 2,
                 running_dir: str | os.PathLike[str] | None = None) -> None:
        self.sleep_s, self.inputs, self.outputs = sleep_s, inputs, outputs
        self.running_dir = None if running_dir is None else Path(running_dir)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.inputs,)

    @property
    def output_size(self) -> int:
        return self.outputs

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        marker = None if self.running_dir is None else self.running_dir / f"{seed}-{os.getpid()}"
        if marker is not None:
            marker.touch()
        time.sleep(self.sleep_s.get(seed, 0.0) if isinstance(self.sleep_s, Mapping) else self.sleep_s)
        if marker is not None:
            marker.unlink()
        gen = torch.Generator().manual_seed(seed)
        nudged = {k: (v + 0.01 * torch.randn(v.shape, generator=gen)).to(device) for k, v in genome.weights.items()}
        fitness = -sum(float((w**2).sum()) for w in nudged.values())
        metrics = {"pid": float(os.getpid()), "threads": float(torch.get_num_threads()),
                   "cuda": float(device.startswith("cuda"))}
        return Evaluation(-1, {"fitness": fitness, "params": float(genome.num_params())},
                          genome.with_weights(nudged), metrics, Budget(steps=max(budget.steps, 1)))


class RaisingTask(ToyTask):
    """Raises ``ValueError`` for the seeds in ``fail_seeds`` (every seed when None)."""

    def __init__(self, fail_seeds: Collection[int] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail_seeds = None if fail_seeds is None else frozenset(fail_seeds)

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        if self.fail_seeds is None or seed in self.fail_seeds:
            raise ValueError(f"toy failure for seed {seed}")
        return super().evaluate(genome, budget, device, seed)


class HangingTask(ToyTask):
    """Sleeps ``hang_s`` (an hour by default) for the seeds in ``hang_seeds``: only a timeout ends it."""

    def __init__(self, hang_seeds: Collection[int], hang_s: float = 3600.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hang_seeds, self.hang_s = frozenset(hang_seeds), hang_s

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        if seed in self.hang_seeds:
            time.sleep(self.hang_s)
        return super().evaluate(genome, budget, device, seed)


class CrashOnceTask(ToyTask):
    """Kills its own process (``os._exit``) on the first attempt at each seed; retries succeed.

    A marker file per seed under ``marker_dir`` (shared by all workers, e.g. a temp dir on a
    one-machine cluster) tells a retry from a first attempt. Never run it in the test process.
    """

    def __init__(self, marker_dir: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.marker_dir = Path(marker_dir)

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        marker = self.marker_dir / f"attempted-{seed}"
        if not marker.exists():
            marker.touch()
            os._exit(1)
        return super().evaluate(genome, budget, device, seed)


# ----------------------------------------------------------------- crafted files that run code when loaded
class SetstateMarker(nn.Module):
    """A crafted TorchScript module: its ``__setstate__`` (TorchScript code, run by ``torch.jit.load``)
    creates the file ``marker``."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.seen = torch.zeros(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :2] + self.seen

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.marker, self.training = state[0], state[1]
        self.seen = torch.from_file(self.marker, shared=True, size=1)  # creates the file


class MkdirPayload:
    """A pickle that creates the folder ``marker`` when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (self.marker,)


def crafted_torchscript(path: Path, marker: Path) -> Path:
    """A TorchScript file posing as an evo export (it names a genome) that creates ``marker`` when loaded."""
    from evo.load import GENOME_JSON

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(SetstateMarker(str(marker))), str(path), _extra_files={GENOME_JSON: ""})
    return path


def crafted_exported_program(genome: Genome, path: Path, marker: Path, work: Path) -> Path:
    """A real .pt2 export of ``genome`` whose pickled sample inputs are replaced by a payload that creates
    ``marker`` (torch.export.load falls back to ``torch.load(weights_only=False)`` for them); ``work`` holds
    the genuine export it starts from."""
    from evo.export import export_genome

    genuine = export_genome(genome, "exported_program", work / "genuine.pt2")
    payload = io.BytesIO()
    torch.save((MkdirPayload(str(marker)),), payload)
    with zipfile.ZipFile(genuine) as source, zipfile.ZipFile(path, "w") as crafted:
        for info in source.infolist():
            data = source.read(info.filename)
            crafted.writestr(info, payload.getvalue() if info.filename.endswith("sample_inputs/model.pt") else data)
    return path


# ----------------------------------------------------------------- a throwaway PostgreSQL server
class PostgresUnavailable(Exception):
    """No PostgreSQL cluster can be started here; the message says why (tests skip with it)."""


def _pg_bin(name: str) -> str | None:
    """A PostgreSQL server program: on the PATH, or where Debian puts it (newest version first)."""
    candidates = [shutil.which(name), *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)]
    return next((c for c in candidates if c), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """``postgresql://`` URL of a fresh cluster on a temporary folder and a free localhost port (as the
    ``postgres`` user when run as root: PostgreSQL refuses root), stopped and deleted afterwards.

    Raises:
        PostgresUnavailable: the driver psycopg or the server binaries are missing, or the cluster did not start.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("the PostgreSQL driver psycopg is not installed "
                                  "(pip install 'psycopg[binary]')") from None
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="evo-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            raise PostgresUnavailable("running as root and there is no 'postgres' user to run PostgreSQL as") from None
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port, data = _free_port(), folder / "data"
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "evo", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "-o",
                        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=90)
    except (subprocess.SubprocessError, OSError) as err:
        shutil.rmtree(folder, ignore_errors=True)
        raise PostgresUnavailable(f"cannot start a PostgreSQL cluster: {err}") from None
    try:
        yield f"postgresql://evo@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def make_jobs(n: int, seed: int = 0, first_id: int = 0, hidden: tuple[int, ...] = (8,)) -> list[Job]:
    """``n`` jobs for a :class:`ToyTask`: distinct small MLPs and distinct per-job seeds, all from ``seed``."""
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=n)
    return [
        Job(first_id + i, Genome.mlp((4,), hidden, 2, seed=int(s)), Budget(steps=1), int(s))
        for i, s in enumerate(seeds)
    ]


def at_once(fn: Callable[[], object], threads: int = 4) -> list[BaseException]:
    """Call ``fn`` from ``threads`` threads released together (a race, if ``fn`` has one); what they raised."""
    barrier, errors = threading.Barrier(threads), []

    def call() -> None:
        barrier.wait()
        try:
            fn()
        except BaseException as err:
            errors.append(err)

    started = [threading.Thread(target=call) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return errors


def assert_same_evaluations(got: Mapping[int, Evaluation], expected: Mapping[int, Evaluation]) -> None:
    """The two id → Evaluation maps agree on everything but the environment-dependent metrics."""
    assert set(got) == set(expected), f"ids differ: {sorted(got)} vs {sorted(expected)}"
    for i, want in expected.items():
        have = got[i]
        assert have.individual_id == i
        assert have.error == want.error, f"#{i}: error {have.error!r} vs {want.error!r}"
        assert have.objectives == want.objectives, f"#{i}: {have.objectives} vs {want.objectives}"
        assert have.budget_used == want.budget_used
        assert (have.genome is None) == (want.genome is None)
        if have.genome is not None and want.genome is not None:
            assert str(have.genome) == str(want.genome)
            for name, tensor in want.genome.weights.items():
                assert torch.equal(have.genome.weights[name], tensor), f"#{i}: weight {name} differs"


class BackendContract:
    """What every Backend must do; subclasses provide a ``backend`` fixture (see module docstring)."""

    def test_every_job_yielded_once_with_its_id(self, backend: Backend) -> None:
        jobs = make_jobs(6, first_id=10)
        ids = [e.individual_id for e in backend.map(ToyTask(), jobs)]
        assert sorted(ids) == [j.individual_id for j in jobs]

    def test_results_equal_direct_evaluation_whatever_the_order(self, backend: Backend) -> None:
        jobs = make_jobs(5, seed=1)
        task = ToyTask(sleep_s={j.seed: 0.05 * (5 - i) for i, j in enumerate(jobs)})  # later jobs finish first
        expected = {j.individual_id: run_job(task, j) for j in jobs}
        assert_same_evaluations({e.individual_id: e for e in backend.map(task, jobs)}, expected)

    def test_failures_are_evaluations_not_exceptions(self, backend: Backend) -> None:
        jobs = make_jobs(4, seed=2)
        task = RaisingTask(fail_seeds={jobs[1].seed, jobs[2].seed})
        got = {e.individual_id: e for e in backend.map(task, jobs)}
        assert set(got) == {j.individual_id for j in jobs}
        for job in jobs:
            evaluation = got[job.individual_id]
            if job.seed in task.fail_seeds:  # type: ignore[operator]
                assert evaluation.error is not None and f"toy failure for seed {job.seed}" in evaluation.error
                assert evaluation.genome is None
                assert evaluation.objectives == {"fitness": -math.inf, "params": math.inf}
            else:
                assert evaluation.ok and evaluation.genome is not None

    def test_empty_and_lazy_job_iterables(self, backend: Backend) -> None:
        assert list(backend.map(ToyTask(), [])) == []
        lazy = (job for job in make_jobs(3, seed=3))
        assert len(list(backend.map(ToyTask(), lazy))) == 3

    def test_stats_count_completed_and_failed(self, backend: Backend) -> None:
        jobs = make_jobs(4, seed=4)
        before = backend.stats()
        list(backend.map(RaisingTask(fail_seeds={jobs[0].seed}), jobs))
        after = backend.stats()
        assert (after.completed - before.completed, after.failed - before.failed) == (4, 1)
        assert after.in_flight == 0
        assert after.evaluations_per_second > 0

    def test_stopping_early_leaves_the_backend_usable(self, backend: Backend) -> None:
        evaluations = backend.map(ToyTask(), make_jobs(4, seed=5))
        next(evaluations)
        evaluations.close()  # type: ignore[attr-defined]
        assert len(list(backend.map(ToyTask(), make_jobs(3, seed=6)))) == 3
