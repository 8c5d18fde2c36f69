"""Evaluations per second of one population of CartPole policies: evo's Ray backend vs EvoTorch's Ray actors.

The same N policies (4→8→2 tanh MLPs, evo's seeded initial weights, copied into EvoTorch's
parameter vectors) are evaluated for the same number of CartPole-v1 episodes each, with the
same number of Ray workers: evo's ``RayBackend`` (one Ray task per evaluation, and batches of
``--evals-per-task``) and EvoTorch's
``GymNE(num_actors=W)`` (the batch split across W Ray actors). Each side's in-process serial
path is measured too, so Ray's own cost is visible. Start-up (Ray, actors) is excluded: one
warm-up pass runs first, then ``--repeats`` timed passes over the whole population.

Not measured here: search quality. EvoTorch's distribution-based searchers (SNES, CEM, PGPE, CMA-ES)
update a Gaussian over one fixed-size parameter vector, while evo's population holds networks of
different shapes; ``neat_compare.py`` runs PGPE, SNES and CMA-ES on a fixed network of evo's
starting shape, with evo's fitness and the same evaluation budget. Episodes differ in their env seeds
(each library seeds its own), so env steps per second is reported next to evaluations per
second: it corrects for episode length (steps per evaluation, about equal on both sides, is the check that
both evaluate the same policies).

Run: ``.venv/bin/python -m benchmarks.peers.evotorch_throughput [--policies 64 --episodes 5 --workers 2]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version

import ray
import torch
from evotorch.neuroevolution import GymNE

from benchmarks._report import machine, table, update_section
from evo.backends import Backend, RayBackend, SerialBackend
from evo.genome import Genome
from evo.tasks import Budget, Job
from evo.tasks.control import ControlTask

ENV = "CartPole-v1"
HIDDEN = 8
NETWORK = f"Linear(obs_length, {HIDDEN}) >> Tanh() >> Linear({HIDDEN}, act_length)"


def policies(n: int) -> list[Genome]:
    """``n`` seeded 4→8→2 tanh policies (evo's initialisation), the population both sides evaluate."""
    return [Genome.mlp((4,), (HIDDEN,), 2, activation="tanh", seed=i) for i in range(n)]


def as_vector(genome: Genome) -> torch.Tensor:
    """The genome's weights in ``state_dict`` order, which is EvoTorch's ``Linear >> Tanh >> Linear`` order."""
    return torch.cat([genome.weights[name].flatten() for name in genome.param_shapes()])


def timed(passes: int, run_once: Callable[[], int]) -> tuple[float, int]:
    """Seconds and env steps of ``passes`` calls after one untimed warm-up call."""
    run_once()
    start = time.perf_counter()
    steps = sum(run_once() for _ in range(passes))
    return time.perf_counter() - start, steps


def evo_pass(backend: Backend, genomes: Sequence[Genome], episodes: int) -> Callable[[], int]:
    task = ControlTask(ENV, episodes=episodes)
    jobs = [Job(i, g, Budget(episodes=episodes), seed=i) for i, g in enumerate(genomes)]

    def run_once() -> int:
        return int(sum(ev.metrics["env_steps"] for ev in backend.map(task, jobs)))

    return run_once


def evotorch_pass(genomes: Sequence[Genome], episodes: int, actors: int | None) -> tuple[GymNE, Callable[[], int]]:
    problem = GymNE(ENV, NETWORK, num_episodes=episodes, num_actors=actors,
                    actor_config={"num_cpus": 1} if actors else None)
    batch = problem.generate_batch(len(genomes))
    batch.set_values(torch.stack([as_vector(g) for g in genomes]).to(batch.values.dtype))

    def run_once() -> int:
        before = int(problem.status.get("total_interaction_count", 0))
        problem.evaluate(batch)
        return int(problem.status["total_interaction_count"]) - before

    return problem, run_once


def measure(args: argparse.Namespace) -> list[list[object]]:
    """One row per (library, path): evaluations/s and env steps/s over the timed passes."""
    genomes = policies(args.policies)
    evaluations = args.policies * args.repeats
    rows: list[list[object]] = []

    def row(library: str, path: str, seconds: float, steps: int) -> None:
        rows.append([library, path, evaluations, seconds, evaluations / seconds, steps / seconds, steps / evaluations])
        print(rows[-1], flush=True)

    serial = SerialBackend("cpu", threads=1)
    row("evo", "SerialBackend (in process)", *timed(args.repeats, evo_pass(serial, genomes, args.episodes)))
    for per_task in (1, args.evals_per_task):
        ray_backend = RayBackend(workers=args.workers, num_cpus=1.0, evals_per_task=per_task)
        what = "a Ray task per evaluation" if per_task == 1 else f"evals_per_task={per_task}"
        try:
            row("evo", f"RayBackend, {args.workers} workers ({what})",
                *timed(args.repeats, evo_pass(ray_backend, genomes, args.episodes)))
        finally:
            ray_backend.close()
    torch.set_num_threads(1)  # the serial paths on both sides get one core
    _, run_once = evotorch_pass(genomes, args.episodes, None)
    row("EvoTorch", "GymNE, num_actors=None (in process)", *timed(args.repeats, run_once))
    problem, run_once = evotorch_pass(genomes, args.episodes, args.workers)
    row("EvoTorch", f"GymNE, num_actors={args.workers} (Ray actors, batch split)", *timed(args.repeats, run_once))
    del problem
    if ray.is_initialized():
        ray.shutdown()
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=64, help="population size")
    parser.add_argument("--episodes", type=int, default=5, help="CartPole episodes per evaluation")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (evo) / actors (EvoTorch)")
    parser.add_argument("--evals-per-task", type=int, default=8, help="evo's batched Ray row: evaluations per Ray task")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the population")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    if min(args.policies, args.episodes, args.workers, args.repeats, args.evals_per_task) < 1:
        parser.error("--policies, --episodes, --workers, --repeats and --evals-per-task must be >= 1")
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    rows = measure(args)
    load_after = os.getloadavg()
    versions = ", ".join(f"{d} {version(d)}" for d in ("evotorch", "ray", "gymnasium"))
    text = "\n\n".join([
        (f"`benchmarks/peers/evotorch_throughput.py`: {args.policies} CartPole-v1 policies (4→8→2 tanh, the same "
        f"weights on both sides), {args.episodes} episodes per evaluation, {args.repeats} timed passes after a "
        f"warm-up; {versions}; {machine()}. Load average (1/5/15 min) before "
        f"{tuple(round(x, 2) for x in load_before)}, after {tuple(round(x, 2) for x in load_after)} — other jobs "
        "share the 2 cores, so absolute rates are indicative; the ratios within one run are what to read."),
        table(["library", "evaluation path", "evaluations", "seconds", "evaluations/s", "env steps/s",
               "env steps per evaluation"], rows),
        ("Comparable: the evaluation path only (same networks, episodes, workers). Not measured here: search "
        "quality or per-generation overhead — EvoTorch's searchers (SNES/CEM/PGPE/CMA-ES) evolve one "
        "fixed-length parameter vector's distribution, evo evolves networks whose shapes change; "
        "`benchmarks/peers/neat_compare.py` runs PGPE, SNES and CMA-ES on a fixed network of evo's starting "
        "shape with evo's fitness and the same evaluation budget (its section). EvoTorch batches a "
        "sub-population per actor call; evo sends a batch of evaluations per Ray task "
        "(`backend.evals_per_task`; by default about 4 batches per worker and generation, 1 evaluation per task "
        "with a timeout set), which pays Ray's per-task cost once per batch; the rows above fix it at 1 and at 8."),
    ])
    print(text)
    if not args.no_doc:
        update_section("peers-evotorch", "EvoTorch vs evo: Ray-parallel evaluation throughput", text)


if __name__ == "__main__":
    main()
