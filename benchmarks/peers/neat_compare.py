"""neat-python vs evo's gradient-free mode on XOR, CartPole-v1 and LunarLander-v3, back to back.

Both sides get the same problem: the same fitness (XOR: ``4 − Σ(out − y)²``; control: mean
return over the same number of seeded episodes per evaluation), the same threshold, the same
caps on evaluations and wall time, and one core each (serial). neat-python runs its own
published example configs (``neat_configs/``, sources cited in each file); evo runs
``configs/xor.yaml``, ``configs/cartpole.yaml`` and ``configs/lunar_lander.yaml``.

A run counts as solved when its best individual reaches the threshold on its evaluation
episodes; its champion is then re-scored on 100 fresh episodes ("fresh"), which a lucky
champion of a noisy few-episode fitness may fail. Evaluations and seconds are measured until
the threshold is reached (or the cap). Medians are over seeds (evaluations/seconds: over the
solved runs only).

Run: ``.venv/bin/python -m benchmarks.peers.neat_compare [--seeds 0 1 2] [--tasks xor cartpole lunar]``
(about 25 minutes on 2 cores with the defaults; it needs ``benchmarks/peers/requirements.txt``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import gymnasium as gym
import neat
import numpy as np

from benchmarks._report import machine, table, update_section
from evo.config import load_config
from evo.evolution import derive_seed
from evo.runner import run_evolution
from evo.genome import Genome
from evo.tasks import Budget
from evo.tasks.control import ControlTask
from evo.tasks.xor import SOLVED_FITNESS

ROOT = Path(__file__).resolve().parents[2]
NEAT_CONFIGS = Path(__file__).resolve().parent / "neat_configs"
FRESH_EPISODES = 100
FRESH_SEED = 10_000  # fresh episodes draw their env seeds from here: never seen in evolution
_XOR = [((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0)]


@dataclass(frozen=True)
class Benchmark:
    """One problem as both libraries see it.

    Attributes:
        name: row label.
        neat_config: neat-python config file under ``neat_configs/``.
        evo_config: evo config under ``configs/``.
        threshold: solved at or above this fitness (XOR: strictly above).
        env_id: gymnasium id; ``None`` for XOR.
        episodes: episodes per evaluation (both sides).
        max_evaluations: evaluation cap per run (both sides).
        max_seconds: wall-time cap per run (both sides).
    """

    name: str
    neat_config: str
    evo_config: str
    threshold: float
    env_id: str | None
    episodes: int
    max_evaluations: int
    max_seconds: float

    def solved(self, fitness: float) -> bool:
        return fitness > self.threshold if self.env_id is None else fitness >= self.threshold


BENCHMARKS = {
    "xor": Benchmark("XOR", "xor", "xor.yaml", SOLVED_FITNESS, None, 1, 30_000, 60.0),
    "cartpole": Benchmark("CartPole-v1", "cartpole", "cartpole.yaml", 475.0, "CartPole-v1", 5, 10_000, 90.0),
    "lunar": Benchmark("LunarLander-v3", "lunar_lander", "lunar_lander.yaml", 200.0, "LunarLander-v3", 3, 10_000, 180.0),
}


@dataclass(frozen=True)
class Outcome:
    """One run of one library on one seed."""

    library: str
    seed: int
    solved: bool
    evaluations: int
    seconds: float
    best: float
    fresh: float | None  # mean return of the champion on FRESH_EPISODES new episodes (control only)


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


# ----------------------------------------------------------------- evo
def evo_overrides(bench: Benchmark, seed: int, population: int) -> list[str]:
    """Same seed, threshold and caps as neat-python; serial backend (one core, like neat-python)."""
    generations = max(1, math.ceil(bench.max_evaluations / population) - 1)
    out = [f"evolution.seed={seed}", "backend.kind=serial", f"evolution.target_fitness={bench.threshold}",
           f"evolution.generations={generations}", f"evolution.max_seconds={bench.max_seconds}", "evolution.test_top_k=0"]
    return out + ([f"task.episodes={bench.episodes}"] if bench.env_id is not None else [])


def run_evo(bench: Benchmark, seed: int) -> Outcome:
    """evo's gradient-free evolution from its config, counting evaluations until the threshold."""
    path = ROOT / "configs" / bench.evo_config
    population = load_config(path).evolution.population_size
    config = load_config(path, evo_overrides(bench, seed, population))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="neat_compare_") as tmp:
        result = run_evolution(config, run_dir=Path(tmp) / "run")
    seconds = time.perf_counter() - start
    objective = next(iter(result.best.objectives), "fitness")
    evaluations = 0
    for record in result.history:
        evaluations += len(record.evaluated)
        if bench.solved(record.best_objectives.get(objective, -math.inf)):
            break
    best = result.best.fitness(objective)
    fresh = None
    if bench.env_id is not None:
        fresh = fresh_return(bench.env_id, result.best.genome, seed)
    return Outcome("evo", seed, bench.solved(best), evaluations, seconds, best, fresh)


def fresh_return(env_id: str, genome: Genome, seed: int) -> float:
    task = ControlTask(env_id, episodes=FRESH_EPISODES)
    return task.evaluate(genome, Budget(), "cpu", FRESH_SEED + seed).objectives["mean_return"]


# ----------------------------------------------------------------- summary
def median_or_dash(values: Sequence[float]) -> float | str:
    return float(statistics.median(values)) if values else "—"


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


def run_all(benches: Sequence[Benchmark], seeds: Sequence[int]) -> Results:
    """Every benchmark, neat-python then evo, each over ``seeds``, back to back in this process."""
    results: Results = {}
    for bench in benches:
        for run in (run_neat, run_evo):
            for seed in seeds:
                outcome = run(bench, seed)
                print(f"{bench.name:15s} {outcome}", flush=True)
                results.setdefault(bench.name, {}).setdefault(outcome.library, []).append(outcome)
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
    return "Targets:\n\n" + "\n".join(lines) if lines else ""


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
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    benches = [BENCHMARKS[name] for name in args.tasks]
    results = run_all(benches, args.seeds)
    text = write_up(benches, args.seeds, results, load_before, os.getloadavg())
    print(text)
    if not args.no_doc:
        update_section("peers-neat", "neat-python vs evo (gradient-free): XOR, CartPole, LunarLander", text)


def write_up(benches: Sequence[Benchmark], seeds: Sequence[int], results: Results,
             load_before: tuple[float, ...], load_after: tuple[float, ...]) -> str:
    """The section's text: provenance and load, budgets, summary table, targets, every run."""
    rows = [summary_row(b, runs) for b in benches for runs in results[b.name].values()]
    details = [[b.name, r.library, r.seed, "yes" if r.solved else "no", r.evaluations, r.seconds, r.best,
                "—" if r.fresh is None else r.fresh] for b in benches for runs in results[b.name].values() for r in runs]
    versions = ", ".join(f"{dist} {version(dist)}" for dist in ("neat-python", "gymnasium", "box2d"))
    return "\n\n".join(part for part in [
        (f"`benchmarks/peers/neat_compare.py`, seeds {list(seeds)}, {versions}; {machine()}. Load average "
         f"(1/5/15 min) before {tuple(round(x, 2) for x in load_before)}, after "
         f"{tuple(round(x, 2) for x in load_after)} — other jobs share the 2 cores, so seconds are indicative; "
         "evaluations are not affected."),
        budget_notes(benches),
        table(HEADERS, rows),
        targets(results),
        "Per run:",
        table(["task", "library", "seed", "solved", "evaluations", "seconds", "best fitness", "fresh mean return"],
              details),
    ] if part)


if __name__ == "__main__":
    main()
