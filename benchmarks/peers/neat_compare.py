"""neat-python, EvoTorch (PGPE, SNES, CMA-ES) and evo's gradient-free mode on XOR, CartPole-v1 and LunarLander-v3.

Every library gets the same problem: the same fitness (XOR: ``4 − Σ(out − y)²`` with a sigmoid
output; control: mean return over the same number of seeded episodes per evaluation), the same threshold, the
same caps on evaluations and wall time, and one core each (serial). neat-python runs its own
published example configs (``neat_configs/``, sources cited in each file); evo runs
``configs/xor.yaml``, ``configs/cartpole.yaml`` and ``configs/lunar_lander.yaml``. EvoTorch's
PGPE, SNES and CMA-ES (issue 18's peers, ``evotorch_search.py``) search the weights of one fixed
network of evo's starting shape for the task (``evolution.init`` of evo's config), each candidate
scored by evo's own task as an evo genome with those weights and counted as one evaluation.

A run counts as solved when its best individual reaches the threshold on its evaluation
episodes; its champion is then re-scored on 100 fresh episodes ("fresh"), which a lucky
champion of a noisy few-episode fitness may fail. Evaluations and seconds are measured until
the threshold is reached (or the cap). Medians are over seeds (evaluations/seconds: over the
solved runs only).

Run: ``PYTHONPATH=. .venv-peers/bin/python -m benchmarks.peers.neat_compare [--seeds 0 1 2]
[--tasks xor cartpole lunar] [--libraries neat-python evo evotorch-pgpe evotorch-snes evotorch-cmaes]
[--no-doc] [--log runs.jsonl]`` (``--log``: rows of several invocations gather in one write-up, e.g. one task
re-run on a quieter machine) (it needs ``benchmarks/peers/requirements.txt``: ``make peers``). neat-python and evo
took about 25 minutes on 2 cores with the default seeds; each EvoTorch searcher adds at most its caps,
60 + 90 + 180 s per seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from importlib.metadata import version
from pathlib import Path

import gymnasium as gym
import neat
import numpy as np

from benchmarks._report import machine, table, update_section
from benchmarks.peers.evo_side import (BENCHMARKS, FRESH_EPISODES, FRESH_SEED, ROOT, Benchmark, Outcome,
                                       fresh_return, median_or_dash, run_evo)
from benchmarks.peers.evotorch_search import ALGORITHMS, search
from evo.config import load_config
from evo.evolution import derive_seed
from evo.genome import Genome
from evo.task_kinds import build_task
from evo.tasks import Task

NEAT_CONFIGS = Path(__file__).resolve().parent / "neat_configs"
_XOR = [((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0)]


# ----------------------------------------------------------------- control episodes (neat side)
def episode_return(env: gym.Env, act: Callable[[np.ndarray], int], seed: int) -> float:
    """Return of one episode of ``env`` under the policy ``act`` (observation -> action)."""
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        total += float(reward)
        done = terminated or truncated
    return total


def mean_return(env_id: str, act: Callable[[np.ndarray], int], episodes: int, seed: int) -> float:
    """Mean return over ``episodes`` whose env seeds derive from ``seed``, exactly as evo's ControlTask draws them."""
    env_seeds = np.random.default_rng(seed).integers(2**31, size=episodes)
    env = gym.make(env_id)
    try:
        return float(np.mean([episode_return(env, act, int(s)) for s in env_seeds]))
    finally:
        env.close()


def neat_policy(net: neat.nn.FeedForwardNetwork) -> Callable[[np.ndarray], int]:
    """neat-python's pole-balancing convention for one output (> 0.5 pushes right), argmax for several."""
    def act(obs: np.ndarray) -> int:
        out = net.activate(obs.tolist())
        return int(out[0] > 0.5) if len(out) == 1 else int(np.argmax(out))

    return act


# ----------------------------------------------------------------- neat-python
def neat_fitness(bench: Benchmark, net: neat.nn.FeedForwardNetwork, seed: int) -> float:
    if bench.env_id is None:
        return 4.0 - sum((net.activate(x)[0] - y) ** 2 for x, y in _XOR)
    return mean_return(bench.env_id, neat_policy(net), bench.episodes, seed)


