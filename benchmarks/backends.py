"""Backend throughput on the digits task: serial vs Ray at 1 and 2 workers, and the engine's overhead.

Every evaluation trains an MLP on digits for a case's Adam steps (batch 32) and measures it on the
validation split, one torch thread per evaluation. The overhead is an evaluation's wall time through a
backend against a bare PyTorch loop doing the same training and measuring: what scheduling, pickling
the genome there and back, and the plasticity bookkeeping cost. The serial backend and Ray at one
worker run on one Ray instance, each measurement between two of the bare loop (:func:`alternate`), so
a machine whose speed drifts over minutes (a shared VM) slows both sides of a comparison alike. The
overhead is also added up part by part (:func:`by_part`): the trainer, Ray's scheduling and transfer,
and storing each evaluation as a run does. The trainer's part is also counted in instructions
(:func:`instruction_overhead`, valgrind's cachegrind): a count does not move with the machine's load, so it
reads the same on a shared VM whose timings spread over 50% or more.

Run: ``python -m benchmarks.backends [--jobs 16 --cases 300:64 688:512 1500:64 --workers 1 2 --instructions 8]``;
writes the "backends" section of docs/benchmarks.md. ``--instructions`` needs valgrind (``apt-get install valgrind``);
``--instructions 0`` skips the counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ray
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks._report import ROOT, table, update_section
from evo.backends import Backend, RayBackend, SerialBackend
from evo.backends.serial import run_job
from evo.genome import Genome
from evo.plasticity import PlasticityConfig
from evo.records import Individual
from evo.store import RunStore, individual_to_record
from evo.task_kinds import build_task
from evo.tasks import Budget, Evaluation, Job, Task
from evo.tasks.config import SupervisedTaskConfig


@dataclass(frozen=True)
class Case:
    """One table: ``steps`` Adam steps per evaluation of a 64→``hidden``→10 MLP."""

    steps: int
    hidden: int

    @classmethod
    def parse(cls, text: str) -> Case:
        """``STEPS:HIDDEN``, e.g. ``688:512``."""
        try:
            steps, hidden = (int(part) for part in text.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"a case is STEPS:HIDDEN (e.g. 688:512), got {text!r}") from None
        return cls(steps, hidden)


def make_digits_jobs(task: Task, n: int, steps: int, hidden: int = 64) -> list[Job]:
    """``n`` differently initialised copies of the benchmark network, each with its own seed."""
    return [Job(i, Genome.mlp(task.input_shape, (hidden,), task.output_size, seed=i), Budget(steps=steps), i)
            for i in range(n)]


#: One measured map: evaluations per second (wall clock), this process's CPU seconds per evaluation, and the
#: evaluations' own mean seconds (their ``budget_used``, timed where they ran; NaN for the bare loop).
Timing = tuple[float, float, float]


def timed(run: Callable[[Sequence[Job]], Sequence[Evaluation] | None], jobs: Sequence[Job]) -> Timing:
    """The :data:`Timing` of ``run(jobs)``, after a warm-up run on two jobs (worker start-up, imports)."""
    run(jobs[:2])
    start, cpu = time.perf_counter(), time.process_time()
    evaluations = run(jobs)
    rate, cpu = len(jobs) / (time.perf_counter() - start), (time.process_time() - cpu) / len(jobs)
    own = statistics.mean(e.budget_used.seconds for e in evaluations) if evaluations else math.nan
    return rate, cpu, own


def throughput(backend: Backend, task: Task, jobs: Sequence[Job]) -> Timing:
    """:func:`timed` maps of ``jobs`` through ``backend``; a failed evaluation stops the benchmark."""
    def run(batch: Sequence[Job]) -> list[Evaluation]:
        evaluations = list(backend.map(task, batch))
        failed = [e.error for e in evaluations if not e.ok]
        if failed:
            raise RuntimeError(f"benchmark evaluations failed: {failed[:3]}")
        return evaluations

    return timed(run, jobs)


def storing_s(task: Task, jobs: Sequence[Job], rounds: int) -> float:
    """Seconds per evaluation the driver spends storing it as a run does: its share of its generation's genome
    file and its record line (both written once per generation, here once per ``jobs``); fastest of ``rounds``."""
    evaluated = [dataclasses.replace(run_job(task, dataclasses.replace(job, budget=Budget(steps=1))),
                                     individual_id=job.individual_id) for job in jobs]
    individuals = [Individual(e.individual_id, e.genome or job.genome, evaluation=e)
                   for e, job in zip(evaluated, jobs, strict=True)]
    best = math.inf
    with tempfile.TemporaryDirectory() as root:
        for r in range(rounds):
            store = RunStore.create(Path(root) / str(r), "")
            start = time.perf_counter()
            for ind in individuals:
                store.save_genome(ind.id, ind.genome)
            store.append_records([individual_to_record(ind) for ind in individuals], generation=0)
            best = min(best, (time.perf_counter() - start) / len(individuals))
    return best


def bare_throughput(task: Task, jobs: Sequence[Job], steps: int, batch_size: int, lr: float,
                    fused: bool = True) -> Timing:
    """:func:`timed` hand-written loops: same network, optimiser, steps, batches and measuring."""
    return timed(lambda batch: bare_loop(task, batch, steps, batch_size, lr, fused), jobs)


def bare_loop(task: Task, jobs: Sequence[Job], steps: int, batch_size: int, lr: float, fused: bool = True) -> None:
    """Train and measure each job's network with plain PyTorch (the loop the engine is compared against):
    with ``fused``, Adam's fused step, as evo's trainer takes it; without, Adam's default step."""
    data = task.data  # type: ignore[attr-defined]
    for job in jobs:
        gen = torch.Generator().manual_seed(job.seed)
        hidden = job.genome.layers[0].width
        net = nn.Sequential(nn.Linear(task.input_shape[0], hidden), nn.ReLU(), nn.Linear(hidden, task.output_size))
        optimizer = torch.optim.Adam(net.parameters(), lr=lr, fused=fused or None)
        batches: list[torch.Tensor] = []
        for _ in range(steps):
            if not batches:
                batches = list(torch.randperm(len(data.x_train), generator=gen).split(batch_size))
            index = batches.pop(0)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(net(data.x_train[index]), data.y_train[index]).backward()
            optimizer.step()
        with torch.no_grad():
            net.eval()
            out = net(data.x_val)
            float(F.cross_entropy(out, data.y_val)), float((out.argmax(1) == data.y_val).float().mean())


