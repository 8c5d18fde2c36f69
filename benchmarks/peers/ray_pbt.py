"""Side by side: Ray Tune Population Based Training against Lamarckian evo on digits, at equal budget.

PBT (Jaderberg et al. 2017) trains a population of one fixed MLP and, every iteration (one epoch),
lets the bottom quarter copy the weights of the top quarter and perturb its hyperparameters (lr,
batch size) — inheritance of weights, but never of shape. evo's Lamarckian run (``evo run``:
population 8, one epoch per evaluation, random initial MLPs, the default DropIn/apoptosis operators,
fitness = validation accuracy) gets exactly the sample-steps PBT used. Both train with evo's trainer
and plain Adam; the best network is chosen on validation and measured once on test. PBT's own
exploit/explore draws from Python's global ``random`` (Ray's design), which is not seeded here, so its
runs are not bit-reproducible. Needs ``ray[tune]`` (benchmarks/peers/requirements.txt). Writes the
"peers-pbt" section of docs/benchmarks.md.

Run: ``.venv/bin/python -m benchmarks.peers.ray_pbt [--seeds 0 1 2] [--iterations 5]``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import torch

from benchmarks._report import machine, table, update_section
from benchmarks.peers.common import (
    BATCH_SIZES,
    MAX_DEPTH,
    MAX_WIDTH,
    MIN_WIDTH,
    SCRATCH,
    Trace,
    accuracy,
    evo_config,
    load_average,
    run_evolution_traced,
    split,
    stat_cell,
    summarize,
)
from benchmarks.peers.fidelity import EpochTrainer
from evo.genome import Genome
from evo.plasticity import PlasticityConfig, train
from evo.tasks import Budget, Evaluation

DATASET = "digits"
HIDDEN = (128,)
POPULATION = 8
#: ASHA's longest training, as in the fixed-MLP space's 2–40 epochs.
MAX_EPOCHS = 40
_GENOME = "genome.pt"


def pbt_trainable(config: dict[str, Any]) -> None:
    """One PBT member: an epoch of training per iteration, reporting validation accuracy with a checkpoint."""
    from ray import tune

    data = split(config.get("dataset", DATASET))
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


def _pbt_grid(seed: int, iterations: int, storage: Path, dataset: str = DATASET) -> Any:
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


def run_pbt(seed: int, iterations: int, storage: Path) -> dict[str, float]:
    """One PBT run; returns its best network's scores and the sample-steps every member trained in all."""
    grid = _pbt_grid(seed, iterations, storage)
    used = int(sum(r.metrics_dataframe["samples"].sum() for r in grid))
    best = grid.get_best_result(metric="val_accuracy", mode="max", scope="all")
    checkpoint = best.get_best_checkpoint("val_accuracy", "max")
    with checkpoint.as_directory() as folder:
        genome = Genome.load(Path(folder) / _GENOME)
    data = split(DATASET)
    return {"best_val": accuracy(genome, data.x_val, data.y_val), "best_test": accuracy(genome, data.x_test, data.y_test),
            "params": float(genome.num_params()), "used": float(used)}


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


def run_evo(seed: int, budget: int) -> dict[str, float]:
    """Lamarckian evo at ``budget`` sample-steps, fitness = validation accuracy only (like PBT's)."""
    trace: Trace = run_evolution_traced(evo_config(DATASET, budget, seed, objectives=("val_accuracy",)))
    s = summarize(trace, split(DATASET), 1.0, 0.0)
    return {"best_val": s.best_val, "best_test": s.best_test, "params": float(s.params), "used": float(s.used)}


def report(runs: Sequence[dict[str, dict[str, float]]], args: argparse.Namespace) -> str:
    n = len(split(DATASET).x_train)
    keys = ("best_test", "best_val", "params", "used", "seconds")
    rows = [[m] + [stat_cell([run[m][k] / (n if k == "used" else 1) for run in runs], 4) for k in keys]
            for m in ("Ray Tune PBT", "evo (Lamarckian)")]
    return "\n\n".join([
        (f"digits; seeds {list(args.seeds)}; load average (1/5/15 min) {load_average()}. PBT: {POPULATION} members of "
        f"a fixed MLP 64→{'→'.join(map(str, HIDDEN))}→10, {args.iterations} iterations of one epoch, "
        "exploit/explore every iteration (bottom quarter copies the top quarter's weights, perturbs lr and batch "
        "size), 2 members at a time (1 CPU each). evo: `evo run` with population 8, one epoch per evaluation, "
        "random initial MLPs (1–2 layers, widths 8–128), default operators, fitness = validation accuracy, "
        "stopped at the end of the generation that crosses PBT's budget (up to 8 epochs more); PBT's budget is the sum "
        "of the per-iteration sample-steps its members reported. Same trainer, plain Adam. Cells: median [mean ± 95% CI] over seeds."),
        table(["method", "best test acc", "its val acc", "its params", "epochs used", "seconds"], rows),
    ])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args(argv)
    import ray

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(machine(), "| load", load_average())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    runs = []
    try:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix="evo-bench-pbt-", dir=SCRATCH) as tmp:
                start = time.perf_counter()
                pbt = {**run_pbt(seed, args.iterations, Path(tmp)), "seconds": time.perf_counter() - start}
            start = time.perf_counter()
            evo = {**run_evo(seed, int(pbt["used"])), "seconds": time.perf_counter() - start}
            runs.append({"Ray Tune PBT": pbt, "evo (Lamarckian)": evo})
            print(f"seed {seed}: {runs[-1]}", flush=True)
    finally:
        ray.shutdown()
    body = report(runs, args)
    print(body)
    update_section("peers-pbt", "Peers: Ray Tune PBT vs Lamarckian evo (digits, equal budget)", body)


if __name__ == "__main__":
    main()
