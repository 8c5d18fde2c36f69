"""Side by side: Optuna alone (TPE, NSGA-II) and random search over fixed MLPs against evo, at equal budget.

On digits, wine, breast cancer, the synthetic 100-feature task and MNIST-1D (flat), for several seeds: evo (``evo run``
— the budget is too small for a whole search — with Lamarckian inheritance, and the Darwinian ablation
that re-initialises every child) against fixed MLPs trained from scratch with evo's trainer and plain
Adam, sampled by Optuna TPE (validation accuracy; also with its Hyperband pruner, see
benchmarks/peers/fidelity.py), Optuna NSGA-II (validation accuracy, parameters)
and random search; TPE, TPE + Hyperband and DEHB also train with label smoothing and a searched weight decay, the
regularisers of evo's last ablation row. Each dataset's budget is ``--epochs`` epochs of its training split, in sample-steps;
the baselines and the ablation get exactly what Lamarckian evo used. Reported: best test accuracy
(network chosen on validation), its parameters, the budget to first reach a target validation
accuracy, the hypervolume of the validation front measured on test as (test error, log10 params)
against the reference (1, 6), and for the ablation the anytime curve and the train–validation gap.
Writes the "peers-optuna" section of docs/benchmarks.md.

Run: ``make peers && PYTHONPATH=. .venv-peers/bin/python -m benchmarks.peers.optuna_alone [--seeds 0 1 2 3 4]
[--epochs 60] [--datasets ...] [--skip ...] [--section peers-tune] [--no-doc]`` (DEHB and Ray Tune need the peers'
venv; ``--section peers-tune`` writes a run of the Ray Tune peers on their own to a section of its own; ``--no-doc``
only prints, e.g. a check of the same rows on other seeds).
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import optuna
import torch

from benchmarks._report import machine, table, update_section
from benchmarks.peers.common import (
    DATASETS,
    PLAIN,
    REFERENCE,
    REGULARISED,
    SCRATCH,
    Recipe,
    Summary,
    Trace,
    accuracy,
    evo_config,
    fmt,
    load_average,
    median,
    run_evolution_traced,
    run_fixed_search,
    split,
    stat_cell,
    summarize,
)
from benchmarks.peers.fidelity import run_dehb, run_pruned_search
from benchmarks.peers.ray_pbt import asha_trace, pbt_trace

#: validation accuracy whose first attainment is timed, per dataset (validation splits: 216/22/69/240 samples).
TARGETS = {"digits": 0.97, "wine": 0.95, "breast_cancer": 0.97, "synthetic": 0.7, "mnist1d": 0.7}
LAMARCK, DARWIN = "evo (Lamarckian)", "evo (Darwinian)"
#: evo with one of issue 19's mechanisms switched on (each an ablation row; see docs/concepts.md).
HYPER, HALVING, LEMONADE = "evo + hyperparameter genes", "evo + successive halving", "evo + LEMONADE parents"
#: two switches together: halving, and the label smoothing the shipped digits config trains with
HALVING_SMOOTH = "evo + successive halving + label smoothing"
#: and a third: weight decay as each individual's gene, so a lineage finds the data set's regularisation
HALVING_DECAY = "evo + halving + label smoothing + weight-decay gene"
CARRY = "evo + optimizer state carried"
#: docs/benchmarks.md sections this script writes (``--section``) and their titles.
SECTIONS = {"peers-optuna": "Peers: Optuna alone and random search vs evo (equal budget)",
            "peers-tune": "Peers: Ray Tune PBT and ASHA vs evo in the same harness (equal budget)"}
TPE_HB, DEHB, PBT, ASHA = "Optuna TPE + Hyperband", "DEHB", "Ray Tune PBT", "Ray Tune ASHA"
#: peers that need the peers' venv (make peers): left out, and said so, where their package is missing.
#: the strongest fixed-MLP peers trained as evo's regularised row trains (label smoothing 0.1, weight decay searched)
REGULARISED_PEERS = {name: f"{name} (label smoothing, weight decay searched)" for name in ("Optuna TPE", TPE_HB, DEHB)}
OPTIONAL = {DEHB: "dehb", REGULARISED_PEERS[DEHB]: "dehb", PBT: "ray.tune", ASHA: "ray.tune"}
METHODS = (LAMARCK, DARWIN, HYPER, HALVING, LEMONADE, CARRY, HALVING_SMOOTH, HALVING_DECAY, "Optuna TPE", TPE_HB,
           "Optuna NSGA-II", "random search", DEHB, *REGULARISED_PEERS.values(), PBT, ASHA)
FRACTIONS = (0.25, 0.5, 1.0)

Cell = dict[str, tuple[Trace, Summary]]


def run_cell(dataset: str, seed: int, epochs: int, skip: Collection[str] = ()) -> Cell:
    """Every method (but ``skip``) on one dataset and seed; all but Lamarckian evo get exactly the budget it used."""
    data = split(dataset)
    target = TARGETS[dataset]

    def timed(run: Callable[[], Trace]) -> tuple[Trace, Summary]:
        start = time.perf_counter()
        trace = run()
        return trace, summarize(trace, data, target, time.perf_counter() - start)

    out = {LAMARCK: timed(lambda: run_evolution_traced(evo_config(dataset, epochs * len(data.x_train), seed)))}
    budget = out[LAMARCK][0].used

    def fixed(sampler: optuna.samplers.BaseSampler, multi: bool = False, recipe: Recipe = PLAIN) -> Callable[[], Trace]:
        return lambda: run_fixed_search(data, sampler, budget, seed, multi_objective=multi, recipe=recipe)

    def evo(**kwargs: Any) -> Callable[[], Trace]:
        return lambda: run_evolution_traced(evo_config(dataset, budget, seed, **kwargs))

    def tune(run: Callable[[str, int, int, Path], Trace]) -> Callable[[], Trace]:
        def in_scratch() -> Trace:
            with tempfile.TemporaryDirectory(prefix="evo-bench-tune-", dir=SCRATCH) as tmp:
                return run(dataset, seed, budget, Path(tmp))
        return in_scratch

    methods: dict[str, Callable[[], Trace]] = {
        DARWIN: evo(lamarckian=False),
        **{name: evo(extra=extra) for name, extra in mechanisms(len(data.x_train)).items()},
        "Optuna TPE": fixed(optuna.samplers.TPESampler(seed=seed)),
        "Optuna NSGA-II": fixed(optuna.samplers.NSGAIISampler(seed=seed + 1000), multi=True),
        "random search": fixed(optuna.samplers.RandomSampler(seed=seed + 2000)),
        TPE_HB: lambda: run_pruned_search(data, optuna.samplers.TPESampler(seed=seed), budget, seed),
        DEHB: lambda: run_dehb(data, budget, seed),
        REGULARISED_PEERS["Optuna TPE"]: fixed(optuna.samplers.TPESampler(seed=seed), recipe=REGULARISED),
        REGULARISED_PEERS[TPE_HB]: lambda: run_pruned_search(data, optuna.samplers.TPESampler(seed=seed), budget, seed,
                                                             recipe=REGULARISED),
        REGULARISED_PEERS[DEHB]: lambda: run_dehb(data, budget, seed, recipe=REGULARISED),
        PBT: tune(pbt_trace),
        ASHA: tune(asha_trace),
    }
    for name, run in methods.items():
        if name not in skip and available(name):
            out[name] = timed(run)
    return out


def left_out(skip: Collection[str] = ()) -> str:
    """Sentences naming the peers this run did not measure, and why, or "" when all are there."""
    missing = [m for m in OPTIONAL if not available(m)]
    skipped = [m for m in METHODS if m in skip and m not in missing]
    return " ".join(filter(None, [
        f"Left out (their packages are not installed here; `make peers`): {', '.join(missing)}." if missing else "",
        f"Left out of this run (`--skip`): {', '.join(skipped)}." if skipped else "",
    ]))


def mechanisms(n_train: int) -> dict[str, list[str]]:
    """The overrides that switch each mechanism on in the peers' evo run (one epoch per evaluation), and one pair.

    Halving spreads an epoch's steps (batch 32) over three rungs, η = 3: every child trains a ninth of an
    epoch, the best third of them a third of an epoch in all, the best ninth a whole epoch — so a generation
    tries many more children (shrunk ones included) for the same budget. The label smoothing and the weight-decay
    gene's range are the regularised peers' (:data:`benchmarks.peers.common.REGULARISED`).
    """
    halving = [f"evolution.eval_steps={max(9, round(n_train / 32))}", "evolution.halving.rungs=3",
               "evolution.halving.eta=3"]
    smoothed = [*halving, f"plasticity.label_smoothing={REGULARISED.label_smoothing}"]
    return {
        HYPER: ["evolution.hyper.genes=[lr,weight_decay,dropout,batch_size]"],
        HALVING: halving,
        LEMONADE: ["evolution.selection=lemonade"],
        CARRY: ["plasticity.carry_optimizer=true"],
        HALVING_SMOOTH: smoothed,
        HALVING_DECAY: [*smoothed, "evolution.hyper.genes=[weight_decay]",
                        f"evolution.hyper.ranges={{weight_decay: {list(REGULARISED.weight_decay)}}}"],
    }


def available(method: str) -> bool:
    """Whether a peer can run here: an optional one needs its package (ray.tune raises ImportError without pandas)."""
    if method not in OPTIONAL:
        return True
    try:
        importlib.import_module(OPTIONAL[method])
    except ImportError:
        return False
    return True


def train_val_gap(trace: Trace, dataset: str) -> float:
    """Training minus validation accuracy of the run's best network (overfitting of what selection picked)."""
    data, best = split(dataset), trace.best()
    assert best.genome is not None
    return accuracy(best.genome, data.x_train, data.y_train) - best.val_accuracy


