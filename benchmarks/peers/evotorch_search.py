"""EvoTorch's PGPE, SNES and CMA-ES on the weights of one fixed evo network: peers of ``neat_compare.py``.

The searched vector is the weights of an evo ``Genome`` of a fixed architecture (``evo.stacked``'s
``to_vector`` order), and each candidate is scored by evo's own task on the genome with those weights,
so the policy acts exactly as an evo genome of that shape would (same forward pass, same outputs to
actions) and the fitness is the very function evo's individuals get. Evaluation ``i`` of a run draws
its episodes from ``derive_seed(run seed, i)``, as evo's individual ``i`` does. Every candidate
EvoTorch asks for is one evaluation; a run stops after the generation that reaches the threshold, or
before a generation that would exceed the evaluation cap, or once the wall-time cap has passed.

Hyperparameters, one setting per algorithm for every task and seed: PGPE takes EvoTorch's own
CartPole-v1 example (``examples/notebooks/Functional_API/problem.ipynb``: popsize 100, ClipUp with
max speed 0.15, center learning rate 0.75 × max speed, initial radius 15 × max speed = 2.25, stdev
learning rate 0.1); SNES and CMA-ES start from the same spread (radius 2.25, i.e. a per-weight stdev
of 2.25/√n for n weights) and keep EvoTorch's defaults otherwise, their popsize included
(4 + ⌊3 ln n⌋). Every search is centred on evo's PyTorch-default initial weights drawn from the run seed
and runs in float64 (CMA-ES's covariance broke down sooner in float32; the genome's weights stay
float32). Serial (no Ray actors) and one torch thread: one core, like the other libraries compared.

Example:
    >>> from evo.genome import Genome
    >>> from evo.tasks.xor import XorTask
    >>> found = search(ALGORITHMS["evotorch-snes"], XorTask(), Genome.mlp((2,), (2,), 1, "tanh"), seed=0,
    ...                done=lambda best: best > 3.9, max_evaluations=50, max_seconds=60)
    >>> found.evaluations  # popsize 4 + ⌊3 ln 9⌋ = 10: five generations fit the cap
    50
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from evotorch import Problem, SolutionBatch
from evotorch.algorithms import CMAES, PGPE, SNES
from evotorch.algorithms.searchalgorithm import SearchAlgorithm

from evo.evolution import derive_seed
from evo.genome import Genome
from evo.stacked import to_vector, with_vector
from evo.tasks import Budget, Job, Task

__all__ = ["ALGORITHMS", "Algorithm", "Found", "WeightProblem", "search"]

RADIUS = 2.25  # initial radius of every search distribution (EvoTorch's CartPole example: 15 × max speed)
MAX_SPEED = 0.15  # PGPE's ClipUp max speed, from the same example


class WeightProblem(Problem):
    """Maximise ``task``'s fitness over the weights of ``genome``'s architecture; keeps count and the champion.

    Attributes:
        evaluations: candidates scored so far (each is one fitness call).
        best: the best fitness any candidate scored (on its own evaluation episodes).
        champion: the genome that scored ``best`` (``genome`` itself until a candidate scores above −inf).
    """

    def __init__(self, task: Task, genome: Genome, seed: int) -> None:
        self.task, self.genome, self.run_seed = task, genome, seed
        self.objective = task.objectives[0].name
        self.evaluations, self.best, self.champion = 0, -math.inf, genome
        # initial_bounds only fill CMAES's placeholder population: every search starts from its center_init
        super().__init__("max", solution_length=genome.num_params(), initial_bounds=(-1.0, 1.0),
                         dtype=torch.float64, eval_dtype=torch.float64, seed=seed)

    def _evaluate_batch(self, solutions: SolutionBatch) -> None:
        vectors = solutions.values.clone().numpy()
        first = self.evaluations
        genomes = [with_vector(self.genome, v) for v in vectors]
        jobs = [Job(first + i, g, Budget(), derive_seed(self.run_seed, first + i)) for i, g in enumerate(genomes)]
        fitness = np.array([e.objectives[self.objective] for e in self.task.evaluate_batch(jobs, "cpu")])
        self.evaluations += len(jobs)
        top = int(np.argmax(fitness))
        if fitness[top] > self.best:
            self.best, self.champion = float(fitness[top]), genomes[top]
        solutions.set_evals(torch.from_numpy(fitness))


Build = Callable[[WeightProblem, np.ndarray, int], SearchAlgorithm]


@dataclass(frozen=True)
class Algorithm:
    """One EvoTorch searcher as the benchmark runs it.

    Attributes:
        label: its name in the tables.
        build: the searcher for a problem, a center and a popsize.
        popsize: its population size for ``n`` weights.
        settings: the hyperparameters set, as the write-up states them.
    """

    label: str
    build: Build
    popsize: Callable[[int], int]
    settings: str


def default_popsize(n: int) -> int:
    """EvoTorch's default for SNES and CMA-ES (and CMA-ES's rule of thumb): 4 + ⌊3 ln n⌋."""
    return 4 + math.floor(3 * math.log(n))


def _pgpe(problem: WeightProblem, center: np.ndarray, popsize: int) -> SearchAlgorithm:
    return PGPE(problem, popsize=popsize, center_init=center, radius_init=RADIUS,
                center_learning_rate=0.75 * MAX_SPEED, stdev_learning_rate=0.1,
                optimizer="clipup", optimizer_config={"max_speed": MAX_SPEED})


def _snes(problem: WeightProblem, center: np.ndarray, popsize: int) -> SearchAlgorithm:
    return SNES(problem, popsize=popsize, center_init=center, radius_init=RADIUS)


def _cmaes(problem: WeightProblem, center: np.ndarray, popsize: int) -> SearchAlgorithm:
    return CMAES(problem, popsize=popsize, center_init=center, stdev_init=RADIUS / math.sqrt(problem.solution_length))


ALGORITHMS = {
    "evotorch-pgpe": Algorithm(
        "EvoTorch PGPE", _pgpe, lambda n: 100,
        f"popsize 100, radius_init {RADIUS}, center_learning_rate {0.75 * MAX_SPEED:g}, stdev_learning_rate 0.1, "
        f"optimizer clipup with max_speed {MAX_SPEED} (EvoTorch's CartPole-v1 example); defaults otherwise "
        "(centered ranking, symmetric sampling, stdev_max_change 0.2)"),
    "evotorch-snes": Algorithm(
        "EvoTorch SNES", _snes, default_popsize,
        f"radius_init {RADIUS} (PGPE's); defaults otherwise (popsize 4 + ⌊3 ln n⌋, center_learning_rate 1, "
        "stdev_learning_rate 0.2 (3 + ln n)/√n, nes ranking)"),
    "evotorch-cmaes": Algorithm(
        "EvoTorch CMA-ES", _cmaes, default_popsize,
        f"stdev_init {RADIUS}/√n (PGPE's radius); defaults otherwise (popsize 4 + ⌊3 ln n⌋, full covariance, "
        "active CMA)"),
}


@dataclass(frozen=True)
class Found:
    """What a search left: evaluations used, the best fitness scored, the genome that scored it, and why it
    ended early when EvoTorch gave up before the threshold and the caps (``None`` otherwise)."""

    evaluations: int
    best: float
    champion: Genome
    stopped: str | None = None


def search(algorithm: Algorithm, task: Task, genome: Genome, seed: int, done: Callable[[float], bool],
           max_evaluations: int, max_seconds: float) -> Found:
    """``algorithm`` on ``genome``'s weights, centred on them, generation by generation until ``done(best)``
    or a cap; a generation runs only if all of it fits within ``max_evaluations``.

    EvoTorch's CMA-ES has no termination criteria of its own: on a flat fitness (XOR's 3.5 plateau) its
    covariance matrix stops being positive definite and its step raises. The run ends there, not solved,
    as pycma's ``tolflatfitness``/``tolconditioncov`` would end it (a CMA-ES without restarts).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        problem = WeightProblem(task, genome, seed)
        popsize = algorithm.popsize(problem.solution_length)
        searcher = algorithm.build(problem, to_vector(genome).astype(np.float64), popsize)
        start = time.perf_counter()
        while (not done(problem.best) and problem.evaluations + popsize <= max_evaluations
               and time.perf_counter() - start < max_seconds):
            searcher.step()
    except torch.linalg.LinAlgError as err:  # CMA-ES on a flat fitness: its covariance stopped decomposing
        reason = f"its covariance matrix broke down ({str(err).split(':')[0]} failed)"
        return Found(problem.evaluations, problem.best, problem.champion, reason)
    finally:
        torch.set_num_threads(threads)
    return Found(problem.evaluations, problem.best, problem.champion)
