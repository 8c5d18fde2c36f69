"""Equal wall clock: `evo run` with a shipped config against a plain Optuna TPE script given the same seconds.

Issue 19's row "as users run both". For each data set and seed, ``evo run CONFIG --set evolution.seed=S --json``
runs as a subprocess with the CLI's defaults (Ray backend, Optuna mirror on); its wall clock T is the whole
command, start-up included, and its result is the network the run chose by validation, measured on test (the
``test`` entry of ``--json`` for ``best_id``). Then, in this process, what a careful user writes instead: one
Optuna TPE study (``study.optimize(objective, timeout=T)``: the trial in progress at T finishes) over fixed
networks in plain PyTorch — standardised inputs, MLPs (depth, widths, dropout; on MNIST-1D also a small 1-D
CNN family), AdamW (lr, weight decay) with a cosine schedule, batch size, epochs — with torch's default
threads, on exactly evo's train/validation/test split (the config's task, without its training-set
augmentation). Its choice: the trial with the best validation accuracy, ties by validation loss.

Example:
    >>> choose([Trial(0.9, 0.5, 0.8, 10), Trial(0.9, 0.3, 0.7, 20), Trial(0.8, 0.1, 0.95, 5)]).test_accuracy
    0.7
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from torch import nn
from torch.nn import functional as F

from benchmarks._report import ROOT, machine, table, update_section
from benchmarks.peers.common import SCRATCH, load_average, median
from evo.config import load_config
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.data import SplitData, load_dataset

CONFIGS = {"digits": "configs/digits_mlp.yaml", "mnist1d": "configs/mnist1d_cnn.yaml"}
#: the network families the Optuna script searches per data set (a user tries a CNN on signals).
FAMILIES = {"digits": ("mlp",), "mnist1d": ("mlp", "cnn")}
#: training passes a trial may ask for (log-uniform): evo's run time holds several trials, most of them short.
EPOCHS = {"digits": (5, 100), "mnist1d": (5, 30)}
#: a few seconds of evo and of Optuna: the script's plumbing end to end, no measurement.
SMOKE = ("evolution.generations=1", "evolution.population_size=2", "plasticity.epochs=1")
SMOKE_SECONDS, SMOKE_EPOCHS = 3.0, (1, 2)


@dataclass(frozen=True)
class Trial:
    """One finished Optuna trial: what chooses it (validation) and what it is reported by (test)."""

    val_accuracy: float
    val_loss: float
    test_accuracy: float
    params: int


@dataclass(frozen=True)
class Row:
    """One data set and seed: evo's run and the Optuna script's, on the same clock."""

    dataset: str
    seed: int
    evo_seconds: float
    evo_test: float
    evo_params: int
    trials: int
    optuna_seconds: float
    optuna_test: float
    optuna_params: int
    load: str


def choose(trials: Sequence[Trial]) -> Trial:
    """The user's pick: best validation accuracy, ties broken by lower validation loss."""
    return max(trials, key=lambda t: (t.val_accuracy, -t.val_loss))


def user_split(dataset: str) -> SplitData:
    """Evo's split of the config's task (same samples in train, validation and test), as a plain user feeds it:
    flat, standardised with training-split statistics, without evo's shifted training copies."""
    task = load_config(ROOT / CONFIGS[dataset]).task
    assert isinstance(task, SupervisedTaskConfig)
    return load_dataset(task.model_copy(update={"augment_shift": 0, "as_image": False, "standardize": True}))