def alternate(runs: dict[str, Callable[[], Timing]], rounds: int,
              reference: str = "bare") -> tuple[dict[str, list[Timing]], dict[str, list[float]]]:
    """``rounds`` rounds in which every run is bracketed by the ``reference`` run (ref, A, ref, B, ..., ref).

    Returns:
        every run's :data:`Timing` of every measurement, and every other run's wall time per evaluation
        over the mean of the reference's just before and just after it, one ratio per round: both sides are
        taken seconds apart, so a machine whose speed drifts over minutes (a shared VM) slows them alike.
    """
    timings: dict[str, list[Timing]] = {name: [] for name in runs}
    ratios: dict[str, list[float]] = {name: [] for name in runs if name != reference}
    for _ in range(rounds):
        before = runs[reference]()
        timings[reference].append(before)
        for name, run in runs.items():
            if name == reference:
                continue
            timing, after = run(), runs[reference]()
            timings[name].append(timing)
            timings[reference].append(after)
            ratios[name].append((1 / timing[0]) / ((1 / before[0] + 1 / after[0]) / 2))  # seconds per evaluation
            before = after
    return timings, ratios


def fresh_ray(workers: int) -> RayBackend:
    """A backend on a fresh local Ray instance with ``workers`` one-CPU workers (started by its first map)."""
    if ray.is_initialized():
        ray.shutdown()
    return RayBackend(workers=workers, num_cpus=1)


