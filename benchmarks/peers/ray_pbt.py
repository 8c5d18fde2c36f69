"""Ray Tune's PBT and ASHA as peers of evo, run by ``benchmarks/peers/optuna_alone.py`` (``--section peers-tune``).

PBT (Jaderberg et al. 2017) trains a population of one fixed MLP and, every iteration (one epoch),
lets the bottom quarter copy the weights of the top quarter and perturb its hyperparameters (lr,
batch size) — inheritance of weights, but never of shape (ray-project/ray#5788). ASHA (Li et al. 2020)
stops the weaker trials of the fixed-MLP space early. Both train with evo's trainer and plain Adam and
come back as a :class:`Trace` of every reported network, cut at the harness's sample-step budget. PBT's
exploit/explore draws from Python's global ``random`` (Ray's design), which is not seeded here, so its
runs are not bit-reproducible. Needs ``ray[tune]`` (benchmarks/peers/requirements.txt).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.peers.common import (
    BATCH_SIZES,
    MAX_DEPTH,
    MAX_WIDTH,
    MIN_WIDTH,
    Trace,
    accuracy,
    split,
)
from benchmarks.peers.fidelity import EpochTrainer
from evo.genome import Genome
from evo.plasticity import PlasticityConfig, train
from evo.tasks import Budget, Evaluation

HIDDEN = (128,)
POPULATION = 8
#: ASHA's longest training, as in the fixed-MLP space's 2–40 epochs.
MAX_EPOCHS = 40
_GENOME = "genome.pt"


def pbt_trainable(config: dict[str, Any]) -> None:
    """One PBT member: an epoch of training per iteration, reporting validation accuracy with a checkpoint."""
    from ray import tune

    data = split(config["dataset"])
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        genome, iteration = Genome.mlp(data.input_shape, HIDDEN, data.output_size, seed=config["init_seed"]), 0
    else:
        with checkpoint.as_directory() as folder:
            genome = Genome.load(Path(folder) / _GENOME)
            iteration = int((Path(folder) / "iteration").read_text())
    while True:
        plasticity = PlasticityConfig(lr=config["lr"], batch_size=config["batch_size"], epochs=1)
        result = train(genome, data.x_train, data.y_train, plasticity, seed=config["init_seed"] + iteration)
        genome, iteration = result.genome, iteration + 1
        _report(genome, accuracy(genome, data.x_val, data.y_val), result.samples, iteration)


def _report(genome: Genome, val_accuracy: float, samples: int, iteration: int) -> None:
    """Report one iteration to Tune with the network as its checkpoint (``at``: when, to order the trace)."""
    from ray import tune

    with tempfile.TemporaryDirectory() as folder:
        genome.save(Path(folder) / _GENOME)
        (Path(folder) / "iteration").write_text(str(iteration))
        tune.report({"val_accuracy": val_accuracy, "samples": samples, "at": time.time()},
                    checkpoint=tune.Checkpoint.from_directory(folder))


def _pbt_grid(seed: int, iterations: int, storage: Path, dataset: str) -> Any:
    """Fit one PBT run of ``iterations`` epochs per member; every iteration's checkpoint is kept."""
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator

    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=1,
                                  hyperparam_mutations={"lr": tune.loguniform(1e-4, 3e-2), "batch_size": list(BATCH_SIZES)})
    tuner = tune.Tuner(
        tune.with_resources(pbt_trainable, {"cpu": 1}),
        param_space={"lr": tune.loguniform(1e-4, 3e-2), "batch_size": tune.choice(list(BATCH_SIZES)),
                     "init_seed": tune.randint(0, 2**20), "dataset": dataset},
        tune_config=tune.TuneConfig(scheduler=pbt, num_samples=POPULATION, metric="val_accuracy", mode="max",
                                    search_alg=BasicVariantGenerator(random_state=seed)),
        run_config=tune.RunConfig(name=f"pbt-{dataset}-{seed}", storage_path=str(storage), verbose=0,
                                  stop={"training_iteration": iterations},
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=None)),
    )
    return tuner.fit()