# ----------------------------------------------------------------- evo, as users run it
def run_evo(dataset: str, seed: int, overrides: Sequence[str]) -> tuple[float, dict[str, Any]]:
    """``evo run`` as a subprocess: its wall seconds (start-up included) and its ``--json`` object."""
    # the console script of this interpreter's environment (make's .venv/bin is not on PATH), else PATH's
    evo = shutil.which("evo", path=str(Path(sys.executable).parent)) or shutil.which("evo")
    if evo is None:
        raise RuntimeError("the `evo` command is neither beside this Python nor on PATH (pip install -e . puts it there)")
    with tempfile.TemporaryDirectory(prefix="evo-wallclock-", dir=SCRATCH) as runs:
        command = [evo, "run", str(ROOT / CONFIGS[dataset]), "--set", f"evolution.seed={seed}",
                   *[a for o in overrides for a in ("--set", o)], "--runs-dir", runs, "--name", f"{dataset}-{seed}",
                   "--json"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------- the plain Optuna script
def build(trial: optuna.Trial, dataset: str, features: int, classes: int) -> nn.Module:
    """A fixed network: an MLP, or (MNIST-1D) conv blocks with BatchNorm and pooling, global average, linear."""
    family = trial.suggest_categorical("family", FAMILIES[dataset])
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    layers: list[nn.Module] = []
    if family == "mlp":
        width = features
        for i in range(trial.suggest_int("depth", 1, 3)):
            out = trial.suggest_int(f"width_{i}", 16, 1024, log=True)
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(dropout)]
            width = out
        return nn.Sequential(*layers, nn.Linear(width, classes))
    channels = trial.suggest_int("channels", 8, 64, log=True)
    kernel = trial.suggest_categorical("kernel", (3, 5, 7))
    width, length = 1, features
    for _ in range(trial.suggest_int("blocks", 1, 4)):
        layers += [nn.Conv1d(width, channels, kernel, padding=kernel // 2), nn.BatchNorm1d(channels), nn.ReLU()]
        if length >= 4:
            layers.append(nn.MaxPool1d(2))
            length //= 2
        width = channels
    return nn.Sequential(nn.Unflatten(1, (1, features)), *layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Dropout(dropout), nn.Linear(width, classes))


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean cross-entropy in eval mode."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
    return float((logits.argmax(1) == y).float().mean()), float(F.cross_entropy(logits, y))


def objective(trial: optuna.Trial, data: SplitData, dataset: str, seed: int, epochs: tuple[int, int]) -> float:
    """Train one sampled network from scratch; validation accuracy for TPE, the rest kept as user attributes."""
    torch.manual_seed(seed * 10_000 + trial.number)
    model = build(trial, dataset, data.input_shape[0], data.output_size)
    lr = trial.suggest_float("lr", 1e-4, 3e-2, log=True)
    decay = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    batch = trial.suggest_categorical("batch_size", (32, 64, 128, 256))
    passes = trial.suggest_int("epochs", *epochs, log=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, passes)
    for _ in range(passes):
        model.train()
        for index in torch.randperm(len(data.x_train)).split(batch):
            optimizer.zero_grad()
            F.cross_entropy(model(data.x_train[index]), data.y_train[index]).backward()
            optimizer.step()
        schedule.step()
    val_accuracy, val_loss = evaluate(model, data.x_val, data.y_val)
    trial.set_user_attr("trial", asdict(Trial(val_accuracy, val_loss, evaluate(model, data.x_test, data.y_test)[0],
                                              sum(p.numel() for p in model.parameters()))))
    return val_accuracy


def run_optuna(dataset: str, seed: int, seconds: float, epochs: tuple[int, int]) -> tuple[float, int, Trial]:
    """The study given ``seconds`` (the last trial finishes): its wall seconds, trials run, and its choice."""
    data = user_split(dataset)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    start = time.perf_counter()
    study.optimize(lambda trial: objective(trial, data, dataset, seed, epochs), timeout=seconds)
    elapsed = time.perf_counter() - start
    trials = [Trial(**t.user_attrs["trial"]) for t in study.trials if "trial" in t.user_attrs]
    return elapsed, len(study.trials), choose(trials)


def run_cell(dataset: str, seed: int, smoke: bool = False) -> Row:
    """evo, then the Optuna script on evo's seconds (a few seconds each in smoke mode)."""
    load = load_average()
    seconds, result = run_evo(dataset, seed, SMOKE if smoke else ())
    elapsed, trials, chosen = (run_optuna(dataset, seed, SMOKE_SECONDS, SMOKE_EPOCHS) if smoke
                               else run_optuna(dataset, seed, seconds, EPOCHS[dataset]))
    evo_test = float(result["test"][str(result["best_id"])]["test_accuracy"])
    return Row(dataset, seed, seconds, evo_test, int(result["params"]), trials, elapsed, chosen.test_accuracy,
               chosen.params, load)


# ----------------------------------------------------------------- report
def rows_table(rows: Sequence[Row]) -> str:
    body = [[r.dataset, r.seed, f"{r.evo_seconds:.0f}", f"{r.evo_test:.2%}", f"{r.evo_params:,}", r.trials,
             f"{r.optuna_seconds:.0f}", f"{r.optuna_test:.2%}", f"{r.optuna_params:,}", r.load] for r in rows]
    for dataset in dict.fromkeys(r.dataset for r in rows):
        own = [r for r in rows if r.dataset == dataset]
        med = {f: median([float(getattr(r, f)) for r in own]) for f in asdict(own[0]) if f not in ("dataset", "load")}
        body.append([f"{dataset} median", f"{len(own)} seed(s)", f"{med['evo_seconds']:.0f}", f"{med['evo_test']:.2%}",
                     f"{med['evo_params']:,.0f}", f"{med['trials']:.0f}", f"{med['optuna_seconds']:.0f}",
                     f"{med['optuna_test']:.2%}", f"{med['optuna_params']:,.0f}", ""])
    return table(["dataset", "seed", "evo s", "evo test acc", "evo params", "Optuna trials", "Optuna s",
                  "Optuna test acc", "its params", "load (1/5/15 min)"], body)


def verdicts(rows: Sequence[Row]) -> list[str]:
    """Per data set: is evo's median test accuracy ahead of the Optuna script's (issue 19's target)?"""
    lines = []
    for dataset in dict.fromkeys(r.dataset for r in rows):
        own = [r for r in rows if r.dataset == dataset]
        evo, peer = median([r.evo_test for r in own]), median([r.optuna_test for r in own])
        verdict = "evo ahead" if evo > peer else "evo not ahead" if evo < peer else "tied"
        lines.append(f"- {dataset}: evo {evo:.2%} vs Optuna {peer:.2%} (median of {len(own)} seed(s)) — {verdict}")
    return lines


def report(rows: Sequence[Row]) -> str:
    return "\n\n".join([
        ("Written by `python -m benchmarks.peers.wallclock --datasets D.. --seeds S.. --log ROWS.jsonl` (rows of "
         "several invocations gather in the log). Command per data set and seed: `evo run CONFIG --set evolution.seed=S --runs-dir TMP --name NAME --json` "
         f"as a subprocess with the CLI's defaults (Ray, Optuna mirror on; configs {', '.join(CONFIGS.values())}); "
         "evo s is that command's wall clock, start-up included; its test accuracy is the validation-chosen network's "
         "(`best_id` in the JSON). Then a plain Optuna TPE script in one process (torch's default threads) gets the "
         "same seconds: `study.optimize(objective, timeout=evo s)`, so the trial running at that moment finishes "
         "(Optuna s ≥ evo s; the script's own imports and data loading are not charged). Its space: standardised "
         "inputs; MLPs of 1–3 layers, widths 16–1024, dropout 0–0.5; on MNIST-1D also 1-D CNNs (1–4 conv blocks "
         "of 8–64 channels, kernel 3/5/7, BatchNorm, ReLU, max-pool 2, global average, linear); AdamW lr 1e-4–3e-2, "
         "weight decay 1e-6–0.1, cosine schedule, batch 32–256, epochs 5–100 (digits) / 5–30 (MNIST-1D); every net "
         "from scratch. Its pick: best validation accuracy, ties by validation loss; test chooses nothing. Same "
         "train/validation/test samples as evo (the config's task and split seed); evo's configs also train on "
         "shifted copies of the training split (`task.augment_shift`), the Optuna script on the plain split. The "
         "machine is shared with other jobs: load is the load average when the row started."),
        rows_table(rows),
        "Issue 19's target — evo ahead on the validation-chosen network's test accuracy at equal wall clock:",
        "\n".join(verdicts(rows)),
    ])


def read_log(path: Path | None) -> list[Row]:
    """Rows an earlier invocation appended (the same data set and seed: the latest wins)."""
    if path is None or not path.exists():
        return []
    rows = {(r.dataset, r.seed): r for r in (Row(**json.loads(line)) for line in path.read_text().splitlines() if line)}
    return list(rows.values())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--smoke", action="store_true", help="a generation of 2, 3 s of 1-2 epoch trials; writes no docs")
    parser.add_argument("--log", type=Path, help="JSON lines of rows: appended to, and all its rows reported")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(machine(), "| load", load_average(), flush=True)
    rows = []
    for seed in args.seeds:
        for dataset in args.datasets:
            row = run_cell(dataset, seed, args.smoke)
            print(json.dumps(asdict(row)), flush=True)
            rows.append(row)
            if args.log is not None and not args.smoke:
                with args.log.open("a") as log:
                    log.write(json.dumps(asdict(row)) + "\n")
    if args.log is not None and not args.smoke:
        rows = read_log(args.log)
    body = report(sorted(rows, key=lambda r: (r.dataset, r.seed)))
    print(body)
    if not args.smoke:
        update_section("peers-wallclock", "Equal wall clock: evo run against a plain Optuna script", body)


if __name__ == "__main__":
    main()