def main_rows(dataset: str, cells: Sequence[Cell]) -> list[list[str]]:
    n = len(split(dataset).x_train)

    def over(method: str, get: Callable[[Summary], float], digits: int = 4) -> str:
        return stat_cell([get(cell[method][1]) for cell in cells], digits)

    return [[dataset, m, over(m, lambda s: s.best_test), over(m, lambda s: s.params, 3),
             over(m, lambda s: s.to_target / n, 3), over(m, lambda s: s.hypervolume),
             over(m, lambda s: s.evaluations, 3), over(m, lambda s: s.seconds, 3)] for m in cells[0]]


def ablation_rows(dataset: str, cells: Sequence[Cell]) -> list[list[str]]:
    n = len(split(dataset).x_train)
    rows = []
    for m in (m for m in cells[0] if m.startswith("evo")):
        traces = [cell[m][0] for cell in cells]
        used = median([t.used / n for t in traces])
        curve = [fmt(median([t.best_at(f * t.used) for t in traces])) for f in FRACTIONS]
        rows.append([dataset, m, f"{used:.0f}", *curve, stat_cell([train_val_gap(t, dataset) for t in traces], 3)])
    return rows


def verdicts(results: dict[str, list[Cell]]) -> list[str]:
    """Per dataset: Lamarckian evo's median hypervolume against the best peer's (the front target)."""
    lines = []
    for dataset, cells in results.items():
        hv = {m: median([cell[m][1].hypervolume for cell in cells]) for m in cells[0]}
        rival = max((m for m in cells[0] if not m.startswith("evo")), key=lambda m: hv[m])
        lines.append(f"- {dataset}: evo {hv[LAMARCK]:.4f} vs best baseline ({rival}) {hv[rival]:.4f} — "
                     f"{'evo ahead' if hv[LAMARCK] > hv[rival] else 'evo not ahead'}")
    return lines


