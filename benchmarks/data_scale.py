"""Data at scale: what an evaluation pays for its data, and each worker's memory, serially and on Ray.

The benchmark writes an MNIST-format ``.npz`` itself (60,000 × 28 × 28 ``uint8`` training images and
10,000 test images, ``np.savez``: stored uncompressed; random pixels and labels, since only the bytes
matter here) and evaluates small MLPs on it for a few steps, read into memory (``task.mmap: never``)
and memory-mapped (``always``). Every evaluation times what it asks of the data (``SupervisedTask.on``:
the first evaluation in a process loads and splits the file, later ones find it in the process's cache)
and reads its process's memory from ``/proc/self/status``: resident (RSS), of it anonymous (the
process's own: heap, the split's copies) and file-backed (pages of the mapped file, shared with every
process mapping it through the page cache), and the peak RSS. Serial runs each get a fresh process;
Ray runs a fresh local instance.

Run: ``python -m benchmarks.data_scale [--evaluations 8 --steps 20 --workers 2]``; writes the "data-scale"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from benchmarks._report import table, update_section
from evo.backends import Backend, RayBackend, SerialBackend
from evo.genome import Genome
from evo.network import as_inputs
from evo.tasks import Budget, Evaluation, Job
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.supervised import SupervisedTask

MODES = ("never", "always")
_STATUS = {"VmRSS": "rss", "VmHWM": "peak", "RssAnon": "anon", "RssFile": "file"}


def write_mnist_npz(path: Path, n_train: int = 60_000, n_test: int = 10_000, seed: int = 0) -> Path:
    """An MNIST-shaped ``.npz`` (``uint8`` images 28 × 28, labels 0–9), stored uncompressed so it can be mapped."""
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (n_train, n_test)]
    labels = [rng.integers(0, 10, n) for n in (n_train, n_test)]
    np.savez(path, x_train=images[0], y_train=labels[0], x_test=images[1], y_test=labels[1])
    return path


def memory_mb() -> dict[str, float]:
    """This process's resident, peak, anonymous and file-backed memory in MB (Linux ``/proc/self/status``)."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in _STATUS:
            found[_STATUS[key]] = int(value.split()[0]) / 1024
    return found


class MeasuredTask(SupervisedTask):
    """A supervised task whose evaluations report what their data cost and their process's memory."""

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int, teacher: Genome | None = None) -> Evaluation:
        before = memory_mb()
        start = time.perf_counter()
        self.on(device)
        data_ms = 1e3 * (time.perf_counter() - start)
        loaded = memory_mb()
        evaluation = super().evaluate(genome, budget, device, seed, teacher)
        measured = {f"{k}_mb": v for k, v in memory_mb().items()}
        metrics = {**evaluation.metrics, **measured, "data_ms": data_ms, "pid": os.getpid(), "started": start,
                   "data_anon_mb": loaded["anon"] - before["anon"], "data_file_mb": loaded["file"] - before["file"]}
        return dataclasses.replace(evaluation, metrics=metrics)


def make_jobs(n: int, steps: int) -> list[Job]:
    """``n`` evaluations of 784→64→10 MLPs, ``steps`` Adam steps each."""
    return [Job(i, Genome.mlp((784,), (64,), 10, seed=i), Budget(steps=steps), i) for i in range(n)]


def measure(backend: Backend, task: MeasuredTask, jobs: Sequence[Job]) -> list[dict[str, float]]:
    """Each process's figures: its first evaluation's data time, its later ones' median, its last memory reading
    (a process's evaluations in the order it ran them: its own clock's)."""
    try:
        evaluations = sorted(backend.map(task, jobs), key=lambda e: e.metrics.get("started", 0.0))  # run order
    finally:
        backend.close()
    failed = [e.error for e in evaluations if not e.ok]
    if failed:
        raise RuntimeError(f"evaluations failed: {failed[:3]}")
    by_process: dict[float, list[dict[str, float]]] = {}
    for evaluation in evaluations:
        by_process.setdefault(evaluation.metrics["pid"], []).append(evaluation.metrics)
    return [summary(metrics) for metrics in by_process.values()]


def summary(metrics: list[dict[str, float]]) -> dict[str, float]:
    """One process's row from its evaluations' metrics, in the order they ran."""
    later = [m["data_ms"] for m in metrics[1:]]
    return {
        "evaluations": len(metrics),
        "first_ms": metrics[0]["data_ms"],
        "later_ms": statistics.median(later) if later else float("nan"),
        "data_anon_mb": metrics[0]["data_anon_mb"],
        "data_file_mb": metrics[0]["data_file_mb"],
        **{k: metrics[-1][f"{k}_mb"] for k in _STATUS.values()},
    }


def serial_case(path: str, mode: str, evaluations: int, steps: int) -> list[dict[str, float]]:
    """The serial backend in this (fresh) process, which loads the data when it builds the task (for its shapes):
    that is its first evaluation's data time and the memory before."""
    torch.set_num_threads(1)
    before = memory_mb()
    start = time.perf_counter()
    task = MeasuredTask(SupervisedTaskConfig(dataset="npz", path=path, mmap=mode))
    load_ms = 1e3 * (time.perf_counter() - start)
    loaded = memory_mb()
    row = measure(SerialBackend("cpu", threads=1), task, make_jobs(evaluations, steps))[0]
    return [{**row, "first_ms": load_ms, "data_anon_mb": loaded["anon"] - before["anon"],
             "data_file_mb": loaded["file"] - before["file"]}]


