"""evo's side of the gradient-free comparison (:mod:`benchmarks.peers.neat_compare`): the problem as every
library sees it, one run's outcome, and evo's run counted in evaluations until its threshold.

Kept apart from the peers so that evo-only benchmarks (:mod:`benchmarks.xor_from_scratch`) count evaluations
exactly as the comparison does without neat-python or EvoTorch installed.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evo.config import load_config
from evo.genome import Genome
from evo.runner import run_evolution
from evo.tasks import Budget
from evo.tasks.control import ControlTask
from evo.tasks.xor import SOLVED_FITNESS

__all__ = ["BENCHMARKS", "FRESH_EPISODES", "FRESH_SEED", "ROOT", "Benchmark", "Outcome", "evo_overrides", "fresh_return",
           "median_or_dash", "run_evo"]

ROOT = Path(__file__).resolve().parents[2]
FRESH_EPISODES = 100
FRESH_SEED = 10_000  # fresh episodes draw their env seeds from here: never seen in evolution


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



#: the comparison's problems, thresholds and caps (every library's, and every evo-only benchmark's of the same task).
BENCHMARKS = {
    "xor": Benchmark("XOR", "xor", "xor.yaml", SOLVED_FITNESS, None, 1, 30_000, 60.0),
    "cartpole": Benchmark("CartPole-v1", "cartpole", "cartpole.yaml", 475.0, "CartPole-v1", 5, 10_000, 90.0),
    "lunar": Benchmark("LunarLander-v3", "lunar_lander", "lunar_lander.yaml", 200.0, "LunarLander-v3", 3, 10_000, 180.0),
}


def median_or_dash(values: Sequence[float]) -> float | str:
    """A table cell: the median, or "—" when there is nothing (e.g. no run solved)."""
    return float(statistics.median(values)) if values else "—"


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
    stopped: str | None = None  # why the library gave up before the threshold and the caps (EvoTorch's CMA-ES)
    load: float | None = None  # the machine's 1-minute load average when the run started (seconds depend on it)


def evo_overrides(bench: Benchmark, seed: int, population: int) -> list[str]:
    """Same seed, threshold and caps as neat-python; serial backend (one core, like neat-python)."""
    generations = max(1, math.ceil(bench.max_evaluations / population) - 1)
    out = [f"evolution.seed={seed}", "backend.kind=serial", f"evolution.target_fitness={bench.threshold}",
           f"evolution.generations={generations}", f"evolution.max_seconds={bench.max_seconds}", "evolution.test_top_k=0"]
    return out + ([f"task.episodes={bench.episodes}"] if bench.env_id is not None else [])


def run_evo(bench: Benchmark, seed: int) -> Outcome:
    """evo's gradient-free evolution from its config, counting evaluations until the threshold; on a control task
    in episodes ÷ the benchmark's episodes per evaluation, so that a weight search's candidates (``task.
    weight_search``) and the elites' re-evaluations count as the evaluations they are."""
    path = ROOT / "configs" / bench.evo_config
    population = load_config(path).evolution.population_size
    config = load_config(path, evo_overrides(bench, seed, population))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="evo_side_") as tmp:
        result = run_evolution(config, run_dir=Path(tmp) / "run")
    seconds = time.perf_counter() - start
    objective = next(iter(result.best.objectives), "fitness")
    evaluations = 0
    for record in result.history:
        evaluations += len(record.evaluated)
        if bench.solved(record.best_objectives.get(objective, -math.inf)):
            break
    if bench.env_id is not None:  # every episode counts: a weight search's candidates and re-evaluations too
        evaluations = math.ceil(record.budget_used.episodes / bench.episodes)
    best = result.best.fitness(objective)
    fresh = None
    if bench.env_id is not None:
        fresh = fresh_return(bench.env_id, result.best.genome, seed)
    solved = bench.solved(best) and evaluations <= bench.max_evaluations  # the cap binds episodes too
    return Outcome("evo", seed, solved, evaluations, seconds, best, fresh)


def fresh_return(env_id: str, genome: Genome, seed: int) -> float:
    task = ControlTask(env_id, episodes=FRESH_EPISODES)
    return task.evaluate(genome, Budget(), "cpu", FRESH_SEED + seed).objectives["mean_return"]