def run_neat(bench: Benchmark, seed: int) -> Outcome:
    """neat-python with its example config, one generation at a time so the caps apply between generations.

    neat-python seeds Python's global ``random`` from ``seed`` itself (``Population(config, seed=...)``).
    """
    config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                         neat.DefaultStagnation, str(NEAT_CONFIGS / bench.neat_config))
    population = neat.Population(config, seed=seed)
    evaluations = 0

    def evaluate(genomes: list[tuple[int, neat.DefaultGenome]], cfg: neat.Config) -> None:
        nonlocal evaluations
        for key, genome in genomes:
            net = neat.nn.FeedForwardNetwork.create(genome, cfg)
            genome.fitness = neat_fitness(bench, net, derive_seed(seed, key))
            evaluations += 1

    start = time.perf_counter()
    best = -math.inf

    def within_budget() -> bool:
        return evaluations < bench.max_evaluations and time.perf_counter() - start < bench.max_seconds

    while not bench.solved(best) and within_budget():
        try:
            champion = population.run(evaluate, 1)
        except neat.CompleteExtinctionException:
            break
        best = float(champion.fitness)
    seconds = time.perf_counter() - start
    fresh = None
    if bench.env_id is not None and population.best_genome is not None:
        net = neat.nn.FeedForwardNetwork.create(population.best_genome, config)
        fresh = mean_return(bench.env_id, neat_policy(net), FRESH_EPISODES, FRESH_SEED + seed)
    return Outcome("neat-python", seed, bench.solved(best), evaluations, seconds, best, fresh)


# ----------------------------------------------------------------- EvoTorch on evo's starting network
def fixed_network(bench: Benchmark, seed: int) -> tuple[Task, Genome]:
    """The task evo's config builds (with the benchmark's episodes) and evo's starting network for it: the
    config's ``evolution.init`` hidden widths and activation, an identity output layer, weights drawn from
    ``seed``. Only what ``evolution.init.strategy: minimal`` builds from ``hidden`` alone is supported.

    The task leaves out evo's lifetime weight search (``task.weight_search``): the peer is the weight search,
    and each of its candidates is one evaluation of the candidate's own weights (with it, every candidate
    would run evo's search inside its evaluation and be scored on weights other than its own)."""
    path = ROOT / "configs" / bench.evo_config
    config = load_config(path, [f"task.episodes={bench.episodes}"] if bench.env_id is not None else [])
    init = config.evolution.init
    if init.strategy != "minimal" or init.channels or init.norm is not None:
        raise ValueError(f"{path}: the fixed network needs evolution.init with strategy minimal, no channels, no norm")
    task = build_task(config.task.model_copy(update={"weight_search": None}))
    return task, Genome.mlp(task.input_shape, init.hidden, task.output_size, activation=init.activation, seed=seed)


def run_evotorch(bench: Benchmark, seed: int, algorithm: str) -> Outcome:
    """One of EvoTorch's searchers on the weights of evo's starting network (see ``evotorch_search``)."""
    peer = ALGORITHMS[algorithm]
    start = time.perf_counter()
    task, genome = fixed_network(bench, seed)
    found = search(peer, task, genome, seed, bench.solved, bench.max_evaluations, bench.max_seconds)
    seconds = time.perf_counter() - start
    fresh = None if bench.env_id is None else fresh_return(bench.env_id, found.champion, seed)
    return Outcome(peer.label, seed, bench.solved(found.best), found.evaluations, seconds, found.best, fresh,
                   found.stopped)


LIBRARIES: dict[str, Callable[[Benchmark, int], Outcome]] = {
    "neat-python": run_neat,
    "evo": run_evo,
    **{name: partial(run_evotorch, algorithm=name) for name in ALGORITHMS},
}
#: each ``--libraries`` name's name in the tables (an :class:`Outcome`'s ``library``).
LIBRARY_NAMES = {"neat-python": "neat-python", "evo": "evo", **{name: a.label for name, a in ALGORITHMS.items()}}


