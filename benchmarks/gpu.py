"""GPU evaluation: evaluations/s on one GPU with 1, 2, 4 and 8 evaluations sharing it, against 2 CPU cores.

Every evaluation trains a small CNN (conv 16 → conv 32, 2×2 pooling, dense 64) on an MNIST-format
``.npz`` the benchmark writes (as :mod:`benchmarks.data_scale` does: 60,000 ``uint8`` images 28 × 28) for a
fixed number of Adam steps, then measures it on the validation split. ``k`` evaluations share the GPU
through the Ray backend's fractional GPUs (``backend.num_gpus = 1/k``, at most ``k`` in flight), each in a
worker process that keeps the data on the GPU across its evaluations; both precisions run
(``plasticity.precision``: fp32, bf16). The baseline is the same config on two CPU worker processes of one
thread each (``num_gpus: 0``, fp32): the 2-core machine evo's CPU figures come from. All runs share one
local Ray instance, and each is timed after a warm-up map that loads the data and starts CUDA in the
workers, so the rates are a worker's steady state.

Run on a GPU machine: ``python -m benchmarks.gpu [--jobs 32 --steps 100 --levels 1 2 4 8]``; writes the "gpu"
section of docs/benchmarks.md. ``--smoke``: a tiny version on the CPU (no GPU needed, nothing written), which
the tests run so the script cannot rot.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks._report import table, update_section
from benchmarks.data_scale import write_mnist_npz
from evo.backends import BackendConfig, make_backend
from evo.backends._base import Backend
from evo.genome import Genome
from evo.plasticity import PlasticityConfig
from evo.tasks import Budget, Job
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.supervised import SupervisedTask

PRECISIONS = ("fp32", "bf16")
CPU_WORKERS = 2


@dataclass(frozen=True)
class Setup:
    """What one benchmark run measures: data size, the CNN, the work per evaluation and the sharing levels."""

    n_train: int
    n_test: int
    channels: tuple[int, ...]
    hidden: tuple[int, ...]
    steps: int
    batch_size: int
    jobs: int
    levels: tuple[int, ...]
    gpu: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Setup:
        if args.smoke:
            return cls(512, 128, (4,), (8,), 3, 32, 2, (1, 2), gpu=False)
        return cls(60_000, 10_000, (16, 32), (64,), args.steps, args.batch_size, args.jobs, tuple(args.levels), True)


def make_jobs(setup: Setup) -> list[Job]:
    """``setup.jobs`` CNNs on 1×28×28 images, distinct seeds."""
    return [Job(i, Genome.cnn((1, 28, 28), setup.channels, setup.hidden, 10, seed=i), Budget(steps=setup.steps), i)
            for i in range(setup.jobs)]


def rate(backend: Backend, task: SupervisedTask, jobs: list[Job], warm_up: int) -> float:
    """Evaluations/s of ``jobs`` through ``backend``, after ``warm_up`` of them ran once untimed."""
    list(backend.map(task, jobs[:warm_up]))
    start = time.perf_counter()
    evaluations = list(backend.map(task, jobs))
    elapsed = time.perf_counter() - start
    failed = [e.error for e in evaluations if not e.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} evaluations failed, e.g. {failed[0]}")
    return len(jobs) / elapsed


def measure(setup: Setup, path: Path) -> tuple[float, dict[tuple[int, str], float]]:
    """The CPU baseline's evaluations/s, and the GPU's by (evaluations sharing it, precision)."""
    cfg = SupervisedTaskConfig(dataset="npz", path=str(path), as_image=True)
    jobs = make_jobs(setup)
    gpu_share = 1.0 if setup.gpu else 0.0  # smoke: the same runs with no GPU to share
    workers = max(CPU_WORKERS, *setup.levels)

    def backend(num_gpus: float, in_flight: int) -> Backend:
        # the first backend starts the local instance (sized for the most workers); the others find it running
        return make_backend(BackendConfig(workers=workers, num_gpus=num_gpus, max_in_flight=in_flight,
                                          evals_per_task=1))

    def task(precision: str) -> SupervisedTask:
        return SupervisedTask(cfg, PlasticityConfig(batch_size=setup.batch_size, precision=precision))

    opened = [backend(0.0, CPU_WORKERS)]
    try:
        cpu = rate(opened[0], task("fp32"), jobs, CPU_WORKERS)
        gpu = {}
        for k in setup.levels:
            opened.append(backend(gpu_share / k, k))
            for precision in PRECISIONS:
                gpu[k, precision] = rate(opened[-1], task(precision), jobs, k)
    finally:
        for b in reversed(opened):  # the first one owns the Ray instance: it goes last
            b.close()
    return cpu, gpu


def report(setup: Setup, cpu: float, gpu: dict[tuple[int, str], float], device: str) -> str:
    headers = ["evaluations sharing the GPU", "backend.num_gpus",
               *(f"{p} evaluations/s" for p in PRECISIONS), *(f"{p} speed-up over 2 CPU cores" for p in PRECISIONS)]
    rows = [[k, f"{1 / k:g}", *(f"{gpu[k, p]:.2f}" for p in PRECISIONS), *(f"{gpu[k, p] / cpu:.1f}×" for p in PRECISIONS)]
            for k in setup.levels]
    return (
        f"{setup.jobs} evaluations of a CNN (conv {' → conv '.join(map(str, setup.channels))}, dense "
        f"{', '.join(map(str, setup.hidden))}) on {setup.n_train:,} MNIST-format `uint8` images, {setup.steps} Adam "
        f"steps of batch {setup.batch_size} each, then the validation split; on {device}. Baseline: the same "
        f"config on {CPU_WORKERS} CPU worker processes of one thread each (fp32): **{cpu:.2f} evaluations/s**.\n\n"
        + table(headers, rows)
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny, on the CPU, nothing written (the tests run it)")
    parser.add_argument("--jobs", type=int, default=32, help="evaluations per measurement")
    parser.add_argument("--steps", type=int, default=100, help="Adam steps per evaluation")
    parser.add_argument("--batch-size", type=int, default=128, help="samples per step")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8], help="evaluations sharing the GPU")
    args = parser.parse_args(argv)
    setup = Setup.from_args(args)
    if setup.gpu and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run on a GPU machine, or with --smoke on the CPU")
    device = torch.cuda.get_device_name(0) if setup.gpu else "the CPU (smoke: no GPU shared)"
    with tempfile.TemporaryDirectory() as tmp:
        path = write_mnist_npz(Path(tmp) / "mnist.npz", setup.n_train, setup.n_test)
        cpu, gpu = measure(setup, path)
    body = report(setup, cpu, gpu, device)
    print(body)
    if setup.gpu:
        update_section("gpu", "GPU: evaluations sharing one GPU, fp32 and bf16", body)


if __name__ == "__main__":
    main()
