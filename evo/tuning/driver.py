"""The search loop: one Optuna trial = one evolution run with sampled plasticity hyperparameters.

Each trial applies its sampled values to the config, runs an evolution in its own run directory
(``<runs dir>/<study>/trial_0007``), reports the best fitness after every generation so a pruner can stop
a hopeless run early, and records the run directory and best architecture on the trial. Several
objectives in the task make a multi-objective study (no pruning then) whose Pareto front
:attr:`SearchResult.pareto` holds. Running the same search again resumes it: finished trials count
towards ``trials``, and a trial whose process was killed is re-queued and resumes its run directory. A new
study's first trial runs the base config's own values where the space holds them: a search starts from
the config it was given, and improves on it.
Several processes (machines) running the same search on one storage run ``trials`` between them
(:mod:`evo.tuning.loop`).

Example:
    >>> from evo.config import load_config
    >>> from evo.tuning import load_space, run_search
    >>> result = run_search(load_config("configs/digits_mlp.yaml"), load_space("search_spaces/plasticity.yaml"),
    ...                     trials=20, jobs=2)  # doctest: +SKIP
    >>> result.best_params  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from evo.backends import Backend, make_backend
from evo.errors import ConfigError, RunLockedError, StorageError
from evo.mirror.storage import open_storage
from evo.paths import DEFAULT_RUNS_DIR, artifacts_dir, storage_url
from evo.records import GenerationRecord, Reporter
from evo.runner import Mirror, Runner
from evo.tuning.loop import TakenOver, TrialLoop, ended, trial_seed
from evo.tuning.overrides import apply_params, check_space, config_lookup
from evo.tuning.space import SearchSpace
from evo.tuning.study import (WORKER_ATTR, PrunerName, SamplerName, make_pruner, make_sampler, open_study,
                              worker_tag)
from evo.types import Objective

if TYPE_CHECKING:
    from evo.config import EvoConfig
    from evo.evolution import RunResult

#: seconds a retried trial waits for its run directory, held by the process it was taken from (which lets go
#: at its next generation's end once it wakes), before it fails.
TAKEOVER_WAIT_S = 600.0
#: user attribute of the trial that runs the base config's own values (see ``run_search(base_first=...)``).
BASE_ATTR = "base_config"

__all__ = ["PruningReporter", "SearchResult", "best_trial", "export_best", "run_search", "search_fingerprint",
           "summarize", "task_objectives"]


class PruningReporter(Reporter):
    """Reports the best fitness after each generation to a trial and stops the run when the pruner says so.

    ``optuna.TrialPruned`` raised here leaves the run (:meth:`evo.runner.Runner.run`) after the generation was
    checkpointed.
    """

    def __init__(self, trial: optuna.Trial, objective: str) -> None:
        self.trial, self.objective = trial, objective

    def on_generation_end(self, record: GenerationRecord) -> None:
        value = record.best_objectives.get(self.objective, math.nan)
        if not math.isfinite(value):
            return
        self.trial.report(value, record.generation)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"generation {record.generation}: best {self.objective}={value:.4g}")


class OwnershipReporter(Reporter):
    """Stops the run, after the generation's checkpoint, once another process has ended its trial as stale.

    A process paused (Ctrl-Z, a sleeping laptop) past the heartbeat's grace period finds on waking that another
    process failed and re-queued its trial: the re-queued copy resumes this trial's run directory, which this
    process must let go of rather than train on for nothing. Looks at most every ``every_s`` seconds.
    """

    def __init__(self, trial: optuna.Trial, every_s: float) -> None:
        self.trial, self.every_s = trial, every_s
        self._next = time.monotonic() + every_s

    def on_generation_end(self, record: GenerationRecord) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.every_s
        if ended(self.trial):
            raise TakenOver(f"trial {self.trial.number}: ended by another process after generation "
                            f"{record.generation}; its re-queued copy resumes the run directory")


@dataclass
class SearchResult:
    """A finished (or stopped) search.

    Attributes:
        study: the Optuna study (plots: ``optuna.visualization``).
        best_trial: the best trial (see :func:`best_trial`); None before any trial completed.
        best_params: the best trial's sampled values, as dotted overrides.
        best_config: the config with them applied — ready to run or to export.
        pareto: the Pareto-optimal trials (several objectives) or the best trial (one).
        trials: one flat record per trial (``pandas.DataFrame(result.trials)``).
    """

    study: optuna.Study
    best_trial: FrozenTrial | None
    best_params: dict[str, Any]
    best_config: EvoConfig
    pareto: list[FrozenTrial] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)


def task_objectives(config: EvoConfig) -> tuple[Objective, ...]:
    """The objectives of the config's task (builds the task; datasets are cached)."""
    from evo.task_kinds import build_task

    return tuple(build_task(config.task, config.plasticity).objectives)


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "search"


