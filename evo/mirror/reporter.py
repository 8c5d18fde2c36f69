"""The Optuna mirror of a run: every evaluated individual becomes a trial, so optuna-dashboard can browse a run.

One study per run (``run:<run name>``), one trial per evaluated individual (workers never touch the storage):

- params: the architecture summary (``depth``, ``width.<layer>``, ``num_params``, ``skips``), how many
  times each operator made it (``op.<name>``), its hyperparameter genes (``hparams.<name>``, see
  :mod:`evo.hyper`), and the plasticity settings that differ from the defaults (``plasticity.*``);
- values: the task's objectives (a failed individual is a FAIL trial);
- user attributes: generation, individual id, parents, lineage, operators, architecture, run dir, metrics;
- an artifact, for the individuals that were the run's best or on its Pareto front when their generation
  ended: the architecture diagram (SVG, changes against its parent highlighted). Drawing every
  individual would cost more than evaluating a small one; ``evo show --lineage`` draws any other.

The driver hands what is pending to the writer (:class:`evo.mirror.trials.TrialWriter`) at the end of a
generation when the writer is idle, else after 2 s (:data:`WRITE_EVERY_S`): fast generations that end while a
write is in flight are written together, and no backlog builds up for the run's end to wait for. The writer
adds each batch in one transaction (:func:`evo.mirror.bulk.add_trials`) while the next generation is evaluated.
A runner that owns the mirror (``evo run``) makes it with ``wait_at_run_end=False``: the run's last batch is
handed over without waiting, and the runner's exit (:meth:`OptunaMirror.close`) waits for it, after the best
was tested and the plots drawn, so that work overlaps the writer's (a short XOR run ends before the writer's
process has even imported Optuna).
Where the writer runs:

- given a storage URL (``evo run``, ``evo resume``), in a process of its own, started with ``spawn`` (a fork would
  copy the driver's torch and Ray threads mid-state): it imports Optuna, opens the storage, creates the study and
  writes every batch, on another core than the driver's. The driver never imports Optuna; it hands over
  weight-free copies of the individuals (a few hundred bytes each). The process ignores Ctrl-C and SIGTERM (a
  terminal's Ctrl-C reaches the whole process group): the driver, stopping, has it write what is pending, then
  ends it; it ends by itself should the driver be killed;
- given an opened storage (``evo search`` shares its own with its trials' runs; an in-memory SQLite URL, which
  another process could not see), on a thread of the driver.

Example:
    >>> from evo.types import Objective
    >>> mirror = OptunaMirror("sqlite:///runs/evo.db", "demo", [Objective("fitness")])  # doctest: +SKIP
    >>> Runner.new(config).run([mirror])  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from evo.errors import StorageError
from evo.interrupts import STOP_SIGNALS
from evo.paths import DEFAULT_ARTIFACTS
from evo.records import GenerationRecord, Individual, Reporter
from evo.types import Objective

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

    from evo.mirror.trials import TrialWriter

#: the mirror hands its pending individuals to the writer at most this often (seconds), and at the run's end
WRITE_EVERY_S = 2.0

__all__ = ["OptunaMirror", "changed_settings", "run_study_name", "setting_params"]

_writer: TrialWriter | None = None  # in the mirror's own process: the writer it serves (made by _open)


def run_study_name(run_name: str) -> str:
    """The mirror study of the run called ``run_name``."""
    return f"run:{run_name}"


def changed_settings(model: BaseModel, prefix: str) -> dict[str, Any]:
    """``setting_params`` of the fields of a config section that differ from its defaults.

    Those are the settings a user or a search chose; the rest would only add constant columns
    (and storage writes) to every mirrored trial.
    """
    current = setting_params(model.model_dump(mode="json"), prefix)
    default = setting_params(type(model)().model_dump(mode="json"), prefix)
    return {name: value for name, value in current.items() if default.get(name, object()) != value}


def setting_params(settings: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Scalar leaves of a nested settings mapping as ``prefix.a.b`` params (lists as text)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            out.update(setting_params(value, f"{prefix}.{key}"))
        else:
            out[f"{prefix}.{key}"] = value if isinstance(value, bool | int | float | str) or value is None else str(value)
    return out


class OptunaMirror(Reporter):
    """A :class:`Reporter` that adds one trial per evaluated individual to the run's study.

    Args:
        storage: a storage URL (written by a process of the mirror's own, see the module docstring) or an opened
            Optuna storage (written by a thread of this one; see :func:`evo.mirror.open_storage`).
        run_name: the run's name; the study is ``run:<run_name>``.
        objectives: the task's objectives, in order (they set the study's directions).
        settings: flat ``name → value`` params every trial carries (e.g. :func:`setting_params` of the plasticity config).
        run_dir: recorded on each trial, to find the weights.
        artifacts: folder of the artifact store for architecture diagrams; None = no diagrams.
        wait_at_run_end: whether :meth:`on_run_end` waits until everything is written; False = it only hands the
            last batch over, and the owner's :meth:`close` waits (and raises the writer's error).

    Attributes:
        where: the storage as error messages name it (its URL where known).
        writer_cpu_s: the CPU seconds the writer's process (its start-up and set-up included) or thread had spent
            when it last finished a task.

    A script that gives it a URL needs the ``if __name__ == "__main__":`` guard of any script starting processes
    with ``spawn``: the mirror's process imports the script's main module.

    Raises:
        StorageError: an opened storage refused the study (with a URL, that error comes when the driver first
            waits for the writer: :meth:`flush`, the run's end, or a write while the previous two are pending).
    """

    def __init__(
        self,
        storage: str | BaseStorage,
        run_name: str,
        objectives: Sequence[Objective],
        settings: Mapping[str, Any] | None = None,
        run_dir: str | Path | None = None,
        artifacts: str | Path | None = DEFAULT_ARTIFACTS,
        wait_at_run_end: bool = True,
    ) -> None:
        self.study_name = run_study_name(run_name)
        spec = (self.study_name, list(objectives), dict(settings or {}), None if run_dir is None else str(run_dir),
                None if artifacts is None else str(artifacts))
        self._futures: deque[Future[float]] = deque()  # the writer's tasks, oldest first
        self._writer: TrialWriter | None = None  # the writer when it runs on a thread here
        self._set_up: Future[float] | None = None  # the set-up of the mirror's process
        self._study: optuna.Study | None = None
        if isinstance(storage, str) and _shared(storage):
            self.where = storage
            self._executor: Executor = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), initializer=_serve)
            self._set_up = self._executor.submit(_open, storage, *spec)  # starts the process now
            self._futures.append(self._set_up)
        else:
            self._writer = _thread_writer(storage, spec)
            self.where = self._writer.where
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evo-mirror")
        self._pending: list[Individual] = []
        self._drawn: set[int] = set()  # individuals that get a diagram (best or on the front when their generation ended)
        self._last_write = -math.inf
        self._failed = False
        self._wait_at_run_end = wait_at_run_end
        self.writer_cpu_s = 0.0

    @property
    def study(self) -> optuna.Study:
        """The run's study, to read what the mirror wrote (:meth:`flush` first); opened in this process, once the
        mirror's own has created it, when that one writes.

        Raises:
            StorageError: the mirror's process could not set the study up.
        """
        if self._writer is not None:
            return self._writer.study
        if self._study is None:
            import optuna

            from evo.mirror.storage import open_storage

            assert self._set_up is not None
            self._set_up.result()
            self._study = optuna.load_study(study_name=self.study_name, storage=open_storage(self.where))
        return self._study

    def on_evaluated(self, individual: Individual) -> None:
        self._pending.append(_weightless(individual))

    def on_restored(self, individuals: Sequence[Individual]) -> None:
        """Hand the writer a resumed run's individuals, parents first: it mirrors the evaluated ones a killed
        process checkpointed but never wrote (the mirror writes after the checkpoint), and learns the lineage of
        the others."""
        self._pending.extend(_weightless(ind) for ind in sorted(individuals, key=lambda ind: ind.id))
        if self._pending:
            self._submit()

    def on_generation_end(self, record: GenerationRecord) -> None:
        """Mark the generation's best and front for diagrams; hand what is pending to the writer when it is idle,
        or else once :data:`WRITE_EVERY_S` seconds have passed since the last write. Fast generations (0.1 s of
        XOR) then go several to a transaction while the writer is busy, and no backlog builds up for the run's
        end to wait for (with a write every 2 s, the XOR run waited 0.85 s for its last one)."""
        self._drawn.update({record.best_id, *record.extra.get("pareto", ())})
        idle = all(future.done() for future in self._futures)
        if idle or time.monotonic() - self._last_write >= WRITE_EVERY_S:
            self._submit()

    def on_run_end(self) -> None:
        """Write what is left, wait for the writer, and end it (its process), also when writing failed; with
        ``wait_at_run_end`` off, only hand what is left to the writer (:meth:`close` waits)."""
        if not self._wait_at_run_end:
            if self._pending:
                self._submit()
            return
        try:
            self.flush()
        finally:
            self.close()

    def flush(self) -> None:
        """Write every individual evaluated so far and wait until all of them are in the storage.

        Raises:
            StorageError: the write failed (e.g. SQLite's "database or disk is full"); one line naming the storage.
                The mirror writes nothing after its first error.
        """
        if self._pending:
            self._submit()
        self._wait()

    def close(self, raise_errors: bool = True) -> None:
        """Wait until everything handed to the writer is written, then end the writer (the mirror's process exits);
        what was not handed over is dropped (a resumed run mirrors it). The runner calls it however a run ends.

        Raises:
            StorageError: a write failed (see :meth:`flush`), unless ``raise_errors`` is off: a run ending on
                another error, which this one must not hide.
        """
        try:
            self._wait()
        except StorageError:
            if raise_errors:
                raise
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _wait(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` of the writer's tasks are in flight, oldest first; the error of a finished
        one comes out here.

        Raises:
            StorageError: see :meth:`flush`; also when the mirror's process died.
        """
        while self._futures and (len(self._futures) > keep or self._futures[0].done()):
            try:
                self.writer_cpu_s = self._futures[0].result()
            except BrokenProcessPool as err:
                self._fail()
                raise StorageError(f"{self.where}: the Optuna mirror's process ended unexpectedly; the run stopped at "
                                   "its last checkpoint (resume it, or with --no-mirror)") from err
            except Exception:
                self._fail()
                raise
            self._futures.popleft()

    def _fail(self) -> None:
        """After an error the mirror writes nothing more: the run is stopping, and resuming it mirrors the rest."""
        self._failed = True
        self._futures.clear()

    def _submit(self) -> None:
        batch, self._pending = self._pending, []
        drawn, self._drawn = self._drawn, set()
        if self._failed:
            return
        self._wait(keep=2)  # the driver waits only when the writer lags by two batches (or the set-up and one)
        self._last_write = time.monotonic()
        self._futures.append(self._executor.submit(_write, batch, drawn, self._writer))


def _shared(url: str) -> bool:
    """Whether another process sees what is written through ``url``: anything but an in-memory SQLite database."""
    return not url.startswith("sqlite:") or (":memory:" not in url and url.rstrip("/") != "sqlite:")


def _thread_writer(storage: str | BaseStorage, spec: tuple[Any, ...]) -> TrialWriter:
    """The writer of a mirror given an opened (or in-memory) storage, named by its URL where it has one."""
    from optuna.storages import RDBStorage

    from evo.mirror.storage import open_storage
    from evo.mirror.trials import TrialWriter

    opened = open_storage(storage) if isinstance(storage, str) else storage
    where = storage if isinstance(storage, str) else opened.url if isinstance(opened, RDBStorage) else type(opened).__name__
    return TrialWriter(opened, where, *spec)


def _weightless(individual: Individual) -> Individual:
    """What the writer needs of an individual: neither weights nor optimiser state (cheap to hand over)."""
    ev = individual.evaluation
    return dataclasses.replace(individual, genome=individual.genome.replace(weights={}, optim_state={}),
                               evaluation=None if ev is None else dataclasses.replace(ev, genome=None))


# ------------------------------------------------------------------ where the writer runs
def _serve() -> None:
    """Start of the mirror's process: stop signals are the driver's to act on (it has this process write what is
    pending, then ends it), the process ends with the driver's should that be killed, and it ends without tearing
    its modules down (a driver ending its run waits for that; every write is committed by then)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    threading.Thread(target=_exit_with_driver, name="evo-mirror-driver", daemon=True).start()
    atexit.register(_exit_now)


def _exit_now() -> None:
    """The last exit handler: flush what was printed and exit at once."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _exit_with_driver() -> None:
    """Exit when the driver's process has ended (the pipe it spawned this one through closes)."""
    driver = multiprocessing.parent_process()
    assert driver is not None
    driver.join()
    os._exit(1)


def _open(url: str, *spec: Any) -> float:
    """In the mirror's process: open the storage and set up the writer every later :func:`_write` uses; returns
    the process's CPU seconds."""
    global _writer
    import optuna

    from evo.mirror.storage import open_storage
    from evo.mirror.trials import TrialWriter

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" from a process nobody started
    _writer = TrialWriter(open_storage(url), url, *spec)
    return time.process_time()


def _write(batch: list[Individual], drawn: set[int], writer: TrialWriter | None = None) -> float:
    """Write ``batch`` (see :meth:`TrialWriter.write`) with ``writer`` on the driver's writer thread, or in the
    mirror's process with its own; returns that thread's or process's CPU seconds."""
    if writer is not None:
        writer.write(batch, drawn)
        return time.thread_time()
    assert _writer is not None, "the mirror's process was not set up (the driver got that error first)"
    _writer.write(batch, drawn)
    return time.process_time()
