"""A run's life in one place: where it lives, its lock, its backend, its Optuna mirror, resume and extend.

The ``evo`` command, the Python API and the search driver all start, resume and extend runs through a
:class:`Runner`; :class:`~evo.evolution.Evolution` keeps only the loop (variation, evaluation, selection,
hooks) and knows nothing of directories, locks or a backend's lifetime.

Paths follow one rule wherever a runs dir is given (``evo run``/``evo search --runs-dir``, ``evo.run``,
``evo.search``; see :mod:`evo.paths`): a run lives in ``<runs dir>/<name>/`` (a search's trials in
``<runs dir>/<study>/trial_NNNN``), and the Optuna mirror (:mod:`evo.mirror`) writes into
``sqlite:///<runs dir>/evo.db`` with its diagrams in ``<runs dir>/artifacts`` unless a storage is named.
A resumed run's runs dir is the folder holding it.

Example:
    >>> from evo.config import load_config
    >>> config = load_config(None, ["evolution.generations=1", "backend.kind=serial"])
    >>> with Runner.new(config, runs_dir="runs") as runner:  # doctest: +SKIP
    ...     result = runner.run([runner.progress_bar()])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from evo.backends import Backend, make_backend
from evo.config import EvoConfig, config_diff, dump_config, load_run_config
from evo.errors import ConfigError, RunFailedError
from evo.evolution import Evolution, RunResult, build_operators
from evo.files import atomic_write_text
from evo.paths import DEFAULT_RUNS_DIR, artifacts_dir, storage_url
from evo.records import Reporter
from evo.store import Checkpoint, RunStore
from evo.tasks import Task

if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from rich.console import Console

    from evo.progress import ProgressReporter

__all__ = ["RESUMABLE_FIELDS", "Mirror", "Runner", "resume_evolution", "run_evolution", "stamped"]

#: Fields a resumed run may change; anything else would make the continuation a different run.
RESUMABLE_FIELDS = ("evolution.generations", "evolution.max_steps", "evolution.max_samples", "evolution.max_seconds",
                    "evolution.target_fitness", "evolution.test_top_k", "backend.", "name")


def stamped(prefix: str) -> str:
    """A run name for a run that was given none: ``<prefix>-<date>-<time>``."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass(frozen=True)
class Mirror:
    """Where a run's Optuna mirror writes (see :class:`evo.mirror.OptunaMirror`).

    Attributes:
        storage: a storage URL (the mirror writes from a process of its own), or a storage a search already
            opened (written from a thread of the driver).
        name: the run's name in the storage (its study is ``run:<name>``).
        artifacts: the folder of architecture diagrams; None = no diagrams.
    """

    storage: str | BaseStorage
    name: str
    artifacts: Path | None

    @classmethod
    def of_run(cls, run_dir: Path, runs_dir: Path, storage: str | None = None) -> Mirror:
        """The mirror of the run in ``run_dir`` under ``runs_dir``: into ``storage``, by default the runs dir's."""
        return cls(storage or storage_url(runs_dir), run_dir.name, artifacts_dir(runs_dir))