@dataclass
class _Trial:
    """Everything one trial needs besides the trial itself (shared by the worker threads)."""

    config: EvoConfig
    space: SearchSpace
    objectives: tuple[Objective, ...]
    study_name: str
    runs_dir: Path
    prune: bool
    storage: Any
    mirror: bool
    artifacts: Path
    backend: Backend | None

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        trial.set_user_attr(WORKER_ATTR, worker_tag())  # first: a process killed while sampling leaves its tag
        values = self.space.sample(trial)
        trial.set_user_attr("overrides", values)
        config = apply_params(self.config, values)  # a ConfigError fails this trial only (an invalid combination)
        # A retried trial inherits its predecessor's run directory and resumes it from the last checkpoint.
        inherited = trial.user_attrs.get("run_dir")
        run_dir = Path(inherited or self.runs_dir / _slug(self.study_name) / f"trial_{trial.number:04d}")
        trial.set_user_attr("run_dir", str(run_dir))
        reporters: list[Reporter] = [PruningReporter(trial, self.objectives[0].name)] if self.prune else []
        heartbeat = getattr(self.storage, "get_heartbeat_interval", lambda: None)()  # database storages only
        if heartbeat:
            reporters.append(OwnershipReporter(trial, heartbeat))
        result = self._run(trial, config, run_dir, reporters, retried=inherited is not None)
        best = result.best
        trial.set_user_attr("architecture", str(best.genome))
        trial.set_user_attr("num_params", best.genome.num_params())
        trial.set_user_attr("best_id", best.id)
        trial.set_user_attr("generations", len(result.history))
        scores = [float(best.objectives.get(o.name, math.nan)) for o in self.objectives]
        return scores if len(scores) > 1 else scores[0]

    def _run(self, trial: optuna.Trial, config: EvoConfig, run_dir: Path, reporters: list[Reporter],
             retried: bool) -> RunResult:
        """The trial's run. A retried trial's run directory may still be held by the process it was taken from
        (paused, then woken: it lets go at its next generation's end, see :class:`OwnershipReporter`), so the
        retry waits for it, up to :data:`TAKEOVER_WAIT_S` (then, as for any other run directory held by another
        process, :class:`RunLockedError` ends the search with its one line)."""
        deadline = time.monotonic() + TAKEOVER_WAIT_S
        name = f"{self.study_name}/trial_{trial.number:04d}"
        while True:
            mirror = Mirror(self.storage, name, self.artifacts) if self.mirror else None
            try:
                return Runner.open(config, run_dir, backend=self.backend, mirror=mirror).run(reporters)
            except RunLockedError:
                if not retried or time.monotonic() > deadline:
                    raise
            time.sleep(1.0)