def pbt_trace(dataset: str, seed: int, budget: int, storage: Path) -> Trace:
    """PBT for the whole iterations that cover ``budget`` sample-steps, as a :class:`Trace` cut at the budget."""
    iterations = max(1, math.ceil(budget / (POPULATION * len(split(dataset).x_train))))
    return trace_of(_pbt_grid(seed, iterations, storage, dataset), budget)


def asha_trainable(config: dict[str, Any]) -> None:
    """One ASHA trial: a fixed MLP trained epoch by epoch (one Adam for its life), reporting each epoch."""
    data = split(config["dataset"])
    hidden = [config[f"width_{i}"] for i in range(config["depth"])]
    net = EpochTrainer(data, hidden, config["lr"], config["batch_size"], config["init_seed"])
    for epoch in range(1, MAX_EPOCHS + 1):
        evaluation = net.evaluation(net.epoch(len(data.x_train)))
        assert evaluation.genome is not None
        _report(evaluation.genome, evaluation.metrics["val_accuracy"], evaluation.budget_used.samples, epoch)


def asha_trace(dataset: str, seed: int, budget: int, storage: Path) -> Trace:
    """Ray Tune's ASHA (Li et al. 2020) over the fixed-MLP space, 1–40 epochs, η = 3, until ``budget``."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    space: dict[str, Any] = {f"width_{i}": tune.lograndint(MIN_WIDTH, MAX_WIDTH + 1) for i in range(MAX_DEPTH)}
    space.update(depth=tune.randint(1, MAX_DEPTH + 1), lr=tune.loguniform(1e-4, 3e-2), dataset=dataset,
                 batch_size=tune.choice(list(BATCH_SIZES)), init_seed=tune.randint(0, 2**20))
    asha = ASHAScheduler(time_attr="training_iteration", max_t=MAX_EPOCHS, grace_period=1, reduction_factor=3)
    trials = budget // len(split(dataset).x_train) + 2  # each trial trains at least one epoch
    tuner = tune.Tuner(
        tune.with_resources(asha_trainable, {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(scheduler=asha, num_samples=trials, metric="val_accuracy", mode="max",
                                    search_alg=BasicVariantGenerator(random_state=seed)),
        run_config=tune.RunConfig(name=f"asha-{dataset}-{seed}", storage_path=str(storage), verbose=0,
                                  stop=budget_stopper(budget), checkpoint_config=tune.CheckpointConfig(num_to_keep=None)),
    )
    return trace_of(tuner.fit(), budget)


def budget_stopper(budget: int) -> Any:
    """A Tune stopper that ends the whole experiment once its trials reported ``budget`` sample-steps in all."""
    from ray.tune import Stopper

    class BudgetStopper(Stopper):
        used = 0

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            self.used += int(result["samples"])
            return False

        def stop_all(self) -> bool:
            return self.used >= budget

    return BudgetStopper()


def trace_of(grid: Any, budget: int) -> Trace:
    """Every iteration any trial reported, in the order reported, as a trace cut at ``budget``.

    Each report is charged its sample-steps; its network comes from the checkpoint it was reported with,
    where Tune kept one (a report without one still costs its budget). A report that Tune's concurrent
    trials made after the budget was spent is not counted.
    """
    reports, networks = [], {}
    for result in grid:
        if result.metrics_dataframe is not None and "at" in result.metrics_dataframe:  # else: never started
            reports += result.metrics_dataframe[["at", "samples", "val_accuracy"]].itertuples(index=False)
        networks.update({metrics["at"]: checkpoint for checkpoint, metrics in result.best_checkpoints or ()})
    trace = Trace()
    for at, samples, val in sorted(reports):
        if trace.used >= budget:
            break
        genome = None
        if at in networks:
            with networks[at].as_directory() as folder:
                genome = Genome.load(Path(folder) / _GENOME)
        trace.add(Evaluation(-1, {"val_accuracy": val}, genome, {"val_accuracy": float(val)}, Budget(samples=int(samples))))
    return trace
