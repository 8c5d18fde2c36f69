"""The ``evo`` command. Thin: parses arguments, validates, calls the library.

User mistakes (bad config, bad file, bad argument) end in one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

import evo
from evo.records import Reporter

if TYPE_CHECKING:
    from evo.config import EvoConfig
    from evo.evolution import RunResult

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Neuroevolution with networks that grow and shrink.")
console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Report a user error in one line and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        console.print(f"evo {evo.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """evo: neuroevolution and architecture search for PyTorch."""


def run() -> None:  # pragma: no cover - console-script entry point
    sys.exit(app())


_SET_HELP = "Dotted override, e.g. --set evolution.generations=5 (repeatable)."


def _load(config: Path | None, sets: list[str], extra: dict[str, object]) -> EvoConfig:
    from evo.config import ConfigError, load_config

    overrides = list(sets) + [f"{k}={v}" for k, v in extra.items() if v is not None]
    try:
        return load_config(config, overrides)
    except ConfigError as err:
        fail(str(err))


@app.command()
def run(
    config: Path = typer.Argument(..., help="YAML config, e.g. configs/digits_mlp.yaml."),
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
    name: str | None = typer.Option(None, help="Run name: the directory under --runs-dir."),
    seed: int | None = typer.Option(None, help="Run seed (overrides evolution.seed)."),
    backend: str | None = typer.Option(None, help="ray (default) or serial."),
    address: str | None = typer.Option(None, help="Join a Ray cluster: auto, HOST:6379 or ray://HOST:10001."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run directories are created."),
) -> None:
    """Evolve a population as the config says; writes runs/<name>/."""
    cfg = _load(config, set_, {"evolution.seed": seed, "backend.kind": backend, "backend.address": address})
    run_name = name or cfg.name or f"{config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    from evo.evolution import run_evolution

    _execute(lambda reporters: run_evolution(cfg, run_dir=runs_dir / run_name, reporters=reporters), cfg, runs_dir / run_name)


@app.command()
def resume(
    run_dir: Path = typer.Argument(..., help="A run directory, e.g. runs/digits_mlp-20260101-120000."),
    set_: list[str] = typer.Option([], "--set", help="Extend the run, e.g. --set evolution.generations=20."),
) -> None:
    """Continue a run that was interrupted (or extend a finished one)."""
    from evo.config import ConfigError, load_config
    from evo.store import RunStore

    try:
        cfg = load_config(RunStore.open(run_dir).config_path, set_)
    except (ConfigError, ValueError) as err:
        fail(str(err))
    from evo.evolution import resume_evolution

    _execute(lambda reporters: resume_evolution(run_dir, set_, reporters=reporters), cfg, run_dir)


def _execute(start: Callable[[list[Reporter]], RunResult], cfg: EvoConfig, run_dir: Path) -> None:
    """Run with a progress bar; user errors become one line and exit 2, Ctrl-C says how to resume."""
    from evo.progress import ProgressReporter

    progress = ProgressReporter(cfg.evolution.children or cfg.evolution.population_size, console)
    try:
        result = start([progress])
    except ValueError as err:
        progress.close()
        fail(str(err))
    except KeyboardInterrupt:
        progress.close()
        err_console.print(f"interrupted — continue with: evo resume {run_dir}")
        raise typer.Exit(130) from None
    progress.close()
    best = result.best
    console.print(f"[bold green]done[/] {run_dir}: best #{best.id} {best.genome}  {_fmt(best.objectives)}")
    for ind_id, metrics in result.test.items():
        console.print(f"  test #{ind_id}: {_fmt(metrics)}")


def _fmt(values: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


@app.command()
def show(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    top: int = typer.Option(10, help="How many of the best individuals to list."),
    lineage: int | None = typer.Option(None, "--lineage", help="Show the family tree of this individual (and write an SVG)."),
) -> None:
    """Progress per generation, the best individuals, and lineage."""
    from rich.table import Table

    from evo.inspect import load_run

    try:
        run = load_run(run_dir)
    except ValueError as err:
        fail(str(err))
    table = Table(title=f"{run_dir} — generations")
    for col in ("gen", "evaluated", "failed", "best", "objectives", "samples", "seconds"):
        table.add_column(col)
    for r in run.history:
        table.add_row(str(r.generation), str(len(r.evaluated)), str(r.failures), f"#{r.best_id}",
                      _fmt(r.best_objectives), str(r.budget_used.samples), f"{r.seconds:.1f}")
    console.print(table)
    best = Table(title="best individuals")
    for col in ("id", "gen", "architecture", "params", "objectives", "parents", "made by"):
        best.add_column(col)
    for ind in run.ranked()[:top]:
        best.add_row(str(ind.id), str(ind.generation), str(ind.genome), str(ind.genome.num_params()),
                     _fmt(ind.objectives), ",".join(map(str, ind.parents)), "; ".join(ind.operators))
    console.print(best)
    if run.test:
        console.print("test: " + "  ".join(f"#{k}: {_fmt(v)}" for k, v in run.test.items()))
    if lineage is not None:
        _show_lineage(run, run_dir, lineage)


def _show_lineage(run: Any, run_dir: Path, individual_id: int) -> None:
    from rich.table import Table

    if individual_id not in run.individuals:
        fail(f"--lineage: no individual {individual_id} in {run_dir} (ids 0..{max(run.individuals)})")
    table = Table(title=f"lineage of #{individual_id}")
    for col in ("id", "gen", "made by", "architecture", "objectives"):
        table.add_column(col)
    for ind in run.lineage(individual_id):
        table.add_row(str(ind.id), str(ind.generation), "; ".join(ind.operators), str(ind.genome), _fmt(ind.objectives))
    console.print(table)
    try:
        from evo.viz import lineage_svg
    except ImportError:
        return
    path = run_dir / f"lineage_{individual_id}.svg"
    path.write_text(lineage_svg(run.individuals, individual_id, run.objectives[0].name))
    console.print(f"lineage diagram: {path}")


@app.command()
def ops() -> None:
    """List every operator with its parameters and whether it preserves the network's function."""
    from rich.table import Table

    from evo.operators import describe_operators

    table = Table(title="operators (use in a config as {op: NAME, prob: P, PARAM: VALUE})")
    for col in ("operator", "parameters (rule = default)", "preserves function", "note"):
        table.add_column(col)
    for row in describe_operators():
        table.add_row(row.name, row.params.replace("; ", "\n"), row.preserves, row.note)
    console.print(table)