def ray_case(path: str, mode: str, evaluations: int, steps: int, workers: int) -> list[dict[str, float]]:
    """A fresh local Ray instance of ``workers`` workers, one evaluation per Ray task (each unpickles the task)."""
    task = MeasuredTask(SupervisedTaskConfig(dataset="npz", path=path, mmap=mode))
    backend = RayBackend(workers=workers, num_cpus=1, evals_per_task=1)
    return measure(backend, task, make_jobs(evaluations, steps))


def batch_cost_us(path: Path, batch: int = 256, repeats: int = 2000) -> tuple[float, float]:
    """µs to gather a random batch of ``uint8`` rows and make them floats, against gathering float32 rows (one
    torch thread, as an evaluation has)."""
    torch.set_num_threads(1)
    with np.load(path) as npz:
        pixels = torch.as_tensor(npz["x_train"].reshape(-1, 784))
    floats = as_inputs(pixels)
    gen = torch.Generator().manual_seed(0)
    index = [torch.randint(0, len(pixels), (batch,), generator=gen) for _ in range(repeats)]
    out = []
    for gather in (lambda i: as_inputs(pixels[i]), lambda i: floats[i]):
        start = time.perf_counter()
        for i in index:
            gather(i)
        out.append(1e6 * (time.perf_counter() - start) / repeats)
    return out[0], out[1]


def report(rows: list[tuple[str, str, dict[str, float]]], evaluations: int, steps: int, file_mb: float,
           batch_us: tuple[float, float]) -> str:
    headers = ["backend", "npz read", "evaluations in the process", "first evaluation's data, ms",
               "later evaluations' data, ms (median)", "the data's anonymous memory, MB",
               "the data's file-backed memory, MB", "RSS after the evaluations, MB", "of it anonymous, MB",
               "of it file-backed, MB", "peak RSS, MB"]
    body = [[backend, "memory-mapped" if mode == "always" else "read", int(r["evaluations"]), f"{r['first_ms']:.1f}",
             "–" if r["evaluations"] < 2 else f"{r['later_ms']:.3f}", f"{r['data_anon_mb']:.0f}", f"{r['data_file_mb']:.0f}", f"{r['rss']:.0f}",
             f"{r['anon']:.0f}", f"{r['file']:.0f}", f"{r['peak']:.0f}"] for backend, mode, r in rows]
    return (
        f"A {file_mb:.0f} MB MNIST-format `.npz` written by the benchmark (60,000 + 10,000 `uint8` images 28 × 28, "
        f"uncompressed), {evaluations} evaluations of a 784→64→10 MLP, {steps} Adam steps each; one row per "
        "process (the serial backend's, or each Ray worker's). *Data* is the time an evaluation spends getting "
        "its data (`SupervisedTask.on`): the first evaluation in a process reads and splits the file, later "
        "ones find it in the process's cache, Ray's included (each Ray task unpickles a task without data). *The "
        "data's memory* is what getting it added to the process, anonymous (its own) and file-backed; the rest of "
        "a process's RSS is Python, torch and, in a worker, Ray.\n\n"
        + table(headers, body)
        + "\n\nThe split keeps the pixels as `uint8`: 60,000 × 784 bytes = 47 MB for the training and validation "
        "splits and 8 MB for the test split, where float32 would take 188 + 31 MB (what every worker held before); "
        "a batch becomes floats where it is used (`evo.network.as_inputs`): "
        f"gathering 256 random rows and converting them costs {batch_us[0]:.0f} µs, gathering 256 float32 rows "
        f"{batch_us[1]:.0f} µs. Memory-mapped, no process holds a private copy of the data: the first process "
        "of the machine (here the serial row) writes the rows each split picks, in chunks of 10,000, to a `.npy` "
        "file in evo's cache folder (`evo.tasks.data.cache_dir`) and maps it, and every later process maps the "
        "files it finds there; a shipped test split is a view of the data file itself. Their pages are "
        "file-backed: read as a batch touches them, shared through the page cache by every worker, and dropped "
        "by the kernel under memory pressure (the first process's *first evaluation* includes the writing). "
        "`task.mmap: auto` maps a file larger than a worker's share of memory (physical memory / CPU cores)."
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluations", type=int, default=8, help="evaluations per case")
    parser.add_argument("--steps", type=int, default=20, help="Adam steps per evaluation")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = write_mnist_npz(Path(tmp) / "mnist.npz")
        os.environ["EVO_CACHE_DIR"] = str(Path(tmp) / "cache")  # the mapped splits; every process started below
        file_mb = path.stat().st_size / 2**20
        spawn = multiprocessing.get_context("spawn")
        for mode in MODES:
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:  # a fresh process: nothing loaded yet
                serial = pool.submit(serial_case, str(path), mode, args.evaluations, args.steps).result()
            rows += [("serial", mode, r) for r in serial]
            rows += [(f"Ray, worker {i + 1}", mode, r)
                     for i, r in enumerate(ray_case(str(path), mode, args.evaluations, args.steps, args.workers))]
        batch_us = batch_cost_us(path)
    body = report(rows, args.evaluations, args.steps, file_mb, batch_us)
    print(body)
    if not args.no_doc:
        update_section("data-scale", "Data at scale: a 60,000-image npz, serial and Ray", body)


if __name__ == "__main__":
    main()
