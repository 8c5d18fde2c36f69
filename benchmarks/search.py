"""Benchmark: an evo search against plain Optuna TPE and random search on digits, at equal training budget.

evo: ``evo search`` (``evo.tuning.run_search``) with ``search_spaces/plasticity.yaml`` over
``configs/digits_mlp.yaml``: each of ``--trials`` trials is one Lamarckian evolution run capped at
``--trial-epochs`` epochs of training (``evolution.max_samples``), one epoch per evaluation, serial.
Every method sees the same data: standardised like that config (``--no-standardize``: raw pixels),
without its shift augmentation.
The baselines get exactly the sample-steps the evo search used: Optuna TPE and random search over
fixed MLPs (depth 1–3, widths 8–256, lr, batch size, 2–40 epochs), each trained from scratch with
evo's trainer and plain Adam (no growth, no pruning). Every method's best network is chosen on the
validation split and measured once on the test split. Writes the "search" section of docs/benchmarks.md.

Run: ``.venv/bin/python -m benchmarks.search [--seeds 0 1 2 3 4] [--trials 20] [--trial-epochs 60]``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
import torch

from benchmarks._report import machine, table, update_section
from benchmarks.peers.common import (
    SCRATCH,
    RecordingBackend,
    Summary,
    Trace,
    fmt,
    load_average,
    median,
    run_fixed_search,
    stat_cell,
    summarize,
)
from evo.backends import SerialBackend
from evo.config import load_config
from evo.tuning import load_space, run_search
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.data import SplitData, load_dataset

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.97
EVO, EVO_SAMPLED, TPE, TPE_START = "evo search", "evo search, first trial sampled", "Optuna TPE", "Optuna TPE, first trial given"
PEERS = (TPE, TPE_START, "random search")
METHODS = (EVO, EVO_SAMPLED, *PEERS)
#: the fixed-MLP trial a careful Optuna user would queue first: the base config's values where the MLP space has
#: them (one layer, lr 0.003, batch 32), its widest layer (256; the config's 512 is outside the space), and the
#: epochs the log-scaled range 2–40 has in its middle (~9, rounded to 10).
TPE_FIRST = {"depth": 1, "width_0": 256, "lr": 0.003, "batch_size": 32, "epochs": 10}
FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def evo_search(data: SplitData, seed: int, trials: int, trial_epochs: int, workdir: Path, standardize: bool,
               base_first: bool = True) -> Trace:
    """A ``trials``-trial evo search (TPE sampler, median pruner), every evaluation charged to one trace;
    ``base_first``: its first trial runs the base config's values (``evo search``'s default)."""
    config = load_config(ROOT / "configs/digits_mlp.yaml", [
        "backend.kind=serial", f"task.standardize={str(standardize).lower()}", "task.augment_shift=0",
        "plasticity.epochs=1",
        "evolution.generations=1000",
        "evolution.test_top_k=0",
        f"evolution.max_samples={trial_epochs * len(data.x_train)}", f"evolution.seed={seed}",
    ])
    trace = Trace()
    run_search(config, load_space(ROOT / "search_spaces/plasticity.yaml"), trials=trials, seed=seed,
               storage=f"sqlite:///{workdir}/search.db", study_name=f"bench-search-{seed}", runs_dir=workdir,
               mirror=False, backend=RecordingBackend(SerialBackend(threads=1), trace), base_first=base_first)
    return trace


def run_seed(data: SplitData, seed: int, trials: int, trial_epochs: int,
             standardize: bool) -> dict[str, tuple[Trace, Summary]]:
    """All three methods for one seed; the baselines' budget is what the evo search used."""
    def timed(run: Callable[[], Trace]) -> tuple[Trace, Summary]:
        start = time.perf_counter()
        trace = run()
        return trace, summarize(trace, data, TARGET, time.perf_counter() - start)

    out = {}
    for method, base_first in ((EVO, True), (EVO_SAMPLED, False)):
        with tempfile.TemporaryDirectory(prefix="evo-bench-search-", dir=SCRATCH) as tmp:
            out[method] = timed(lambda: evo_search(data, seed, trials, trial_epochs, Path(tmp), standardize, base_first))
    budget = out[EVO][0].used
    out[TPE] = timed(lambda: run_fixed_search(data, optuna.samplers.TPESampler(seed=seed), budget, seed))
    out[TPE_START] = timed(
        lambda: run_fixed_search(data, optuna.samplers.TPESampler(seed=seed), budget, seed, first=TPE_FIRST))
    out["random search"] = timed(
        lambda: run_fixed_search(data, optuna.samplers.RandomSampler(seed=seed + 1000), budget, seed))
    return out


