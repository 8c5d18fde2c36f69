"""The Python API for notebooks and scripts: ``evo.run``, ``evo.resume``, ``evo.search``.

The same engine as the ``evo`` command, taking a config in any form — an
:class:`~evo.config.EvoConfig`, a plain dict (validated like YAML) or the path
of a YAML file — plus dotted overrides, and returning results whose
``records()`` / :func:`history_records` feed ``pandas.DataFrame`` directly.

Example:
    >>> import evo
    >>> result = evo.run({"task": {"dataset": "iris"}, "backend": {"kind": "serial"}},
    ...                  overrides={"evolution.generations": 1})  # doctest: +SKIP
    >>> result.best.genome, result.best.objectives  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evo.config import EvoConfig, apply_overrides, load_config, parse_overrides
from evo.errors import ConfigError
from evo.evolution import RunResult
from evo.paths import DEFAULT_RUNS_DIR
from evo.records import GenerationRecord, Reporter
from evo.runner import Runner

if TYPE_CHECKING:
    from evo.backends import Backend
    from evo.tuning import SearchResult, SearchSpace

__all__ = ["ConfigLike", "Overrides", "history_records", "resume", "run", "search", "study_name", "to_config"]

#: a config as the API accepts it: validated model, plain dict, or YAML path.
ConfigLike = EvoConfig | Mapping[str, Any] | str | os.PathLike[str]
#: dotted overrides: ``["evolution.generations=5"]`` or ``{"evolution.generations": 5}``.
Overrides = Sequence[str] | Mapping[str, Any]


def _as_dict(overrides: Overrides) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        return dict(overrides)
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a list of 'section.field=value' strings or a dict, got the string {overrides!r}")
    return parse_overrides(overrides)


def to_config(config: ConfigLike, overrides: Overrides = ()) -> EvoConfig:
    """A validated config from a model, a dict or a YAML path, with dotted overrides applied.

    Raises:
        ConfigError: one line naming the source, the field and what is wrong.
    """
    values = _as_dict(overrides)
    if isinstance(config, str | os.PathLike):
        return load_config(config, [f"{key}={json.dumps(value)}" for key, value in values.items()])
    if isinstance(config, Mapping):
        from evo.config import _validate

        config = _validate(config, "config")
    if not isinstance(config, EvoConfig):
        raise ConfigError(f"config must be an EvoConfig, a dict or a YAML path, got {type(config).__name__}")
    return apply_overrides(config, values) if values else config


def _run_with(runner: Runner, progress: bool, reporters: Sequence[Reporter]) -> RunResult:
    """Run ``runner`` to its end, with a progress bar if asked (it shows the backend's busy workers)."""
    with runner:
        if not progress:
            return runner.run(reporters)
        bar = runner.progress_bar()
        try:
            return runner.run([bar, *reporters])
        finally:
            bar.close()


def run(
    config: ConfigLike,
    *,
    overrides: Overrides = (),
    run_dir: str | Path | None = None,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
    progress: bool = False,
    backend: Backend | None = None,
    reporters: Sequence[Reporter] = (),
) -> RunResult:
    """Evolve as ``config`` says and return the result (``.best``, ``.pareto``, ``.records()``...).

    Args:
        config: an ``EvoConfig``, a dict shaped like the YAML, or a YAML path.
        overrides: dotted overrides, e.g. ``{"evolution.generations": 3}`` or ``["backend.kind=serial"]``.
        run_dir: where to write; default ``runs_dir/<config name or a timestamped name>``.
        progress: show a progress bar (evaluations/s, best so far).
        backend: evaluate here instead of the config's ``backend`` section (kept open).
        reporters: extra observers, e.g. an ``evo.mirror.OptunaMirror``.

    Raises:
        ConfigError: an invalid config.
        RunExistsError: ``run_dir`` holds a run already.
        DataError: unreadable data.
        RunLockedError: another process is running the run in ``run_dir``.
        RunFailedError: no evaluation succeeded (e.g. a NaN in the data); the message carries the first error.
    """
    runner = Runner.new(to_config(config, overrides), run_dir, runs_dir=runs_dir, backend=backend)
    return _run_with(runner, progress, reporters)


def resume(
    run_dir: str | Path,
    overrides: Overrides = (),
    *,
    progress: bool = False,
    backend: Backend | None = None,
    reporters: Sequence[Reporter] = (),
) -> RunResult:
    """Continue a run from its newest checkpoint, or extend a finished one (``{"evolution.generations": 20}``).

    Raises:
        DamagedRunError: no run there, or a run file is missing, cut short or inconsistent.
        ConfigError: an override of a field that cannot change in a resumed run.
        RunLockedError: another process is running, resuming or extending the run.
        RunFailedError: no evaluation succeeded.
    """
    items = [f"{key}={json.dumps(value)}" for key, value in _as_dict(overrides).items()]
    return _run_with(Runner.resume(run_dir, items, backend=backend), progress, reporters)


def search(config: ConfigLike, space: SearchSpace | str | os.PathLike[str], *, overrides: Overrides = (),
           trials: int = 20, progress: bool = False, **kwargs: Any) -> SearchResult:
    """Search plasticity hyperparameters with Optuna; each trial is one evolution run.

    Args:
        config: the base config every trial starts from (any form :func:`to_config` accepts).
        space: a search space, a YAML file (``search_spaces/plasticity.yaml``) or ``file.py:function``.
        overrides: dotted overrides applied to ``config`` first.
        trials: finished trials wanted (running the same search again resumes it).
        progress: print one line as each trial ends (its state, values, run directory and the best so far).
        kwargs: the rest of :func:`evo.tuning.run_search` (jobs, storage, sampler, pruner...); ``study_name``
            defaults to :func:`study_name`, the name ``evo search`` gives the same config and space.
    """
    from evo.tuning import load_space, run_search

    kwargs.setdefault("study_name", study_name(config, space))
    if isinstance(space, str | os.PathLike):
        space = load_space(str(space))
    if progress:
        kwargs["callbacks"] = [*kwargs.get("callbacks", ()), _print_trial]
    return run_search(to_config(config, overrides), space, trials=trials, **kwargs)


def study_name(config: ConfigLike, space: SearchSpace | str | os.PathLike[str]) -> str:
    """``search:<config>:<space>``: the file names without suffix (``search:digits_mlp:plasticity``); a config
    given as a model or dict contributes its ``name`` (else ``evo``)."""
    if isinstance(config, str | os.PathLike):
        config_name = Path(config).stem
    else:
        config_name = (config.name if isinstance(config, EvoConfig) else config.get("name")) or "evo"
    source = str(space) if isinstance(space, str | os.PathLike) else space.source
    return f"search:{config_name}:{Path(source.partition(':')[0]).stem}"


def _print_trial(study: Any, trial: Any) -> None:
    """``evo.search(..., progress=True)``: one line per finished trial."""
    values = "" if trial.values is None else " values=" + ",".join(f"{v:.4g}" for v in trial.values)
    seconds = f" {trial.duration.total_seconds():.1f} s" if trial.duration else ""
    best = study.best_trials[0] if len(study.directions) == 1 and study.best_trials else None
    best_text = f"; best: trial {best.number} ({best.values[0]:.4g})" if best is not None else ""
    print(f"trial {trial.number} {trial.state.name.lower()}{values}{seconds} {trial.user_attrs.get('run_dir', '')}"
          f"{best_text}", flush=True)


def history_records(history: RunResult | Sequence[GenerationRecord]) -> list[dict[str, Any]]:
    """One flat dict per generation (``pandas.DataFrame(history_records(result))``): best so far and budget."""
    records = history.history if isinstance(history, RunResult) else history
    rows = []
    for record in records:
        row: dict[str, Any] = {
            "generation": record.generation,
            "evaluated": len(record.evaluated),
            "failures": record.failures,
            "population": len(record.population),
            "best_id": record.best_id,
            "steps": record.budget_used.steps,
            "samples": record.budget_used.samples,
            "seconds": record.seconds,
        }
        row.update({f"best_{name}": value for name, value in record.best_objectives.items()})
        rows.append(row)
    return rows
