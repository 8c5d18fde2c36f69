"""The ``evo`` command. Thin: parses arguments, validates, calls the library.

User mistakes (bad config, bad file, bad argument) end in one line on stderr and exit code 2.
"""

from __future__ import annotations

import errno
import importlib
import json
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

import evo
from evo import interrupts
from evo.errors import EvoError
from evo.paths import DEFAULT_RUNS_DIR

if TYPE_CHECKING:
    from evo.config import EvoConfig
    from evo.evolution import RunResult
    from evo.inspect import RunView
    from evo.runner import Mirror, Runner

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Neuroevolution with networks that grow and shrink.")
# The click exceptions typer raises (its own copy of click since typer 0.2x): from where BadParameter lives.
_clicks = importlib.import_module(typer.BadParameter.__module__)
_NoArgsIsHelp = getattr(_clicks, "NoArgsIsHelpError", ())
console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Report a user error in one line and exit with code 2."""
    _error_line(message)
    raise typer.Exit(2)


def _error_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


#: OS errors that the user's machine causes (full disk, no permission, read-only place), not evo.
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})


def _os_error_line(err: OSError) -> str:
    """``PATH: No space left on device`` — the path first, as the user will look for it."""
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or err}"


def _warning_line(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    """A warning as one line on stderr (``warning: ...``), without Python's source-line dump."""
    err_console.print(f"[bold yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"evo {evo.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """evo: neuroevolution and architecture search for PyTorch."""


_QUIET_HELP = "Print nothing but errors (no progress, no summary)."
_JSON_HELP = "Print only one JSON object at the end: run_dir, best_id, architecture, params, objectives, test."
_SET_HELP = "Dotted override, e.g. --set evolution.generations=5 (repeatable)."
_STORAGE_HELP = "Optuna storage URL for the mirror (default: sqlite:///<runs dir>/evo.db; a .log path = journal file)."


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
    runs_dir: Path = typer.Option(DEFAULT_RUNS_DIR, help="Where run directories are created."),
    storage: str | None = typer.Option(None, help=_STORAGE_HELP),
    mirror: bool = typer.Option(True, help="Mirror every evaluated individual into the Optuna storage."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_QUIET_HELP),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Evolve a population as the config says; writes runs/<name>/ and mirrors it for optuna-dashboard."""
    from evo.config import check_run_name
    from evo.runner import Runner, stamped

    cfg = _load(config, set_, {"evolution.seed": seed, "backend.kind": backend, "backend.address": address})
    if name is not None:
        try:
            check_run_name(name)
        except EvoError as err:
            fail(f"--name: {err}")
    run_dir = runs_dir / (name or cfg.name or stamped(config.stem))
    _execute(lambda: Runner.new(cfg, run_dir, mirror=_mirror(run_dir, runs_dir, storage) if mirror else None),
             quiet, as_json)


@app.command()
def resume(
    run_dir: Path = typer.Argument(..., help="A run directory, e.g. runs/digits_mlp-20260101-120000."),
    set_: list[str] = typer.Option([], "--set", help="Extend the run, e.g. --set evolution.generations=20."),
    storage: str | None = typer.Option(None, help=_STORAGE_HELP),
    mirror: bool = typer.Option(True, help="Mirror every evaluated individual into the Optuna storage."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_QUIET_HELP),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Continue a run that was interrupted (or extend a finished one)."""
    from evo.runner import Runner

    _execute(lambda: Runner.resume(run_dir, set_, mirror=_mirror(run_dir, run_dir.parent, storage) if mirror else None),
             quiet, as_json)


def _mirror(run_dir: Path, runs_dir: Path, storage: str | None) -> Mirror:
    """The Optuna mirror of this run: a study ``run:<name>`` in ``storage`` (default: the runs dir's), which
    optuna-dashboard shows (written from a process of the mirror's own, which keeps Optuna's news to itself)."""
    from evo.runner import Mirror

    return Mirror.of_run(run_dir, runs_dir, storage)


def _execute(make: Callable[[], Runner], quiet: bool = False, as_json: bool = False) -> None:
    """Run what ``make`` opens with a progress bar (evaluations/s, busy workers, ETA; one line per generation
    when not on a terminal), then say what came out; user errors become one line and exit 2."""
    try:
        runner = make()
    except EvoError as err:
        fail(str(err))
    with interrupts.stop_signals():  # also over the clean-up: a SIGTERM there still lets Ray stop its workers
        try:
            with runner:
                progress = runner.progress_bar(console)
                try:
                    result = runner.run([] if quiet or as_json else [progress])
                finally:
                    progress.close()
                plots = _plots(runner.run_dir)  # while the mirror writes its last batch (the runner's exit waits)
        except EvoError as err:
            fail(str(err))
        except KeyboardInterrupt:
            _interrupted(f"continue with: evo resume {runner.run_dir}" if runner.started else "the run had not started")
    _report(result, runner.run_dir, plots, quiet, as_json)


def _plots(run_dir: Path) -> list[Path]:
    """The end-of-run plots, drawn into the run directory."""
    from evo.inspect import load_run
    from evo.summary import write_plots

    return write_plots(load_run(run_dir))


def _report(result: RunResult, run_dir: Path, plots: list[Path], quiet: bool, as_json: bool) -> None:
    """The end of a run: the summary (or the JSON object, or nothing)."""
    from evo.summary import run_json, summary_lines

    if as_json:
        print(json.dumps(run_json(result, run_dir)))
    elif not quiet:
        for line in summary_lines(result, run_dir, plots):
            console.print(line, soft_wrap=True, highlight=False, markup=False)


def _interrupted(advice: str) -> NoReturn:
    """After Ctrl-C or SIGTERM: one line saying how to go on, and exit code 128 + the signal (130: Ctrl-C)."""
    err_console.print(f"interrupted — {escape(advice)}", highlight=False, soft_wrap=True)
    raise typer.Exit(128 + (interrupts.received() or signal.SIGINT))


def _fmt(values: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _per_rung(run: RunView, ids: Sequence[int]) -> str:
    """Successive halving at work in one generation: how many of its children trained in each rung (``16/5/1``;
    a child stopped at rung k trained in rungs 0..k)."""
    reached = [int(ind.evaluation.metrics.get("rung", 0)) for i in ids
               if (ind := run.individuals.get(i)) is not None and ind.evaluation is not None]
    return "/".join(str(sum(r >= k for r in reached)) for k in range(max(reached, default=0) + 1))


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
    except EvoError as err:
        fail(str(err))
    if lineage is not None and lineage not in run.individuals:  # before any output: the error stays the only line
        fail(f"--lineage: no individual {lineage} in {run_dir} (ids 0..{max(run.individuals)})")
    table = Table(title=f"{run_dir} — generations")
    halving = any("rung" in ind.evaluation.metrics for ind in run.individuals.values() if ind.evaluation)
    for col in ("gen", "evaluated", *(["trained per rung"] * halving), "failed", "best", "objectives", "samples",
                "seconds"):
        table.add_column(col)
    for r in run.history:
        table.add_row(str(r.generation), str(len(r.evaluated)), *([_per_rung(run, r.evaluated)] * halving),
                      str(r.failures), f"#{r.best_id}", _fmt(r.best_objectives), str(r.budget_used.samples),
                      f"{r.seconds:.1f}")
    console.print(table)
    best = Table(title="best individuals")
    ranked = run.ranked()[:top]
    genes = any(ind.genome.hparams for ind in ranked)  # evolution.hyper: each individual's own hyperparameters
    for col in ("id", "gen", "architecture", "params", "objectives", "parents", "made by", *(["hparams"] * genes)):
        best.add_column(col)
    for ind in ranked:
        best.add_row(str(ind.id), str(ind.generation), str(ind.genome), str(ind.genome.num_params()),
                     _fmt(ind.objectives), ",".join(map(str, ind.parents)), "; ".join(ind.operators),
                     *([_fmt(dict(ind.genome.hparams))] * genes))
    console.print(best)
    if run.test:
        console.print("test: " + "  ".join(f"#{k}: {_fmt(v)}" for k, v in run.test.items()))
    from evo.summary import plot_paths

    console.print("plots: " + ", ".join(str(p) for p in plot_paths(run)), soft_wrap=True, highlight=False)
    if lineage is not None:
        _show_lineage(run, run_dir, lineage)


def _show_lineage(run: RunView, run_dir: Path, individual_id: int) -> None:
    from rich.table import Table

    from evo.viz import lineage, lineage_svg

    table = Table(title=f"lineage of #{individual_id}")
    for col in ("id", "gen", "made by", "architecture", "objectives"):
        table.add_column(col)
    for ind in lineage(run.individuals, individual_id):
        table.add_row(str(ind.id), str(ind.generation), "; ".join(ind.operators), str(ind.genome), _fmt(ind.objectives))
    console.print(table)
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


@app.command()
def search(
    config: Path = typer.Argument(..., help="YAML config every trial starts from, e.g. configs/digits_mlp.yaml."),
    space: str = typer.Option(..., "--space", help="Search space: a YAML file (search_spaces/plasticity.yaml) or file.py:function."),
    trials: int = typer.Option(20, help="Finished trials wanted in the study, all processes on its storage together; "
                               "running the same command again resumes the search."),
    jobs: int = typer.Option(1, help="Trials run in parallel (threads)."),
    storage: str | None = typer.Option(None, help="Optuna storage: an SQLAlchemy URL or journal:///path.log; default sqlite:///<runs dir>/evo.db."),
    study_name: str | None = typer.Option(None, help="Study name, a plain folder name (the trials' run directories go "
                                          "in --runs-dir/<name>); default search:<config>:<space>. A study keeps "
                                          "to one config, --set and space."),
    sampler: str | None = typer.Option(None, help="tpe, cmaes, nsga2 or random; default tpe (nsga2 for several objectives)."),
    pruner: str = typer.Option("median", help="median, hyperband or none (fed the best fitness each generation)."),
    timeout: float | None = typer.Option(None, help="Stop starting trials after this many seconds."),
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
    export_best: Path | None = typer.Option(None, "--export-best", help="Write the best trial's config here as YAML "
                                               "(run length as in CONFIG, not --set's)."),
    seed: int = typer.Option(0, help="Sampler seed."),
    runs_dir: Path = typer.Option(DEFAULT_RUNS_DIR, help="Where each trial's run directory is created (in "
                                  "<runs dir>/<study name>/), and the default storage and diagrams go."),
    mirror: bool = typer.Option(True, "--mirror/--no-mirror", help="Mirror every individual of every trial into the storage."),
    heartbeat: int = typer.Option(30, min=1, help="Seconds between a running trial's heartbeats (database storages); "
                                  "a trial silent for twice as long (its machine gone, its process paused) is run again elsewhere."),
    base_first: bool = typer.Option(True, "--base-first/--no-base-first", help="A new study's first trial runs "
                                    "CONFIG's own values where the space holds them (then the sampler takes over)."),
) -> None:
    """Search plasticity hyperparameters with Optuna; each trial is one evolution run.

    Several processes, on one machine or several, may run the same command on one storage: together they run
    --trials trials.
    """
    from evo.api import study_name as default_study_name
    from evo.tuning import export_best as write_best
    from evo.tuning import load_space, run_search

    cfg = _load(config, set_, {})
    name = study_name or default_study_name(config, space)
    try:
        with interrupts.stop_signals():
            result = run_search(cfg, load_space(space), trials=trials, jobs=jobs, storage=storage, study_name=name,
                                sampler=sampler, pruner=pruner, timeout=timeout, seed=seed, runs_dir=runs_dir,
                                mirror=mirror, heartbeat=heartbeat, base_first=base_first)  # type: ignore[arg-type]
        written = write_best(result, export_best, _load(config, [], {})) if export_best is not None else None
    except EvoError as err:
        fail(str(err))
    except KeyboardInterrupt:
        _interrupted("run the same command again to resume the search")
    states = [row["state"] for row in result.trials]
    console.print(f"[bold green]done[/] study {name!r}: " + ", ".join(f"{states.count(s)} {s.lower()}" for s in sorted(set(states))))
    if result.best_trial is not None:
        best = result.best_trial
        console.print(f"best trial #{best.number}: values={best.values}  {best.user_attrs.get('architecture')}  "
                      f"run: {best.user_attrs.get('run_dir')}", soft_wrap=True, highlight=False)
        console.print("  " + "  ".join(f"{k}={v}" for k, v in result.best_params.items()), soft_wrap=True)
    if written is not None:
        console.print(f"best config: {written}  (evo run {written})")
    where = f" --storage {storage}" if storage else f" --runs-dir {runs_dir}" if runs_dir != DEFAULT_RUNS_DIR else ""
    console.print(f"browse: evo dashboard{where}", soft_wrap=True, highlight=False)


@app.command()
def dashboard(
    storage: str | None = typer.Option(None, help="Optuna storage URL; default sqlite:///<runs dir>/evo.db."),
    port: int = typer.Option(8080, help="Port on 127.0.0.1."),
    artifacts: Path | None = typer.Option(None, help="Artifact folder holding the architecture diagrams; default "
                                          "<runs dir>/artifacts."),
    runs_dir: Path = typer.Option(DEFAULT_RUNS_DIR, help="The --runs-dir of the runs and searches to browse."),
) -> None:
    """Browse searches and mirrored runs in optuna-dashboard (bound to 127.0.0.1)."""
    from evo.mirror import storage_file
    from evo.paths import artifacts_dir, storage_url
    from evo.tuning import dashboard_server, dashboard_url

    storage = storage or storage_url(runs_dir)
    missing = storage_file(storage)
    if missing is not None and not missing.exists():  # opening it would create an empty one
        fail(f"{missing}: no such storage file; run `evo run`/`evo search` here first, or name one with --storage")

    try:
        server = dashboard_server(storage, port=port, artifacts=artifacts or artifacts_dir(runs_dir))
    except EvoError as err:
        fail(str(err))
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise
        fail(f"--port {port}: 127.0.0.1:{port} is already in use (another dashboard?); choose a free port with --port")
    console.print(f"optuna-dashboard: {dashboard_url(port)}  (Ctrl-C to stop)", highlight=False)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    fmt: str = typer.Option("torchscript", "--format", help="torchscript, onnx, state_dict or exported_program."),
    out: Path | None = typer.Option(None, "--out", help="Output file, or an existing folder to write <id><suffix> "
                                    "into; default: RUN_DIR/export/<id><suffix>, the suffix naming the format "
                                    "(.torchscript.pt, .onnx, .state_dict.pt, .pt2)."),
    rank: int = typer.Option(1, "--rank", min=1, help="Export the N-th best individual (1 = best)."),
    individual: int | None = typer.Option(None, "--individual", help="Export this individual id instead of a rank."),
    force: bool = typer.Option(False, "--force", help="Replace the output file if it exists (else: an error)."),
) -> None:
    """Export the best (or a chosen) individual as TorchScript, ONNX, torch.export or genome JSON + weights,
    taking raw inputs (the task's scaling and standardisation inside) and carrying the data's class labels."""
    from evo.export import ExportFormat, export_genome, run_preprocessing
    from evo.inspect import load_run

    formats = [f.value for f in ExportFormat]
    if fmt not in formats:
        fail(f"--format {fmt!r}: allowed are {', '.join(formats)}")
    try:
        run = load_run(run_dir)
    except EvoError as err:
        fail(str(err))
    ranked = [ind for ind in run.ranked() if ind.evaluation is not None and ind.evaluation.ok]
    if individual is None:
        if rank > len(ranked):
            fail(f"--rank {rank}: the run has only {len(ranked)} successfully evaluated individuals")
        individual = ranked[rank - 1].id
    name = f"{individual}{ExportFormat(fmt).suffix}"
    if out is not None and out.is_dir():
        out = out / name
    try:
        genome = run.load_genome(individual)
        path = export_genome(genome, fmt, out or run_dir / "export" / name,
                             preprocessing=run_preprocessing(run.store), overwrite=force)
    except EvoError as err:
        fail(str(err))
    console.print(f"exported individual #{individual} ({genome}) to {path}")


def _internal_error() -> int:
    """The exception being handled is a bug: its full traceback, then one line saying so; exit code 1."""
    sys.excepthook(*sys.exc_info())
    _error_line("internal error — this is a bug in evo; please report it with the traceback above")
    return 1


def cli(args: list[str] | None = None) -> NoReturn:
    """The ``evo`` console script: the app, with argument mistakes (unknown option, missing argument, bad
    value) reported in one line and exit code 2 like every other user error, instead of click's usage box."""
    warnings.showwarning = _warning_line
    try:
        code = app(args=args, prog_name="evo", standalone_mode=False)
    except _clicks.UsageError as err:
        command = err.ctx.command_path if err.ctx else "evo"
        if not isinstance(err, _NoArgsIsHelp):  # bare `evo` or `evo search`: the help was shown, that is the answer
            _error_line(f"{command}: {err.format_message()} (see '{command} --help')")
        code = 2
    except _clicks.ClickException as err:
        _error_line(err.format_message())
        code = err.exit_code
    except typer.Abort:
        _error_line("aborted")
        code = 1
    except EvoError as err:  # the user can fix it: one line
        _error_line(str(err))
        code = 2
    except OSError as err:
        if err.errno not in _ENVIRONMENT_ERRNOS:
            code = _internal_error()  # anything else from the OS is a bug here: keep its traceback
        else:
            _error_line(_os_error_line(err))
            code = 2
    except Exception:  # not an EvoError: a bug in evo, whatever its type (a ValueError from deep inside torch too)
        code = _internal_error()
    raise SystemExit(code if isinstance(code, int) else 0)  # a command's return value is not an exit code