# ----------------------------------------------------------------- summary
def summary_row(bench: Benchmark, runs: Sequence[Outcome]) -> list[object]:
    """Success rates, medians of evaluations/seconds over solved runs, medians of best and fresh fitness."""
    solved = [r for r in runs if r.solved]
    fresh = [r.fresh for r in runs if r.fresh is not None]
    fresh_ok = sum(1 for r in solved if r.fresh is not None and r.fresh >= bench.threshold)
    return [
        bench.name, runs[0].library, f"{len(solved)}/{len(runs)}",
        f"{fresh_ok}/{len(runs)}" if bench.env_id else "—",
        median_or_dash([r.evaluations for r in solved]), median_or_dash([r.seconds for r in solved]),
        float(statistics.median(r.best for r in runs)), median_or_dash(fresh),
        max(r.evaluations for r in runs),
    ]


HEADERS = ["task", "library", "solved (eval episodes)", f"solved on {FRESH_EPISODES} fresh episodes",
           "median evaluations to solve", "median seconds to solve", "median best fitness",
           f"median fresh mean return ({FRESH_EPISODES} eps)", "most evaluations used"]


def budget_notes(benches: Sequence[Benchmark]) -> str:
    return "\n".join(
        f"- {b.name}: threshold {'>' if b.env_id is None else '≥'} {b.threshold}, {b.episodes} episode(s) per "
        f"evaluation, cap {b.max_evaluations} evaluations or {b.max_seconds:.0f} s per run; a run that hits the cap "
        "is \"not solved within budget\"." for b in benches)


Results = dict[str, dict[str, list[Outcome]]]  # benchmark name -> library -> one outcome per seed


def run_all(benches: Sequence[Benchmark], seeds: Sequence[int], libraries: Sequence[str] = tuple(LIBRARIES),
            log: Path | None = None) -> Results:
    """Every benchmark and seed, each of ``libraries`` (names in ``LIBRARIES``) in turn on it, back to back in this
    process: libraries alternate seed by seed, so a load that drifts over the run slows them alike. With ``log``,
    each outcome is also appended to that JSONL file (see :func:`read_log`)."""
    results: Results = {}
    for bench in benches:
        for seed in seeds:
            for run in (LIBRARIES[name] for name in libraries):
                load = os.getloadavg()[0]
                outcome = dataclasses.replace(run(bench, seed), load=load)
                print(f"{bench.name:15s} {outcome}", flush=True)
                results.setdefault(bench.name, {}).setdefault(outcome.library, []).append(outcome)
                if log is not None:
                    with log.open("a") as out:
                        out.write(json.dumps({"task": bench.name, **dataclasses.asdict(outcome)}) + "\n")
    return results


def read_log(path: Path) -> Results:
    """The outcomes a ``--log`` file gathered over several invocations; a later run of the same task, library and
    seed replaces an earlier one (e.g. rows re-run on a quieter machine)."""
    latest: dict[tuple[str, str, int], Outcome] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        task = row.pop("task")
        latest[task, row["library"], row["seed"]] = Outcome(**row)
    results: Results = {}
    for (task, library, _), outcome in sorted(latest.items(), key=lambda item: (item[0][1], item[0][2])):
        results.setdefault(task, {}).setdefault(library, []).append(outcome)
    return results


def targets(results: Results) -> str:
    """The project's targets, stated against the measurements: met or not, never assumed."""
    lines = []
    xor = results.get(BENCHMARKS["xor"].name, {}).get("evo")
    if xor:
        solved = sum(r.solved for r in xor)
        lines.append(f"- evo solves XOR every time: {'met' if solved == len(xor) else 'not met'} ({solved}/{len(xor)}).")
    lunar = results.get(BENCHMARKS["lunar"].name, {})
    if lunar:
        lines.append(f"- evo solves LunarLander with at most half of neat-python's evaluations: {lunar_verdict(lunar)}")
        held = sum(r.fresh is not None and r.fresh >= BENCHMARKS["lunar"].threshold for r in lunar.get("evo", []))
        lines.append(f"- LunarLander-v3: evo's champion holds ≥ 200 on the {FRESH_EPISODES} fresh episodes in ≥ 3 of 5 "
                     f"seeds: {'met' if held >= 3 else 'not met'} ({held}/{len(lunar.get('evo', []))}).")
    for task, runs in results.items():
        lines.append(f"- {task}: evo's median seconds to solve ≤ 0.5× neat-python's: {time_verdict(runs)}")
    return "Targets:\n\n" + "\n".join(lines) if lines else ""