def measure(task: Task, plasticity: PlasticityConfig, args: argparse.Namespace, case: Case) -> str:
    """One table: serial backend and Ray at one worker (its default batches, and one task per evaluation),
    each between two bare loops, round by round; then Ray at more workers on an instance of that size."""
    jobs = make_digits_jobs(task, args.jobs, case.steps, case.hidden)
    ray1 = fresh_ray(1)
    single = RayBackend(workers=1, num_cpus=1, evals_per_task=1)  # joins ray1's instance
    try:
        rounds, paired = alternate({
            "bare": lambda: bare_throughput(task, jobs, case.steps, plasticity.batch_size, plasticity.lr),
            "bare default": lambda: bare_throughput(task, jobs, case.steps, plasticity.batch_size, plasticity.lr,
                                                    fused=False),
            "serial": lambda: throughput(SerialBackend(), task, jobs),
            "ray 1": lambda: throughput(ray1, task, jobs),
            "ray 1 single": lambda: throughput(single, task, jobs),
        }, args.repeats)
    finally:
        ray1.close()
    best = {name: max(r) for name, r in rounds.items()}
    bare_rates = [rate for rate, *_ in rounds["bare"]]
    for w in (w for w in args.workers if w != 1):
        backend = fresh_ray(w)
        try:
            best[f"ray {w}"] = max(throughput(backend, task, jobs) for _ in range(args.repeats))
        finally:
            backend.close()
    return (report(best, args.workers, args.jobs, paired)
            + "\n\n" + by_part(rounds, paired, storing_s(task, jobs, args.repeats))
            + f"\n\nTiming noise: the bare loop's own {len(bare_rates)} identical measurements spread over "
              f"{max(bare_rates) / min(bare_rates) - 1:.1%}.")


def by_part(rounds: dict[str, list[Timing]], paired: dict[str, list[float]], storing: float) -> str:
    """The engine's overhead at one worker, part by part, each measured where it is paid: the trainer and its
    bookkeeping (the serial backend against the bare loop, ``paired`` ratios), Ray's scheduling and transfer (a
    map's wall time per evaluation less the evaluations' own, timed in the worker) and storing (``storing``
    seconds per evaluation, in the driver). Unlike the Ray row's end-to-end ratio, no part compares code
    run in two processes — the same bare loop runs up to ~2% faster or slower from one fresh process to the
    next on the benchmark VM."""
    bare = statistics.median(1 / rate for rate, *_ in rounds["bare"])
    dispatch = statistics.median(1 / rate - own for rate, _, own in rounds["ray 1"])
    parts = {"trainer and bookkeeping": statistics.median(paired["serial"]) - 1,
             f"Ray's scheduling and transfer ({1000 * dispatch:.2f} ms)": dispatch / bare,
             f"storing ({1000 * storing:.2f} ms)": storing / bare}
    return ("The engine's overhead by part (Ray, 1 worker, default batches; medians of the rounds): "
            + ", ".join(f"{name} {100 * share:+.1f}%" for name, share in parts.items())
            + f" — together **{100 * sum(parts.values()):+.1f}%** (target ≤ 5%).")


def report(best: dict[str, Timing], workers: Sequence[int], jobs: int, paired: dict[str, list[float]]) -> str:
    """The Markdown table (and parallel efficiency) of one case: ``best`` maps runs to their fastest
    :data:`Timing` of maps of ``jobs`` jobs, ``paired`` the bracketed runs to their ratios (:func:`alternate`)."""
    bare_rate, bare_cpu, _ = best["bare"]

    def auto(w: int) -> str:
        return f"evals_per_task=auto: {RayBackend().batch_size(jobs, w)}"

    def pct(x: float) -> str:
        return f"{100 * (x - 1):+.1f}%"

    def rounds(name: str) -> str:
        ratios = paired.get(name)
        return f"{pct(statistics.median(ratios))} ({pct(min(ratios))} to {pct(max(ratios))})" if ratios else "—"

    def row(label: str, name: str, w: int = 1) -> list[object]:
        rate, cpu, _ = best[name]
        wall = pct(bare_rate * w / rate) if name != "bare" else "—"
        return [label, rate, 1000 * w / rate, 1000 * cpu, wall, rounds(name),
                pct(cpu / bare_cpu) if name == "serial" else "—"]

    rows = [row("bare PyTorch loop", "bare"), row("bare PyTorch loop, Adam's default step", "bare default"),
            row("serial backend", "serial"), row(f"Ray, 1 worker ({auto(1)})", "ray 1"),
            row("Ray, 1 worker, evals_per_task=1", "ray 1 single")]
    rows += [row(f"Ray, {w} workers ({auto(w)})", f"ray {w}", w) for w in workers if w != 1]
    body = table(["backend", "evaluations/s", "wall ms per evaluation per worker", "CPU ms per evaluation here",
                  "overhead vs bare (wall, fastest rounds)",
                  "overhead vs bare (wall, between two bare loops: median, range)",
                  "overhead vs bare (CPU)"], rows)
    body += ("\n\nRay's own cost (1 worker vs the serial backend, same trainer): "
             f"{pct(best['serial'][0] / best['ray 1'][0])} wall with its default batches ({auto(1)} evaluations "
             f"per task), {pct(best['serial'][0] / best['ray 1 single'][0])} with one task per evaluation.")
    if len(workers) > 1 and 1 in workers:
        high = max(workers)
        efficiency = (best[f"ray {high}"][0] / high) / best["ray 1"][0]
        body += f"\n\nParallel efficiency at {high} workers (vs 1): **{efficiency:.2f}** (target ≥ 0.85)."
    return body