def run_search(
    config: EvoConfig,
    space: SearchSpace,
    *,
    trials: int,
    jobs: int = 1,
    storage: str | None = None,
    study_name: str | None = None,
    sampler: SamplerName | optuna.samplers.BaseSampler | None = None,
    pruner: PrunerName | optuna.pruners.BasePruner = "median",
    timeout: float | None = None,
    seed: int | None = 0,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
    mirror: bool = True,
    artifacts: str | Path | None = None,
    backend: Backend | None = None,
    heartbeat: int = 30,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    base_first: bool = True,
) -> SearchResult:
    """Search plasticity hyperparameters with Optuna; each trial is one evolution run.

    Args:
        config: the base config every trial starts from.
        space: what to vary (see :func:`evo.tuning.load_space`).
        trials: finished trials wanted in the study, counting earlier runs of the same search and other
            processes running it on the same storage at the same time (see :mod:`evo.tuning.loop`).
        jobs: trials run in parallel (threads; evaluations go through each trial's backend).
        storage: Optuna storage URL; default ``sqlite:///<runs_dir>/evo.db`` (as ``evo run`` mirrors runs).
        study_name: default ``search:<config name or 'evo'>``; a plain folder name (it names the folder of the
            trials' run directories under ``runs_dir``). A study keeps to one config and space.
        sampler: tpe, cmaes, nsga2 or random (or a sampler); default tpe (one objective) or nsga2 (several).
        pruner: median, hyperband or none (or a pruner); several objectives always mean none.
        timeout: stop starting trials after this many seconds.
        seed: the sampler's seed, combined with each trial's number (each run keeps ``evolution.seed`` so
            trials differ only in their values).
        runs_dir: where the trials' run directories go (``<runs_dir>/<study>/trial_NNNN``).
        mirror: also mirror each trial's run (every individual) into the storage for the dashboard.
        artifacts: the mirror's folder of architecture diagrams; default ``<runs_dir>/artifacts``.
        backend: one backend shared by all trials; default: a Ray backend shared by all trials when the
            config asks for Ray, else each trial makes its own (serial).
        heartbeat: seconds between a running trial's heartbeats (database storages); a trial silent for
            twice as long (its process or machine died) is failed and re-queued.
        callbacks: called with the study and each finished trial (Optuna's ``optimize`` callbacks).
        base_first: a new study's first trial takes the base config's own values wherever the space holds them
            (a YAML space; user attr ``base_config``), so the search starts from the config you gave instead of
            from its sampler's random start-up trials; values outside the space are sampled.

    Raises:
        ConfigError: bad arguments, or a space naming config fields that do not exist.
        StorageError: an unusable storage, or a study of that name made by another search.
    """
    for name, value, low in (("trials", trials, 1), ("jobs", jobs, 1), ("heartbeat", heartbeat, 1)):
        if value < low:
            raise ConfigError(f"search: {name} must be >= {low}, got {value}")
    check_space(space, config)
    objectives = task_objectives(config)
    multi = len(objectives) > 1
    name = _check_study_name(study_name or f"search:{config.name or 'evo'}")
    optuna_storage = open_storage(storage or storage_url(runs_dir), heartbeat_interval=heartbeat)
    sampler, sampler_for = _samplers(sampler, seed, multi)
    if multi or not isinstance(pruner, optuna.pruners.BasePruner):
        pruner = make_pruner("none" if multi else pruner, config.evolution.generations)  # type: ignore[arg-type]
    prune = not isinstance(pruner, optuna.pruners.NopPruner)
    study = open_study(optuna_storage, name, [o.direction.value for o in objectives], sampler, pruner,
                       fingerprint=search_fingerprint(config, space))
    if base_first:
        _enqueue_base(study, space, config)
    own_backend = backend is None and config.backend.kind == "ray"
    if own_backend:
        backend = make_backend(config.backend)
    objective = _Trial(config, space, objectives, name, Path(runs_dir), prune, optuna_storage, mirror,
                       Path(artifacts) if artifacts is not None else artifacts_dir(runs_dir), backend)
    try:
        TrialLoop(study, objective, trials, sampler_for=sampler_for, timeout=timeout, catch=(ConfigError,),
                  callbacks=callbacks).run(jobs)
    finally:
        if own_backend and backend is not None:
            backend.close()
    return summarize(study, config)