def time_verdict(runs: dict[str, list[Outcome]]) -> str:
    """evo's median wall time to solve against neat-python's, over the runs each solved (threshold on the evaluation
    episodes, as both libraries stop there)."""
    evo, peer = ([r.seconds for r in runs.get(lib, []) if r.solved] for lib in ("evo", "neat-python"))
    if not evo or not peer:
        return f"not comparable — solved runs: evo {len(evo)}, neat-python {len(peer)}."
    ratio = statistics.median(evo) / statistics.median(peer)
    return f"{'met' if ratio <= 0.5 else 'not met'} — {ratio:.2f}× ({statistics.median(evo):.3g} s vs {statistics.median(peer):.3g} s)."


def on_eval(runs: Sequence[Outcome]) -> str:
    """How many runs reached the threshold on their evaluation episodes, and their median evaluations."""
    solved = [r.evaluations for r in runs if r.solved]
    median = f", median {statistics.median(solved):.0f} evaluations" if solved else ""
    return f"{len(solved)}/{len(runs)} solved{median}"


def lunar_verdict(lunar: dict[str, list[Outcome]]) -> str:
    """Counts a LunarLander run as solved only when its champion also holds ≥ 200 on the fresh episodes."""
    def fresh_solved(runs: Sequence[Outcome]) -> list[Outcome]:
        return [r for r in runs if r.solved and r.fresh is not None and r.fresh >= BENCHMARKS["lunar"].threshold]

    evo, peer = fresh_solved(lunar.get("evo", [])), fresh_solved(lunar.get("neat-python", []))
    if not evo:
        return ("not met — no evo champion held ≥ 200 on the 100 fresh episodes (on the evaluation episodes: "
                + "; ".join(f"{lib} {on_eval(runs)}" for lib, runs in lunar.items()) + ").")
    if not peer:
        return "not comparable — neat-python did not solve it within the budget (evo did on " \
               f"{len(evo)} seed(s), median {statistics.median(r.evaluations for r in evo):.0f} evaluations)."
    ratio = statistics.median(r.evaluations for r in evo) / statistics.median(r.evaluations for r in peer)
    return f"{'met' if ratio <= 0.5 else 'not met'} — evo used {ratio:.2f}× neat-python's median evaluations."


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", choices=sorted(BENCHMARKS), default=["xor", "cartpole", "lunar"])
    parser.add_argument("--libraries", nargs="+", choices=list(LIBRARIES), default=list(LIBRARIES),
                        help="which libraries run (default: all); the write-up names those left out")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--log", type=Path, help="append every outcome to this JSONL file and write up all the runs "
                        "it holds: rows of several invocations gather (the latest run of a task, library and seed wins)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    logging.getLogger("evotorch").setLevel(logging.WARNING)  # not a line per Problem about its dtype and device
    results = run_all([BENCHMARKS[name] for name in args.tasks], args.seeds, args.libraries, args.log)
    if args.log is not None:
        results = read_log(args.log)
    benches = [b for b in BENCHMARKS.values() if b.name in results]
    seeds = sorted({r.seed for runs in results.values() for outcomes in runs.values() for r in outcomes})
    libraries = [name for name in LIBRARIES if any(LIBRARY_NAMES[name] in runs for runs in results.values())]
    text = write_up(benches, seeds, results, load_before, os.getloadavg(), libraries)
    print(text)
    if not args.no_doc:
        update_section("peers-neat", "neat-python, EvoTorch and evo (gradient-free): XOR, CartPole, LunarLander", text)


