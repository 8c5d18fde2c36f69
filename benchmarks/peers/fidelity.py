"""Multi-fidelity peers: Optuna TPE with its Hyperband pruner, as a careful Optuna user runs it.

A trial samples a fixed MLP and its training (the same space as the other baselines,
:func:`benchmarks.peers.common.fixed_mlp_trial`), then trains it one epoch at a time, reporting the
validation accuracy after each epoch; Optuna's ``HyperbandPruner`` stops unpromising trials early, so
the budget goes to the promising ones (Li et al. 2017). Training is the plain loop such a user writes:
one Adam optimiser kept for the whole trial (its moments are not reset between epochs), batches of the
trial's size, shuffled by a seeded generator. Every epoch's network counts as a point of the trace,
charged the sample-steps of that epoch, so the anytime curve and the front see a pruned trial's work.

Example:
    >>> import optuna
    >>> data = split("iris")  # doctest: +SKIP
    >>> trace = run_pruned_search(data, optuna.samplers.TPESampler(seed=0), budget=2_000, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
import torch
import torch.nn.functional as F

from benchmarks.peers.common import Trace, fixed_mlp_trial
from evo.genome import Genome
from evo.tasks import Budget, Evaluation
from evo.tasks.data import SplitData

__all__ = ["EpochTrainer", "run_pruned_search"]


class EpochTrainer:
    """A fixed MLP trained an epoch at a time, with one optimiser for its whole life."""

    def __init__(self, data: SplitData, hidden: Sequence[int], lr: float, batch_size: int, seed: int) -> None:
        self.data, self.batch_size = data, batch_size
        self.genome = Genome.mlp(data.input_shape, hidden, data.output_size, seed=seed)
        self.module = self.genome.to_module()
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=lr)
        self.shuffle = torch.Generator().manual_seed(seed)

    def epoch(self, max_samples: int) -> int:
        """One pass over the training split (or fewer samples, if the budget ends sooner); returns samples."""
        x, y = self.data.x_train, self.data.y_train
        order = torch.randperm(len(x), generator=self.shuffle)[:max_samples]
        self.module.train()
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(self.module(x[batch]), y[batch]).backward()
            self.optimizer.step()
        return len(order)

    def evaluation(self, samples: int) -> Evaluation:
        """The network as it is now, scored on validation and charged ``samples``."""
        self.module.eval()
        with torch.no_grad():
            val = float((self.module(self.data.x_val).argmax(1) == self.data.y_val).float().mean())
        trained = self.genome.from_module(self.module)
        return Evaluation(-1, {"val_accuracy": val}, trained, {"val_accuracy": val}, Budget(samples=samples))


def run_pruned_search(data: SplitData, sampler: optuna.samplers.BaseSampler, budget: int, seed: int,
                      pruner: optuna.pruners.BasePruner | None = None) -> Trace:
    """TPE (or any sampler) with a pruner over fixed MLPs, trained epoch by epoch, until ``budget`` sample-steps.

    Args:
        pruner: default ``HyperbandPruner(min_resource=1, max_resource=40, reduction_factor=3)`` — one
            resource unit is one epoch, 40 the space's longest training.
        seed: seeds every network's initialisation and shuffling (per trial: ``seed * 10_000 + number``).
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
        spec = fixed_mlp_trial(trial, n_train, budget - trace.used)
        net = EpochTrainer(data, spec["hidden"], spec["lr"], spec["batch_size"], seed * 10_000 + trial.number)
        epochs, left, value, state = 0, int(spec["samples"]), 0.0, optuna.trial.TrialState.COMPLETE
        while left > 0:
            done = net.epoch(min(left, n_train))
            left -= done
            epochs += 1
            evaluation = net.evaluation(done)
            trace.add(evaluation)
            value = evaluation.metrics["val_accuracy"]
            trial.report(value, epochs)
            if left > 0 and trial.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
        study.tell(trial, value if state is optuna.trial.TrialState.COMPLETE else None, state=state)
    return trace
