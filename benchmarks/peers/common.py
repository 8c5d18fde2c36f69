"""The shared harness of the search-vs-baselines benchmarks: data, budget counting, fronts, statistics.

Every method (evo, Optuna TPE/NSGA-II, random search, Ray PBT) is charged the same way: the training
sample-steps (optimiser steps × batch size) of every network it trains, as
:attr:`evo.types.Budget.samples` reports them. A :class:`Trace` records each evaluated network in
order, so one record gives a method's anytime curve, its best network, its accuracy-vs-parameters
front and the budget it needed to first reach a target. The best network and the front are chosen on
the *validation* split; only those networks are then measured on the test split.

Example:
    >>> hypervolume([(0.1, 3.0), (0.2, 2.0)], reference=(1.0, 6.0))
    3.5
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import torch
from scipy import stats
from torch import Tensor

from benchmarks._report import load_average
from evo.backends import Backend, SerialBackend
from evo.config import EvoConfig, load_config
from evo.genome import Genome
from evo.plasticity import PlasticityConfig
from evo.tasks import Budget, Evaluation, Job, Task
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.data import SplitData, load_dataset
from evo.tasks.supervised import SupervisedTask

__all__ = [
    "DATASETS",
    "PLAIN",
    "REFERENCE",
    "REGULARISED",
    "SCRATCH",
    "Point",
    "Recipe",
    "RecordingBackend",
    "Summary",
    "Trace",
    "accuracy",
    "ci95",
    "evo_config",
    "fixed_mlp_trial",
    "fmt",
    "hypervolume",
    "load_average",
    "median",
    "run_evolution_traced",
    "run_fixed_search",
    "split",
    "stat_cell",
    "summarize",
    "train_fixed",
]

#: datasets of the side-by-side comparison (scikit-learn bundled sets, make_classification, and MNIST-1D's
#: 40-sample signals, flat: every method here searches MLPs, which reach about 68% on it in its paper).
DATASETS = ("digits", "wine", "breast_cancer", "synthetic", "mnist1d")
#: hypervolume reference point in (test error, log10 parameters): error 1, a million parameters.
REFERENCE = (1.0, 6.0)
#: bounds of the fixed-architecture baselines' space (depth, widths, optimiser, training length).
MAX_DEPTH, MIN_WIDTH, MAX_WIDTH = 3, 8, 256
BATCH_SIZES = (16, 32, 64, 128)


@dataclass(frozen=True)
class Recipe:
    """How the fixed-MLP baselines train beyond the values they sample: plain, or with the regularisers evo's
    rows may train with, so that a gap between the two is evo's search and not a regulariser the peers lack.

    Attributes:
        label_smoothing: as ``plasticity.label_smoothing`` (0 = off).
        weight_decay: ``(low, high)``: weight decay (Adam's L2) searched log-uniformly as one more
            hyperparameter of the trial; ``None``: no weight decay.
    """

    label_smoothing: float = 0.0
    weight_decay: tuple[float, float] | None = None


#: the baselines as a user trains them by default: plain Adam, plain cross-entropy.
PLAIN = Recipe()
#: label smoothing 0.1 and weight decay searched in [1e-5, 0.1]: what evo's regularised row trains with.
REGULARISED = Recipe(label_smoothing=0.1, weight_decay=(1e-5, 0.1))
#: scratch space for run directories and Ray results: /var/tmp, as jobs sharing this machine clean /tmp and runs/.
SCRATCH = "/var/tmp" if os.path.isdir("/var/tmp") else None


def split(dataset: str) -> SplitData:
    """The dataset as every method sees it: evo's own stratified train/validation/test split (seed 0)."""
    return load_dataset(SupervisedTaskConfig(dataset=dataset))


def accuracy(genome: Genome, x: Tensor, y: Tensor) -> float:
    """Classification accuracy of ``genome`` on ``(x, y)`` in eval mode."""
    with torch.no_grad():
        return float((genome.to_module().eval()(x).argmax(1) == y).float().mean())


@dataclass
class Point:
    """One evaluated network: the method's cumulative budget when it finished, and what it scored.

    ``genome`` is kept only while the point is on the method's validation front (memory stays small).
    """

    samples: int
    val_accuracy: float
    params: int
    genome: Genome | None = field(default=None, repr=False)

    def dominates(self, other: Point) -> bool:
        no_worse = self.val_accuracy >= other.val_accuracy and self.params <= other.params
        return no_worse and (self.val_accuracy > other.val_accuracy or self.params < other.params)


class Trace:
    """Everything one method evaluated, in order, charged in training sample-steps."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.used = 0

    def add(self, evaluation: Evaluation) -> None:
        """Charge ``evaluation``'s reported budget (evo reports none for a failed one: it scores nothing)."""
        self.used += evaluation.budget_used.samples
        if not evaluation.ok or evaluation.genome is None:
            return
        genome = evaluation.genome
        point = Point(self.used, float(evaluation.metrics["val_accuracy"]), genome.num_params(), genome)
        self.points.append(point)
        front = self.front()
        for p in self.points:
            if p.genome is not None and not any(p is q for q in front):
                p.genome = None

    def front(self) -> list[Point]:
        """Non-dominated points by (validation accuracy ↑, parameters ↓); the first of equal points."""
        front: list[Point] = []
        for p in self.points:
            if not any(q.dominates(p) or (q.val_accuracy, q.params) == (p.val_accuracy, p.params) for q in front):
                front = [q for q in front if not p.dominates(q)] + [p]
        return sorted(front, key=lambda p: p.params)

    def best(self) -> Point:
        """The most accurate network on validation (fewest parameters among ties)."""
        if not self.points:
            raise ValueError("Trace.best: no successful evaluation recorded")
        return max(self.front(), key=lambda p: (p.val_accuracy, -p.params))

    def best_at(self, samples: float) -> float:
        """Best validation accuracy among the networks finished within ``samples`` (nan before the first)."""
        values = [p.val_accuracy for p in self.points if p.samples <= samples]
        return max(values) if values else math.nan

    def budget_to_reach(self, target: float) -> float:
        """Cumulative sample-steps when validation accuracy first reached ``target``; nan if it never did."""
        return next((float(p.samples) for p in self.points if p.val_accuracy >= target), math.nan)

    def test_front(self, data: SplitData) -> list[tuple[float, float]]:
        """The validation front measured on the test split: ``(test error, log10 params)`` per network."""
        return [(1.0 - accuracy(p.genome, data.x_test, data.y_test), math.log10(p.params))
                for p in self.front() if p.genome is not None]


class RecordingBackend(Backend):
    """Wraps a backend and adds every evaluation it yields to a :class:`Trace` (evo's budget, counted here)."""

    def __init__(self, inner: Backend, trace: Trace) -> None:
        self.inner, self.trace = inner, trace

    def map(self, task: Task, jobs: Iterable[Job]) -> Iterator[Evaluation]:
        for evaluation in self.inner.map(task, jobs):
            self.trace.add(evaluation)
            yield evaluation

    def close(self) -> None:
        self.inner.close()


def evo_config(dataset: str, budget: int, seed: int, *, lamarckian: bool = True,
               objectives: Sequence[str] = ("val_accuracy", "params"), extra: Sequence[str] = ()) -> EvoConfig:
    """The evo run the peers face: population 8, one epoch per evaluation, stopped after ``budget`` sample-steps.

    Starts from random MLPs (1–2 hidden layers, widths 8–128) like the baselines' space, with the default
    operators; two objectives select by NSGA-II (a LEMONADE-style Pareto population). ``extra``: dotted
    overrides on top (an ablation's mechanism switched on).
    """
    return load_config(None, [
        f"task.dataset={dataset}", f"task.objectives=[{','.join(objectives)}]", "backend.kind=serial",
        "plasticity.epochs=1", "evolution.population_size=8", "evolution.generations=100000",
        f"evolution.max_samples={budget}", f"evolution.seed={seed}", f"evolution.lamarckian={str(lamarckian).lower()}",
        "evolution.test_top_k=0", "evolution.init.strategy=random", "evolution.init.min_layers=1",
        "evolution.init.max_layers=2", f"evolution.init.min_width={MIN_WIDTH}", "evolution.init.max_width=128",
        *extra,
    ])


def run_evolution_traced(config: EvoConfig) -> Trace:
    """One evo run (``evo run`` without a run directory: serial, one torch thread), recorded."""
    from evo.evolution import Evolution, build_operators
    from evo.task_kinds import build_task

    trace = Trace()
    backend = RecordingBackend(SerialBackend(threads=1), trace)
    Evolution(config, build_task(config.task, config.plasticity), backend, build_operators(config)).run()
    return trace


# ----------------------------------------------------------------- fixed-architecture baselines
def train_fixed(data: SplitData, hidden: Sequence[int], lr: float, batch_size: int, samples: int,
                seed: int, weight_decay: float = 0.0, label_smoothing: float = 0.0) -> Evaluation:
    """A fixed MLP trained from scratch with evo's trainer, Adam and no plasticity, for ``samples``."""
    genome = Genome.mlp(data.input_shape, hidden, data.output_size, seed=seed)
    config = PlasticityConfig(lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                              label_smoothing=label_smoothing)
    task = SupervisedTask(data, config, objectives=["val_accuracy"])
    return task.evaluate(genome, Budget(steps=max(1, samples // batch_size)), "cpu", seed)


def fixed_mlp_trial(trial: optuna.Trial, n_train: int, remaining: int, recipe: Recipe = PLAIN) -> dict[str, Any]:
    """Sample a fixed architecture and its training: depth, widths, lr, batch size, epochs (≤ what is left),
    and the weight decay where ``recipe`` searches it."""
    depth = trial.suggest_int("depth", 1, MAX_DEPTH)
    hidden = [trial.suggest_int(f"width_{i}", MIN_WIDTH, MAX_WIDTH, log=True) for i in range(depth)]
    epochs = trial.suggest_int("epochs", 2, 40, log=True)
    return {
        "hidden": hidden,
        "lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
        "samples": min(epochs * n_train, remaining),
        "weight_decay": trial.suggest_float("weight_decay", *recipe.weight_decay, log=True) if recipe.weight_decay
        else 0.0,
        "label_smoothing": recipe.label_smoothing,
    }


def run_fixed_search(data: SplitData, sampler: optuna.samplers.BaseSampler, budget: int, seed: int,
                     multi_objective: bool = False, first: Mapping[str, Any] | None = None,
                     recipe: Recipe = PLAIN) -> Trace:
    """Optuna (or random search) over fixed MLPs until ``budget`` sample-steps are spent.

    Args:
        sampler: TPE, NSGA-II, random...; ``multi_objective``: tell it (validation accuracy ↑, parameters ↓).
        recipe: plain training, or label smoothing and a searched weight decay.
        seed: seeds every network's initialisation and shuffling (per trial: ``seed * 10_000 + number``).
        first: values of the first trial (:func:`fixed_mlp_trial`'s parameters), queued before sampling starts.
    """
    if budget < 1:
        raise ValueError(f"run_fixed_search: budget must be >= 1 sample-step, got {budget}")
    directions = ["maximize", "minimize"] if multi_objective else ["maximize"]
    study = optuna.create_study(directions=directions, sampler=sampler)
    if first:
        study.enqueue_trial(dict(first))
    trace = Trace()
    while trace.used < budget:
        trial = study.ask()
        spec = fixed_mlp_trial(trial, len(data.x_train), budget - trace.used, recipe)
        evaluation = train_fixed(data, seed=seed * 10_000 + trial.number, **spec)
        trace.add(evaluation)
        value = evaluation.metrics.get("val_accuracy", 0.0) if evaluation.ok else 0.0
        study.tell(trial, [value, float(evaluation.metrics.get("params", 0.0))] if multi_objective else value)
    return trace


# ----------------------------------------------------------------- statistics
def hypervolume(points: Iterable[tuple[float, float]], reference: tuple[float, float] = REFERENCE) -> float:
    """Area dominated by ``points`` (both coordinates minimised) and bounded by ``reference``."""
    front: list[tuple[float, float]] = []  # x ascending, y strictly descending
    for x, y in sorted((x, y) for x, y in points if x < reference[0] and y < reference[1]):
        if not front or y < front[-1][1]:
            front.append((x, y))
    right_edges = [x for x, _ in front[1:]] + [reference[0]]
    return float(sum((right - x) * (reference[1] - y) for (x, y), right in zip(front, right_edges)))


def ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% Student-t confidence interval (nan values dropped; 0 width for one)."""
    finite = np.array([v for v in values if math.isfinite(v)], dtype=float)
    if len(finite) == 0:
        return math.nan, math.nan
    if len(finite) == 1:
        return float(finite[0]), 0.0
    half = stats.t.ppf(0.975, len(finite) - 1) * finite.std(ddof=1) / math.sqrt(len(finite))
    return float(finite.mean()), float(half)


def median(values: Sequence[float]) -> float:
    """Median over the finite values (nan when none is finite, e.g. a target never reached)."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan



# ----------------------------------------------------------------- per-run summary
@dataclass(frozen=True)
class Summary:
    """What the tables report of one method's run (budgets in sample-steps; nan: target never reached)."""

    best_val: float
    best_test: float
    params: int
    to_target: float
    hypervolume: float
    used: int
    evaluations: int
    seconds: float


def summarize(trace: Trace, data: SplitData, target: float, seconds: float) -> Summary:
    """Measure a finished run: the best network (by validation) on test, its front's hypervolume, the budgets."""
    best = trace.best()
    assert best.genome is not None  # the best is on the front, whose genomes are kept
    return Summary(best.val_accuracy, accuracy(best.genome, data.x_test, data.y_test), best.params,
                   trace.budget_to_reach(target), hypervolume(trace.test_front(data)), trace.used,
                   len(trace.points), seconds)


def fmt(value: float, digits: int = 4) -> str:
    """A number for a table cell; "—" for nan (e.g. nothing finished yet within that budget)."""
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def stat_cell(values: Sequence[float], digits: int = 4) -> str:
    """``median [mean ± 95% CI]`` over seeds, with how many seeds were finite when some were not."""
    mean, half = ci95(values)
    finite = sum(math.isfinite(v) for v in values)
    if finite == 0:
        return "never"
    text = f"{median(values):.{digits}g} [{mean:.{digits}g} ± {half:.2g}]"
    return text if finite == len(values) else f"{text} ({finite}/{len(values)} seeds)"