def setup() -> tuple[PlasticityConfig, Task]:
    """The benchmark's training settings and digits task, in a process whose torch runs one thread: the serial
    backend and the bare loop get one, like each Ray worker (the driver's measurements and counted processes
    alike)."""
    torch.set_num_threads(1)
    plasticity = PlasticityConfig()
    return plasticity, build_task(SupervisedTaskConfig(dataset="digits"), plasticity)


#: valgrind's instruction counter: cachegrind without its cache simulation, the fastest tool that counts.
COUNTER = ("valgrind", "--tool=cachegrind", "--cache-sim=no")
#: a counted process's environment: a fixed hash seed, and one OpenMP thread that sleeps when idle (a spinning
#: one executes instructions for as long as the scheduler lets it, and counts would follow the machine's load).
COUNTED_ENV = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
#: what :func:`counted` runs, by name: the bare loop, or the serial backend (the trainer and its bookkeeping).
COUNTED = ("bare", "serial")


def counted(kind: str, evaluations: int, case: Case) -> None:
    """Evaluate ``evaluations`` jobs of ``case`` the ``kind`` way after one warm-up evaluation: the work a counted
    process does (its instructions are counted from outside, :func:`instructions`)."""
    plasticity, task = setup()
    jobs = make_digits_jobs(task, evaluations + 1, case.steps, case.hidden)
    if kind == "bare":
        def run(batch: Sequence[Job]) -> None:
            bare_loop(task, batch, case.steps, plasticity.batch_size, plasticity.lr)
    else:
        def run(batch: Sequence[Job]) -> None:
            list(SerialBackend().map(task, batch))
    run(jobs[:1])  # first calls and lazy imports, in every counted process alike
    run(jobs[1:])


def parse_instructions(report: str) -> int:
    """The instruction count (``I refs``) valgrind's cachegrind prints at exit."""
    match = re.search(r"I\s+refs:\s+([\d,]+)", report)
    if match is None:
        raise RuntimeError(f"valgrind printed no instruction count:\n{report[-2000:]}")
    return int(match[1].replace(",", ""))