def _enqueue_base(study: optuna.Study, space: SearchSpace, config: EvoConfig) -> None:
    """Queue the base config's values as the first trial of a study that has none yet (a resumed search, or a
    second process joining one, finds trials and adds nothing; two starting at once queue it once)."""
    if study.get_trials(deepcopy=False):
        return
    fixed = space.fixed(config_lookup(config))
    if fixed:
        study.enqueue_trial(fixed, user_attrs={BASE_ATTR: True}, skip_if_exists=True)


def _samplers(sampler: SamplerName | optuna.samplers.BaseSampler | None, seed: int | None, multi: bool,
              ) -> tuple[optuna.samplers.BaseSampler, Callable[[int], optuna.samplers.BaseSampler] | None]:
    """The study's sampler and, for a named one, the sampler of trial number ``n`` (seeded from ``seed`` and
    ``n``); a sampler object given is used as it is."""
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler, None
    name: SamplerName = sampler or ("nsga2" if multi else "tpe")

    def for_trial(number: int) -> optuna.samplers.BaseSampler:
        return make_sampler(name, trial_seed(seed, number), multi)

    return make_sampler(name, seed, multi), for_trial


def search_fingerprint(config: EvoConfig, space: SearchSpace) -> str:
    """What makes two searches' trials comparable, hashed: the config less its name and backend (where and
    how fast evaluations run changes no result, so each machine of a search may set its own) and the space."""
    data = {"config": config.model_dump(mode="json", exclude={"name", "backend"}), "space": space.identity()}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_study_name(name: str) -> str:
    """``name`` if the folder of its trials' run directories (``runs_dir/<slug>``) stays inside ``runs_dir``."""
    from evo.config import check_run_name

    try:
        check_run_name(name)
        check_run_name(_slug(name))
    except ConfigError as err:
        raise ConfigError(f"study name: {err}") from None
    return name


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best trial; with several objectives, the Pareto trial best on the first objective."""
    front = study.best_trials
    if not front:
        return None
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
    return max(front, key=lambda t: sign * t.values[0])


def summarize(study: optuna.Study, config: EvoConfig) -> SearchResult:
    """A :class:`SearchResult` of ``study`` (of a search over ``config``), e.g. to inspect a finished search."""
    best = best_trial(study)
    best_params = dict(best.user_attrs.get("overrides", best.params)) if best is not None else {}
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "values": t.values,
                               "seconds": t.duration.total_seconds() if t.duration else None}
        row.update(t.user_attrs.get("overrides", t.params))
        row.update({k: t.user_attrs.get(k) for k in ("run_dir", "architecture", "num_params")})
        rows.append(row)
    return SearchResult(study, best, best_params, apply_params(config, best_params), study.best_trials, rows)


#: the run-length fields a search often shortens (``--set evolution.generations=8``); an exported config
#: takes them back from the base config, so that it runs as long as the base config says.
_CAPS = ("generations", "max_steps", "max_samples", "max_seconds")


def export_best(result: SearchResult, path: str | Path, base: EvoConfig | None = None) -> Path:
    """Write the best trial's config as a ready-to-run YAML file, with ``base``'s run length when given."""
    from evo.config import apply_overrides, dump_config
    from evo.files import atomic_write_text

    if result.best_trial is None:
        raise StorageError(f"study {result.study.study_name!r}: no completed trial to export yet")
    config = result.best_config
    if base is not None:
        config = apply_overrides(config, {f"evolution.{cap}": getattr(base.evolution, cap) for cap in _CAPS
                                          if f"evolution.{cap}" not in result.best_params})  # unless searched
    out = Path(path)
    atomic_write_text(out, dump_config(config))
    return out