def report(runs: Sequence[dict[str, tuple[Trace, Summary]]], n_train: int, args: argparse.Namespace) -> str:
    """The section's Markdown: results over seeds, anytime curve, targets."""
    def over_seeds(method: str, get: Callable[[Summary], float], digits: int = 4) -> str:
        return stat_cell([get(run[method][1]) for run in runs], digits)

    rows = [[m, over_seeds(m, lambda s: s.best_test), over_seeds(m, lambda s: s.best_val),
             over_seeds(m, lambda s: s.params, 3), over_seeds(m, lambda s: s.to_target / n_train, 3),
             over_seeds(m, lambda s: s.used / n_train, 4), over_seeds(m, lambda s: s.evaluations, 3),
             over_seeds(m, lambda s: s.seconds, 3)] for m in METHODS]
    anytime = [[m] + [fmt(median([run[m][0].best_at(f * run[m][0].used) for run in runs])) for f in FRACTIONS]
               for m in METHODS]
    to_target = {m: median([run[m][1].to_target for run in runs]) for m in METHODS}
    best_test = median([run[EVO][1].best_test for run in runs])
    ratio = to_target[EVO] / to_target[TPE]
    anytime_met = all(median([run[EVO][0].best_at(f * run[EVO][0].used) for run in runs])
                      >= max(median([run[m][0].best_at(f * run[m][0].used) for run in runs]) for m in PEERS)
                      for f in FRACTIONS[1:])
    return "\n\n".join([
        (f"digits (evo's split: {n_train} train / validation / test, seed 0); seeds {list(args.seeds)}; "
        f"load average (1/5/15 min) {load_average()}. Budgets in epochs of the training split "
        f"(1 epoch = {n_train} sample-steps); each cell: median [mean ± 95% CI] over seeds."),
        (f"evo: {args.trials}-trial `evo search` (TPE sampler, median pruner; its first trial runs the base config's "
        "own values, `evo search`'s default, or — the ablation — is sampled, `--no-base-first`) with "
        "search_spaces/plasticity.yaml "
        f"over configs/digits_mlp.yaml, inputs {'standardised' if args.standardize else 'raw'} and not augmented for "
        "every method, "
        f"each trial capped at {args.trial_epochs} epochs (1 epoch per evaluation, serial). "
        "Baselines: the same total sample-steps, over fixed MLPs (depth 1–3, widths 8–256, lr, batch size, "
        "2–40 epochs) trained from scratch with evo's trainer and plain Adam; TPE at Optuna's defaults "
        "(10 random start-up trials), and TPE whose first trial is queued as a careful user would, at the base "
        f"config's values where the MLP space has them: {TPE_FIRST}. The baselines' budget is what the evo search "
        "(base config first) used. Best network chosen on validation, measured once on test."),
        table(["method", "best test acc", "its val acc", "its params", f"epochs to {TARGET:.0%} val",
               "epochs used", "networks trained", "seconds"], rows),
        "Anytime curve — best validation accuracy within a share of the method's budget (median over seeds):",
        table(["method"] + [f"{f:.0%} of budget" for f in FRACTIONS], anytime),
        (f"Targets: evo reaches {TARGET:.0%} validation accuracy with ≤ ½ of Optuna TPE's budget — "
        f"measured ratio {_fmt(ratio)} ({'met' if ratio <= 0.5 else 'not met'}; against TPE with its first trial given: "
        f"{_fmt(to_target[EVO] / to_target[TPE_START])}); evo's best test accuracy ≥ 99% — "
        f"measured {best_test:.4f} ({'met' if best_test >= 0.99 else 'not met'}); evo's anytime curve at or above "
        f"every peer's at 25%, 50% and 100% of the budget: {'met' if anytime_met else 'not met'}."),
    ])


def _fmt(value: float) -> str:
    return "n/a (a method never reached the target)" if math.isnan(value) else f"{value:.2f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=20)
    # 60: a trial must afford a few generations beyond its initial population (4–16 networks, one epoch each)
    parser.add_argument("--trial-epochs", type=int, default=60)
    parser.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                        help="standardise the inputs for every method (the shipped config does)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset(SupervisedTaskConfig(dataset="digits", standardize=args.standardize))
    print(machine(), "| load", load_average())
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(data, seed, args.trials, args.trial_epochs, args.standardize))
        summaries = "; ".join(f"{m}: {s}" for m, (_, s) in runs[-1].items())
        print(f"seed {seed} (load {load_average()}): {summaries}", flush=True)
    body = report(runs, len(data.x_train), args)
    print(body)
    update_section("search", "Search: evo vs plain Optuna TPE vs random search (digits, equal budget)", body)


if __name__ == "__main__":
    main()