class Runner:
    """One run — new, resumed or extended — from its directory to its result.

    Made by :meth:`new`, :meth:`resume` or :meth:`open`; used as a context manager, which starts the backend
    unless one was given, and holds a resumed run's directory (its config is read under the lock); leaving
    releases what it took. :meth:`run` then runs to the end (a new run's directory is created and held there,
    after its task was built: bad data leaves no directory behind, nor does bad input found before the first
    generation is written).

    Args:
        run_dir: the run directory.
        config: the config of a new run (a resumed run's is read when the runner is entered).
        store: the existing run to resume; None = a new run.
        overrides: a resumed run's dotted overrides (e.g. more generations).
        backend: evaluate here (kept open) instead of a backend made from the config's ``backend`` section.
        mirror: mirror every evaluated individual into Optuna storage; None = no mirror.
    """

    def __init__(self, run_dir: Path, config: EvoConfig | None, *, store: RunStore | None = None,
                 overrides: Sequence[str] = (), backend: Backend | None = None, mirror: Mirror | None = None) -> None:
        self.run_dir = run_dir
        self._config = config
        self._store = store
        self.overrides = list(overrides)
        self.backend = backend
        self.mirror = mirror
        self._stack = ExitStack()  # what the runner's exit ends: the run lock, the backend, the mirror's writer
        self._entered = False

    @classmethod
    def new(cls, config: EvoConfig, run_dir: str | Path | None = None, *, runs_dir: str | Path = DEFAULT_RUNS_DIR,
            backend: Backend | None = None, mirror: Mirror | None = None) -> Runner:
        """A new run of ``config`` in ``run_dir`` (default ``runs_dir/<config.name or a timestamped name>``).

        Raises:
            RunExistsError: ``run_dir`` holds a run already.
        """
        root = Path(run_dir) if run_dir is not None else Path(runs_dir) / (config.name or stamped("run"))
        RunStore.refuse_existing(root)
        return cls(root, config, backend=backend, mirror=mirror)

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: Sequence[str] = (), *, backend: Backend | None = None,
               mirror: Mirror | None = None) -> Runner:
        """The run in ``run_dir``, to continue from its newest intact checkpoint; ``overrides`` may extend it.

        Raises:
            DamagedRunError: no run there.
        """
        store = RunStore.open(run_dir)
        return cls(store.root, None, store=store, overrides=overrides, backend=backend, mirror=mirror)

    @classmethod
    def open(cls, config: EvoConfig, run_dir: Path, *, backend: Backend | None = None,
             mirror: Mirror | None = None) -> Runner:
        """The run in ``run_dir`` if there is one (resumed as it was configured), else a new run of ``config``:
        a search's retried trial continues its predecessor's run."""
        if RunStore.exists(run_dir):
            return cls.resume(run_dir, backend=backend, mirror=mirror)
        return cls.new(config, run_dir, backend=backend, mirror=mirror)

    @property
    def config(self) -> EvoConfig:
        if self._config is None:
            raise RuntimeError("a resumed run's config is read when the runner is entered")
        return self._config

    @property
    def started(self) -> bool:
        """Whether the run directory holds a run (to resume after an interruption)."""
        return RunStore.exists(self.run_dir)

    # ------------------------------------------------------------- life
    def __enter__(self) -> Runner:
        try:
            if self._store is not None:
                self._stack.enter_context(self._store.lock())
                self._config = self._resumed_config(self._store)
            if self.backend is None:
                self.backend = make_backend(self.config.backend)
                self._stack.callback(self._close_backend)
        except BaseException:
            self._stack.close()
            raise
        self._entered = True
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self._entered = False
        self._stack.__exit__(kind, err, tb)  # the mirror's close raises its error only if the run had none

    def _close_backend(self) -> None:
        assert self.backend is not None
        self.backend.close()
        self.backend = None

    def _resumed_config(self, store: RunStore) -> EvoConfig:
        """The run's config with the overrides, if they change only what a resumed run may change."""
        old = load_run_config(store.config_path)
        new = load_run_config(store.config_path, self.overrides) if self.overrides else old
        frozen = [f for f in config_diff(old, new) if not f.startswith(RESUMABLE_FIELDS)]
        if frozen:
            allowed = ", ".join(f.rstrip(".") + ("*" if f.endswith(".") else "") for f in RESUMABLE_FIELDS)
            raise ConfigError(f"{store.config_path}: {frozen[0]} cannot change in a resumed run (allowed: {allowed})")
        return new

    def progress_bar(self, console: Console | None = None) -> ProgressReporter:
        """A progress bar for this run (evaluations/s, the backend's busy workers, best so far); enter first."""
        from evo.progress import Limits, ProgressReporter

        evo = self.config.evolution
        limits = Limits(evo.generations, evo.max_samples, evo.max_steps, evo.max_seconds)
        return ProgressReporter(evo.children or evo.population_size, console, self.backend, limits)

    def run(self, reporters: Sequence[Reporter] = ()) -> RunResult:
        """Start or continue the run and run it to its end (entering the runner first if it was not).

        Raises:
            RunLockedError: another process holds the run directory.
            DamagedRunError: a resumed run's file is missing, cut short or inconsistent (nothing is written then).
            RunFailedError: no evaluation succeeded (the run directory holds the failures).
        """
        if not self._entered:
            with self:
                return self.run(reporters)
        task = _build_task(self.config)  # bad data fails here, before a new run's directory exists
        reporters = [*reporters, *self._mirror(task)]
        if self._store is not None:
            return self._continue(self._store, task, reporters)
        with RunStore(self.run_dir).lock() as store:
            RunStore.create(self.run_dir, dump_config(self.config))
            try:
                store.save_preprocessing(task.preprocessing())
                store.log("run_start", name=self.run_dir.name)
                return self._execute(task, store, reporters, None, lambda: None)
            except ConfigError:  # found once running (the task's lifetime against halving, init shapes): the
                store.discard_unstarted()  # fixed config can be run under the same name
                raise

    def _continue(self, store: RunStore, task: Task, reporters: list[Reporter]) -> RunResult:
        """Continue a resumed run: everything is read back and checked before anything is written."""
        checkpoint = store.load_checkpoint()

        def restored() -> None:
            if self.overrides:
                atomic_write_text(store.config_path, dump_config(self.config))
            store.log("resume", overrides=self.overrides, skipped=checkpoint.skipped if checkpoint else [])

        return self._execute(task, store, reporters, checkpoint, restored)

    def _mirror(self, task: Task) -> list[Reporter]:
        """The Optuna mirror reporter, if asked for; a storage URL's mirror writes from a process of its own and
        this one never imports Optuna (a mirror given an opened storage writes from a thread).

        The runner's exit waits for its last write and ends its writer, however the run ends: what the caller does
        inside the runner after :meth:`run` (the CLI draws the plots) overlaps that write. A write's error is
        raised there only when the run itself ended without one.
        """
        if self.mirror is None:
            return []
        from evo.mirror import OptunaMirror, changed_settings

        settings = changed_settings(self.config.plasticity, "plasticity")
        mirror = OptunaMirror(self.mirror.storage, self.mirror.name, task.objectives, settings, self.run_dir,
                              self.mirror.artifacts, wait_at_run_end=False)
        self._stack.push(lambda kind, err, tb: mirror.close(raise_errors=kind is None))
        return [mirror]

    def _execute(self, task: Task, store: RunStore, reporters: Sequence[Reporter], checkpoint: Checkpoint | None,
                 restored: Callable[[], None]) -> RunResult:
        """Restore ``checkpoint`` (or start over: a run killed before its first checkpoint keeps no record),
        call ``restored``, run to the end, test the best and record it."""
        assert self.backend is not None
        evolution = Evolution(self.config, task, self.backend, build_operators(self.config), store, reporters)
        if checkpoint is not None:
            evolution.restore(checkpoint.state, store)
        else:
            store.cut_records(None)
        restored()
        result = evolution.run()
        _fail_if_nothing_succeeded(evolution, store)
        result.test = _test_best(task, evolution)
        best = result.best
        store.save_best(
            {"id": best.id, "architecture": str(best.genome), "objectives": best.objectives,
             "generation": best.generation, "test": {str(k): v for k, v in result.test.items()}},
            best.genome if best.genome.weights else None,
        )
        store.log("run_end", best_id=best.id, best=best.objectives, test=result.test)
        return result


