"""Multi-fidelity peers: Optuna TPE with its Hyperband pruner, as a careful Optuna user runs it, and DEHB.

A trial samples a fixed MLP and its training (the same space as the other baselines,
:func:`benchmarks.peers.common.fixed_mlp_trial`), then trains it one epoch at a time, reporting the
validation accuracy after each epoch; Optuna's ``HyperbandPruner`` stops unpromising trials early, so
the budget goes to the promising ones (Li et al. 2017). Training is the plain loop such a user writes:
one Adam optimiser kept for the whole trial (its moments are not reset between epochs), batches of the
trial's size, shuffled by a seeded generator. Every epoch's network counts as a point of the trace,
charged the sample-steps of that epoch, so the anytime curve and the front see a pruned trial's work.
DEHB (Awad, Mallik & Hutter 2021: differential evolution inside Hyperband brackets, the ``dehb`` package,
benchmarks/peers/requirements.txt) searches the same space with epochs as its fidelity, through its
ask & tell interface; each of its evaluations trains from scratch for the fidelity it asks.

Example:
    >>> import optuna
    >>> data = split("iris")  # doctest: +SKIP
    >>> trace = run_pruned_search(data, optuna.samplers.TPESampler(seed=0), budget=2_000, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
import torch
import torch.nn.functional as F

from benchmarks.peers.common import (BATCH_SIZES, MAX_DEPTH, MAX_WIDTH, MIN_WIDTH, PLAIN, Recipe, Trace,
                                     fixed_mlp_trial)
from evo.genome import Genome
from evo.tasks import Budget, Evaluation
from evo.tasks.data import SplitData

__all__ = ["EpochTrainer", "run_dehb", "run_pruned_search"]


class EpochTrainer:
    """A fixed MLP trained an epoch at a time, with one optimiser for its whole life."""

    def __init__(self, data: SplitData, hidden: Sequence[int], lr: float, batch_size: int, seed: int,
                 weight_decay: float = 0.0, label_smoothing: float = 0.0) -> None:
        self.data, self.batch_size, self.label_smoothing = data, batch_size, label_smoothing
        self.genome = Genome.mlp(data.input_shape, hidden, data.output_size, seed=seed)
        self.module = self.genome.to_module()
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=lr, weight_decay=weight_decay)
        self.shuffle = torch.Generator().manual_seed(seed)

    def epoch(self, max_samples: int) -> int:
        """One pass over the training split (or fewer samples, if the budget ends sooner); returns samples."""
        x, y = self.data.x_train, self.data.y_train
        order = torch.randperm(len(x), generator=self.shuffle)[:max_samples]
        self.module.train()
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(self.module(x[batch]), y[batch], label_smoothing=self.label_smoothing).backward()
            self.optimizer.step()
        return len(order)

    def train(self, trace: Trace, samples: int, stop: Callable[[float, int], bool] | None = None) -> tuple[float, bool]:
        """Train for ``samples`` epoch by epoch, adding each epoch's network to ``trace``.

        Args:
            stop: called with (validation accuracy, epoch) after every epoch but the last; True ends training.

        Returns:
            The last validation accuracy, and whether ``stop`` ended training early.
        """
        n_train, epoch, value = len(self.data.x_train), 0, 0.0
        while samples > 0:
            done = self.epoch(min(samples, n_train))
            samples, epoch = samples - done, epoch + 1
            evaluation = self.evaluation(done)
            trace.add(evaluation)
            value = evaluation.metrics["val_accuracy"]
            if samples > 0 and stop is not None and stop(value, epoch):
                return value, True
        return value, False

    def evaluation(self, samples: int) -> Evaluation:
        """The network as it is now, scored on validation and charged ``samples``."""
        self.module.eval()
        with torch.no_grad():
            val = float((self.module(self.data.x_val).argmax(1) == self.data.y_val).float().mean())
        trained = self.genome.from_module(self.module)
        return Evaluation(-1, {"val_accuracy": val}, trained, {"val_accuracy": val}, Budget(samples=samples))


def run_pruned_search(data: SplitData, sampler: optuna.samplers.BaseSampler, budget: int, seed: int,
                      pruner: optuna.pruners.BasePruner | None = None, recipe: Recipe = PLAIN) -> Trace:
    """TPE (or any sampler) with a pruner over fixed MLPs, trained epoch by epoch, until ``budget`` sample-steps.

    Args:
        pruner: default ``HyperbandPruner(min_resource=1, max_resource=40, reduction_factor=3)`` — one
            resource unit is one epoch, 40 the space's longest training.
        seed: seeds every network's initialisation and shuffling (per trial: ``seed * 10_000 + number``).
        recipe: plain training, or label smoothing and a searched weight decay.
    """
    if budget < 1:
        raise ValueError(f"run_pruned_search: budget must be >= 1 sample-step, got {budget}")
    pruner = pruner or optuna.pruners.HyperbandPruner(min_resource=1, max_resource=40, reduction_factor=3)
    # Hyperband assigns trials to brackets by a hash of the study's name: a fixed name keeps runs repeatable
    study = optuna.create_study(study_name=f"pruned-search-{seed}", direction="maximize", sampler=sampler,
                                pruner=pruner)
    n_train, trace = len(data.x_train), Trace()
    while trace.used < budget:
        trial = study.ask()
        spec = fixed_mlp_trial(trial, n_train, budget - trace.used, recipe)
        net = EpochTrainer(data, spec["hidden"], spec["lr"], spec["batch_size"], seed * 10_000 + trial.number,
                           spec["weight_decay"], spec["label_smoothing"])

        def prune(value: float, epoch: int, trial: optuna.Trial = trial) -> bool:
            trial.report(value, epoch)
            return trial.should_prune()

        value, pruned = net.train(trace, spec["samples"], stop=prune)
        state = optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE
        study.tell(trial, None if pruned else value, state=state)
    return trace


def _dehb_space(seed: int, recipe: Recipe) -> Any:
    """The fixed-MLP space of :func:`~benchmarks.peers.common.fixed_mlp_trial` as a ConfigSpace (depth picks
    how many of the three widths are used), without the epochs: those are DEHB's fidelity."""
    from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer

    space = ConfigurationSpace(seed=seed)
    space.add([Integer("depth", (1, MAX_DEPTH))])
    space.add([Integer(f"width_{i}", (MIN_WIDTH, MAX_WIDTH), log=True) for i in range(MAX_DEPTH)])
    space.add([Float("lr", (1e-4, 3e-2), log=True), Categorical("batch_size", list(BATCH_SIZES))])
    if recipe.weight_decay:
        space.add([Float("weight_decay", recipe.weight_decay, log=True)])
    return space