def instructions(kind: str, evaluations: int, case: Case) -> int:
    """Instructions a fresh process executes for :func:`counted` (start-up and imports included; fixed hash seed)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [*COUNTER, f"--cachegrind-out-file={tmp}/out", sys.executable, "-m", "benchmarks.backends", "--count",
             kind, str(evaluations), f"{case.steps}:{case.hidden}"],
            cwd=ROOT, env={**os.environ, **COUNTED_ENV}, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"counting {kind} ({evaluations} evaluations) failed:\n{proc.stderr[-2000:]}")
    return parse_instructions(proc.stderr)


def per_evaluation(counts: Mapping[int, int]) -> float:
    """Instructions per evaluation from two processes' counts ``{evaluations: instructions}``: their difference
    over the difference in evaluations, so start-up, imports and the warm-up cancel."""
    (few, low), (many, high) = sorted(counts.items())
    return (high - low) / (many - few)


def instruction_overhead(case: Case, evaluations: int) -> str:
    """The trainer's part of the overhead counted in instructions: the serial backend's against the bare loop's
    per evaluation, from four processes (each way with 1 and ``1 + evaluations`` evaluations) run side by side."""
    runs = [(kind, n) for kind in COUNTED for n in (1, 1 + evaluations)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(runs, pool.map(lambda run: instructions(*run, case), runs), strict=True))
    bare, serial = (per_evaluation({n: c for (k, n), c in counts.items() if k == kind}) for kind in COUNTED)
    return ("Counted, not timed (valgrind's cachegrind, instructions per evaluation, the difference of processes "
            f"with 1 and {1 + evaluations} evaluations): bare loop {bare / 1e6:.1f} M, serial backend "
            f"{serial / 1e6:.1f} M — the trainer and its bookkeeping **{100 * (serial / bare - 1):+.1f}%** in "
            "instructions, a figure the machine's load does not move.")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16, help="evaluations per measured map")
    parser.add_argument("--cases", type=Case.parse, nargs="+",
                        default=[Case(300, 64), Case(688, 512), Case(1500, 64)],
                        help="STEPS:HIDDEN per table: Adam steps per evaluation, hidden width (688:512 is an "
                             "evaluation of the shipped digits config's first generation)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to measure")
    parser.add_argument("--repeats", type=int, default=7, help="rounds (each run between two bare loops)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--instructions", type=int, default=8, metavar="N",
                        help="also count the trainer's overhead in instructions over N evaluations per way (needs "
                             "valgrind); 0 skips it")
    parser.add_argument("--count", nargs=3, metavar=("KIND", "N", "CASE"), help=argparse.SUPPRESS)  # a counted process
    args = parser.parse_args(argv)
    if args.count:
        kind, n, case = args.count
        return counted(kind, int(n), Case.parse(case))
    if args.instructions < 0:
        parser.error(f"--instructions counts N >= 0 evaluations per way, got {args.instructions}")
    if args.instructions and shutil.which(COUNTER[0]) is None:
        parser.error("--instructions needs valgrind (apt-get install valgrind); --instructions 0 skips the counts")
    if 1 not in args.workers:
        parser.error("--workers must include 1 (the overhead and efficiency rows are measured against it)")
    plasticity, task = setup()
    load_before = os.getloadavg()[0]
    parts = []
    for case in args.cases:
        parts.append(f"### {case.steps} training steps per evaluation, 64→{case.hidden}→10\n\n"
                     + measure(task, plasticity, args, case)
                     + (f"\n\n{instruction_overhead(case, args.instructions)}" if args.instructions else ""))
        print(parts[-1], flush=True)
    load_after = os.getloadavg()[0]
    parts.append(
        f"{args.jobs} evaluations per map, each the given Adam steps (batch {plasticity.batch_size}) of the given MLP "
        "on digits plus validation, one torch thread each; overhead target ≤ 5%. The bare loop takes Adam's fused "
        "step, as evo's trainer does (`evo.plasticity.optim.fusable`), so the overhead is the engine's alone; the "
        "row with Adam's default (per-tensor) step is the loop most people write, for scale. 688 steps of 64→512→10 is "
        "an evaluation in the first generation of the shipped `configs/digits_mlp.yaml` (2 passes over its 9× "
        "augmented training split at batch 32; later generations grow deeper networks). Every row: the fastest of "
        f"{args.repeats} rounds; in each round the serial backend and Ray at one worker (one Ray instance) are "
        "each measured between two runs of the bare loop, more workers on their own instance after. The overhead is "
        "shown two ways: the fastest round of each against the bare loop's fastest run (of all its runs, so a "
        "single lucky one moves this column), and the median (and range) over the rounds of each measurement "
        "against the mean of the two bare loops around it, taken seconds apart — the steadier of the two on a "
        "machine whose speed drifts. The engine's cost is mostly fixed per evaluation, so its share falls as "
        "evaluations grow. CPU columns: this process's CPU "
        "time per evaluation — all the work for the bare loop and the serial backend, the driver's scheduling and "
        "(un)pickling for Ray. Instruction counts (the \"Counted, not timed\" lines, from valgrind's cachegrind in "
        "processes of their own, hash seed fixed) see neither the load nor the CPU's cache misses and memory stalls: "
        "they measure the work the engine adds, not its exact seconds. "
        f"1-minute load average before/after: {load_before:.1f}/{load_after:.1f} "
        f"on {os.cpu_count()} cores"
        + (" (above the core count: other processes were competing and wall-clock rates understate the backends)"
           if max(load_before, load_after) > (os.cpu_count() or 1) else "")
        + ". Re-run: `python -m benchmarks.backends`."
    )
    if not args.no_write:
        update_section("backends", "Backends: serial vs Ray", "\n\n".join(parts))


if __name__ == "__main__":
    main()