def library_notes(benches: Sequence[Benchmark], libraries: Sequence[str]) -> str:
    """What each library of the run does, the EvoTorch searchers' fixed networks and settings, who was left out."""
    lines = []
    if "neat-python" in libraries:
        lines.append("- neat-python: its own example configs (`neat_configs/`); structure and weights evolve.")
    if "evo" in libraries:
        lines.append("- evo: `configs/xor.yaml`, `configs/cartpole.yaml`, `configs/lunar_lander.yaml` (serial "
                     "backend); structure and weights evolve.")
    if any(name in ALGORITHMS for name in libraries):
        shapes = []
        for bench in benches:
            task, genome = fixed_network(bench, 0)
            widths = [*task.input_shape, *(layer.width for layer in genome.layers)]
            shapes.append(f"{bench.name} {'→'.join(map(str, widths))} ({genome.layers[0].activation} hidden, "
                          f"{genome.num_params()} weights)")
        settings = "; ".join(f"{ALGORITHMS[name].label}: {ALGORITHMS[name].settings}"
                             for name in libraries if name in ALGORITHMS)
        lines.append(
            "- EvoTorch (issue 18's peers): PGPE, SNES and CMA-ES search the weights of one fixed network of evo's "
            f"starting shape — {'; '.join(shapes)} — built as an evo genome from each candidate vector and scored "
            "by evo's own task: the same fitness, episodes and per-evaluation seeds as evo's individuals (XOR: "
            "the sigmoid of the output; control: argmax over the outputs picks the action). Each candidate is one "
            "evaluation under the same caps; a generation runs only if all of it fits under the evaluation cap; "
            "a CMA-ES whose covariance matrix breaks down (on a flat fitness) ends its run there, as it has no "
            "restarts. Centred on evo's initial weights for the seed, float64 search, serial, one torch thread. "
            f"One setting per algorithm, the same for every task and seed: {settings}.")
    left_out = [name for name in LIBRARIES if name not in libraries]
    if left_out:
        lines.append(f"- Left out of this run (`--libraries`): {', '.join(left_out)}.")
    return "Libraries:\n\n" + "\n".join(lines)


def stops(benches: Sequence[Benchmark], results: Results) -> str:
    """The runs a library ended before the threshold and the caps, and why."""
    lines = [f"- {b.name}, {r.library}, seed {r.seed}: after {r.evaluations} evaluations, {r.stopped}."
             for b in benches for runs in results[b.name].values() for r in runs if r.stopped]
    return "Ended early (not solved):\n\n" + "\n".join(lines) if lines else ""


def write_up(benches: Sequence[Benchmark], seeds: Sequence[int], results: Results,
             load_before: tuple[float, ...], load_after: tuple[float, ...],
             libraries: Sequence[str] = tuple(LIBRARIES)) -> str:
    """The section's text: provenance and load, libraries, budgets, summary table, targets, every run."""
    rows = [summary_row(b, runs) for b in benches for runs in results[b.name].values()]
    details = [[b.name, r.library, r.seed, "yes" if r.solved else "no", r.evaluations, r.seconds, r.best,
                "—" if r.fresh is None else r.fresh, "—" if r.load is None else f"{r.load:.1f}"]
               for b in benches for runs in results[b.name].values() for r in runs]
    versions = ", ".join(f"{dist} {version(dist)}" for dist in ("neat-python", "evotorch", "gymnasium", "box2d"))
    return "\n\n".join(part for part in [
        (f"`benchmarks/peers/neat_compare.py`, seeds {list(seeds)}, {versions}; {machine()}. Load average "
         f"(1/5/15 min) before {tuple(round(x, 2) for x in load_before)}, after "
         f"{tuple(round(x, 2) for x in load_after)} — other jobs share the 2 cores, so seconds are indicative; "
         "evaluations are not affected."),
        library_notes(benches, libraries),
        "Budgets, the same for every library:\n\n" + budget_notes(benches),
        table(HEADERS, rows),
        targets(results),
        stops(benches, results),
        "Per run:",
        table(["task", "library", "seed", "solved", "evaluations", "seconds", "best fitness", "fresh mean return",
               "load (1 min) at its start"], details),
    ] if part)


if __name__ == "__main__":
    main()