def run_dehb(data: SplitData, budget: int, seed: int, max_epochs: int = 40, eta: int = 3,
             recipe: Recipe = PLAIN) -> Trace:
    """DEHB over fixed MLPs, fidelity = epochs in [1, ``max_epochs``], until ``budget`` sample-steps.

    Every epoch's network is a point of the trace (as in :func:`run_pruned_search`); the evaluation that
    crosses the budget is cut to what is left. ``recipe``: plain training, or label smoothing and a searched
    weight decay.
    """
    import tempfile

    from dehb import DEHB

    if budget < 1:
        raise ValueError(f"run_dehb: budget must be >= 1 sample-step, got {budget}")
    space = _dehb_space(seed, recipe)
    n_train, trace = len(data.x_train), Trace()
    with tempfile.TemporaryDirectory(prefix="dehb-") as logs:
        optimizer = DEHB(cs=space, dimensions=len(list(space.values())), min_fidelity=1, max_fidelity=max_epochs,
                         eta=eta, n_workers=1, seed=seed, output_path=logs)
        number = 0
        while trace.used < budget:
            job = optimizer.ask()
            config = job["config"]
            hidden = [int(config[f"width_{i}"]) for i in range(int(config["depth"]))]
            net = EpochTrainer(data, hidden, float(config["lr"]), int(config["batch_size"]), seed * 10_000 + number,
                               float(config.get("weight_decay", 0.0)), recipe.label_smoothing)
            value, _ = net.train(trace, min(round(job["fidelity"]) * n_train, budget - trace.used))
            optimizer.tell(job, {"fitness": 1.0 - value, "cost": float(trace.used)})
            number += 1
    return trace