def scoreboard(results: dict[str, list[Cell]]) -> list[list[str]]:
    """Per evo row: on how many data sets its median hypervolume, and its median best test accuracy, are at
    least every peer's (issue 19's targets: 4 of 5 each)."""
    def wins(method: str, get: Callable[[Summary], float]) -> list[str]:
        out = []
        for dataset, cells in results.items():
            value = {m: median([get(cell[m][1]) for cell in cells]) for m in cells[0]}
            if all(value[method] >= value[m] for m in cells[0] if not m.startswith("evo")):
                out.append(dataset)
        return out

    rows = []
    for method in (m for m in next(iter(results.values()))[0] if m.startswith("evo")):
        front, test = wins(method, lambda s: s.hypervolume), wins(method, lambda s: s.best_test)
        rows.append([method, f"{len(front)} of {len(results)} ({', '.join(front) or '—'})",
                     f"{len(test)} of {len(results)} ({', '.join(test) or '—'})"])
    return rows


def report(results: dict[str, list[Cell]], args: argparse.Namespace) -> str:
    budgets = ", ".join(f"{d} {args.epochs} × {len(split(d).x_train)}" for d in results)
    main = [row for d, cells in results.items() for row in main_rows(d, cells)]
    ablation = [row for d, cells in results.items() for row in ablation_rows(d, cells)]
    peers = any(not m.startswith("evo") for m in next(iter(results.values()))[0])  # none: only evo rows ran
    against = [
        "Front target — evo dominates the accuracy-vs-parameters front at equal budget (median hypervolume):",
        "\n".join(verdicts(results)),
        "Every evo row against every peer (median over seeds; ≥ every peer's counts as a win):",
        table(["evo", "hypervolume ≥ every peer's", "best test accuracy ≥ every peer's"], scoreboard(results)),
    ] if peers else []
    return "\n\n".join([
        (f"Seeds {list(args.seeds)}; load average (1/5/15 min) {load_average()}. Budget per method and run: "
        f"{args.epochs} epochs of the training split in sample-steps ({budgets}); the others get exactly what "
        "Lamarckian evo used (it stops at the end of the generation that crosses the budget). evo = `evo run` "
        "(too little budget for a search): population 8, one epoch per evaluation, random initial MLPs "
        "(1–2 layers, widths 8–128), default operators, objectives (val accuracy, params) → NSGA-II selection. "
        "Ablations, each one mechanism on: hyperparameter genes (lr, weight decay, dropout, batch size, PBT-style "
        "×0.8/×1.25 or resampled), successive halving in each generation (3 rungs, η = 3, an epoch's steps in "
        "all for the best ninth), LEMONADE parent sampling (inverse density of log parameters over the Pareto front), "
        "the optimiser state (Adam's moments) carried from parent to child through the operators' unit maps; and "
        "halving with label smoothing 0.1 (`plasticity.label_smoothing`, as `configs/digits_mlp.yaml` trains), and "
        "that pair with weight decay as a gene (`evolution.hyper.genes=[weight_decay]`, range 1e-5–0.1, drawn "
        "log-uniformly for the first population, ×0.8/×1.25 or resampled per child). "
        "Baselines: fixed MLPs (depth 1–3, widths 8–256, lr, batch size, 2–40 epochs) from scratch, plain Adam, "
        "same trainer; Optuna samplers at their defaults. \"(label smoothing, weight decay searched)\": TPE, "
        "TPE + Hyperband and DEHB trained with the regularisers of evo's last row — label smoothing 0.1 and weight "
        "decay (Adam's L2) as one more searched hyperparameter, log-uniform in 1e-5–0.1. Optuna TPE + Hyperband: the same space trained epoch by "
        "epoch in a plain loop (one Adam for the whole trial), Optuna's HyperbandPruner (1–40 epochs, η = 3) "
        "stopping trials early; each epoch's network is a point of its trace. DEHB (the `dehb` package at its "
        "defaults, η = 3): the same space with epochs (1–40) as its fidelity, each evaluation from scratch. Ray "
        "Tune PBT: 8 members of a fixed 128-unit MLP, one epoch per iteration, exploit/explore every iteration "
        "(lr, batch size); Ray Tune ASHA: the fixed-MLP space, 1–40 epochs, η = 3, one Adam per trial; both "
        "2 trials at a time and not bit-reproducible (Tune's concurrency and PBT's global random). Cells: median [mean ± 95% CI] over seeds."),
        (f"Targets (validation accuracy): {TARGETS}. Hypervolume: validation front, measured on test as "
        f"(test error, log10 params), reference {REFERENCE}; larger is better."),
        *filter(None, [left_out(args.skip)]),
        table(["dataset", "method", "best test acc", "its params", "epochs to target", "hypervolume",
               "networks trained", "seconds"], main),
        *against,
        ("Lamarckian vs Darwinian evo, and the mechanism ablations: anytime best validation accuracy (median) after a share of the cumulative "
        "epochs, and the best network's train − validation accuracy gap:"),
        table(["dataset", "method", "epochs", *[f"best val @ {f:.0%}" for f in FRACTIONS], "train − val gap"],
              ablation),
    ])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--skip", nargs="+", default=[], choices=[m for m in METHODS if m != LAMARCK],
                        help="methods to leave out of this run (the report says so), e.g. the slow Ray Tune peers")
    parser.add_argument("--section", choices=list(SECTIONS), default="peers-optuna",
                        help="the docs/benchmarks.md section written: the main table, or peers-tune for a run of "
                             "the slow Ray Tune peers on their own (e.g. --datasets digits --skip <the others>)")
    parser.add_argument("--no-doc", action="store_true",
                        help="print only; leave docs/benchmarks.md alone (e.g. a check on other seeds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(machine(), "| load", load_average())
    if missing := left_out(args.skip):
        print(missing)
    tune = available(PBT) and not {PBT, ASHA} <= set(args.skip)
    if tune:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    results: dict[str, list[Cell]] = {}
    try:
        for dataset in args.datasets:
            results[dataset] = []
            for seed in args.seeds:
                results[dataset].append(run_cell(dataset, seed, args.epochs, args.skip))
                print(f"{dataset} seed {seed}: " + "; ".join(
                    f"{m} test {s.best_test:.3f} params {s.params} hv {s.hypervolume:.3f} ({s.seconds:.0f}s)"
                    for m, (_, s) in results[dataset][-1].items()), flush=True)
            # written after each data set: a long run (the Ray Tune peers take hours) stopped part-way keeps
            # the data sets it finished, and the section says which ran
            if not args.no_doc:
                update_section(args.section, SECTIONS[args.section], report(results, args))
    finally:
        if tune:
            ray.shutdown()
    print(report(results, args))


if __name__ == "__main__":
    main()
