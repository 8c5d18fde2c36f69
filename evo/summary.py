"""What the end of ``evo run`` / ``evo resume`` says: the network chosen and how, its test score and size,
what the other tested individuals are, where the run is, the next commands — and two plots in the run.

Example:
    >>> print("\\n".join(summary_lines(result, Path("runs/demo"), plots=[])))  # doctest: +SKIP
    done: runs/demo (30 generations, 496 individuals evaluated)
    chosen: #412 64→96→relu→10 (7,210 parameters), the best by val_accuracy (validation split: ...
    ...
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evo.records import Individual
from evo.types import Direction, Objective

if TYPE_CHECKING:
    from evo.evolution import RunResult
    from evo.inspect import RunView

__all__ = ["PLOTS", "plot_paths", "run_json", "summary_lines", "write_plots"]

#: the plots a finished run holds, by file name.
PLOTS = ("fitness.png", "front.png")
_SIZE = Objective("parameters", Direction.MINIMIZE)


def _fmt(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _rank_label(rank: int) -> str:
    """How the ``rank``-th tested individual came to be tested (rank 1 is the chosen one)."""
    if rank == 2:
        return "the runner-up"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(rank if rank < 20 else rank % 10, "th")
    return f"the {rank}{suffix} best"


def summary_lines(result: RunResult, run_dir: Path, plots: list[Path]) -> list[str]:
    """The lines the CLI prints when a run ends (plain text: no markup)."""
    best = result.best
    primary = next(iter(best.objectives), "fitness")
    lines = [
        f"done: {run_dir} ({len(result.history) - 1} generations after the initial population, "
        f"{len(result.individuals)} individuals evaluated)",
        f"chosen: #{best.id} {best.genome} ({best.genome.num_params():,} parameters), the best by {primary}"
        f"{' (validation split: the test split never chose)' if primary.startswith('val') else ''}: "
        f"{_fmt(best.objectives)}",
    ]
    tested = list(result.test.items())
    if best.id in result.test:
        lines.append(f"  test: {_fmt(result.test[best.id])}")
    else:
        lines.append("  test: none (this task has no test split)" if not tested else "  test: not measured")
    others = [(rank, ind_id, metrics) for rank, (ind_id, metrics) in enumerate(tested, start=1) if ind_id != best.id]
    if others:
        lines.append("also tested (the next best by validation; the chosen one stays the choice):")
        for rank, ind_id, metrics in others:
            ind = result.individuals.get(ind_id)
            shape = f"{ind.genome} ({ind.genome.num_params():,} parameters)" if ind is not None else ""
            lines.append(f"  #{ind_id} {_rank_label(rank)}: {shape} test {_fmt(metrics)}")
    if plots:
        lines.append("plots: " + ", ".join(str(p) for p in plots))
    lines += [
        "next:",
        f"  evo show {run_dir}      progress per generation, the best individuals, --lineage ID",
        f"  evo export {run_dir}    the chosen network as TorchScript (--format onnx|state_dict|exported_program)",
        "  evo dashboard          every individual in optuna-dashboard (unless run with --no-mirror)",
    ]
    return lines


def run_json(result: RunResult, run_dir: Path) -> dict[str, Any]:
    """``evo run --json``: one object a script can read."""
    best = result.best
    return {
        "run_dir": str(run_dir),
        "best_id": best.id,
        "architecture": str(best.genome),
        "params": best.genome.num_params(),
        "objectives": best.objectives,
        "test": {str(k): v for k, v in result.test.items()},
        "generations": len(result.history),
    }


def write_plots(run: RunView) -> list[Path]:
    """Best fitness per generation, and every individual's primary objective against its size with the
    Pareto front marked, as PNGs in the run directory (matplotlib is imported here, and only here)."""
    from evo.viz import plot_fitness, plot_pareto

    root = run.store.root
    primary = run.objectives[0]
    paths = []
    if run.history and primary.name in run.history[0].best_objectives:  # else every individual so far failed
        paths.append(plot_fitness(run.history, root / PLOTS[0], primary.name))
    sized = [_with_size(ind, primary.name) for ind in run.individuals.values() if ind.evaluation is not None]
    if any(ind.evaluation is not None and ind.evaluation.ok for ind in sized):
        paths.append(plot_pareto(sized, [primary, _SIZE], root / PLOTS[1]))
    return paths


def plot_paths(run: RunView) -> list[Path]:
    """The run's plots, drawn now if the run has none yet (a run made by the API, or before plots existed)."""
    paths = [run.store.root / name for name in PLOTS]
    if not paths[0].exists():
        try:
            return write_plots(run)
        except OSError:  # a run someone else owns, on a read-only disk: show it without plots
            return []
    return [p for p in paths if p.exists()]


def _with_size(ind: Individual, primary: str) -> Individual:
    """``ind`` with two objectives: its primary one and its parameter count."""
    assert ind.evaluation is not None
    value = ind.objectives.get(primary, math.nan)
    evaluation = dataclasses.replace(ind.evaluation, objectives={primary: value, _SIZE.name: float(ind.genome.num_params())})
    return dataclasses.replace(ind, evaluation=evaluation)