def run_evolution(config: EvoConfig, *, run_dir: str | Path | None = None, runs_dir: str | Path = DEFAULT_RUNS_DIR,
                  reporters: Sequence[Reporter] = (), backend: Backend | None = None) -> RunResult:
    """Run a whole evolution into a new run directory and return its result (:meth:`Runner.new`, then run)."""
    return Runner.new(config, run_dir, runs_dir=runs_dir, backend=backend).run(reporters)


def resume_evolution(run_dir: str | Path, overrides: Sequence[str] = (), *, reporters: Sequence[Reporter] = (),
                     backend: Backend | None = None) -> RunResult:
    """Continue a run from its newest intact checkpoint, or extend it (:meth:`Runner.resume`, then run)."""
    return Runner.resume(run_dir, overrides, backend=backend).run(reporters)


def _build_task(config: EvoConfig) -> Task:
    from evo.task_kinds import build_task

    return build_task(config.task, config.plasticity)


def _fail_if_nothing_succeeded(evolution: Evolution, store: RunStore) -> None:
    """A run whose every evaluation failed has no result: say why, with the first failure's message."""
    failed = [ind for ind in evolution.individuals.values() if ind.evaluation is None or not ind.evaluation.ok]
    if len(failed) < len(evolution.individuals):
        return
    first = min(failed, key=lambda ind: ind.id)
    error = (first.evaluation.error if first.evaluation else None) or "no result"
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    reason = lines[-1] if lines else "no result"
    store.log("run_failed", evaluations=len(failed), first_error=error)
    raise RunFailedError(f"{store.root}: all {len(failed)} evaluations failed; the first (individual {first.id}): "
                         f"{reason}")


def _test_best(task: Task, evolution: Evolution) -> dict[int, dict[str, float]]:
    """Test metrics of the best few individuals (only they ever see the test split)."""
    test = getattr(task, "test", None)
    if test is None:
        return {}
    out = {}
    for ind in map(evolution.with_weights, evolution.ranked()[: evolution.evo.test_top_k]):
        if ind.evaluation is not None and ind.evaluation.ok and ind.genome.weights:
            out[ind.id] = test(ind.genome)
    return out
