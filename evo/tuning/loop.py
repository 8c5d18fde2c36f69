"""Running a study's trials from threads and processes that share one storage: exactly ``trials`` in all.

Optuna's ``n_trials`` counts the trials of one ``optimize`` call, so two processes asked for 8 each run 16,
and ``MaxTrialsCallback`` looks only after a trial ended (8, plus one per other worker still running). Here a
worker starts a trial only while fewer than ``trials`` are finished (complete or pruned) or running in the
storage. Once that many are, it waits while some still run: one may yet fail (its process killed — the
heartbeat, or the check for dead processes of this host, re-queues it) and then this worker runs it. Two
processes may still take the last place at the same moment: the trial numbered later finds ``trials`` taken
before it and fails at once, unrun (:class:`Surplus`; a user attr ``surplus`` marks it).

Each trial's sampler is seeded from (seed, trial number): a resumed search, and each of several processes
sharing a study, draws new values instead of the ones an earlier start drew already.

Example:
    >>> study = optuna.create_study()
    >>> TrialLoop(study, lambda trial: trial.suggest_float("x", 0, 1), trials=3).run(jobs=2)
    >>> len(study.trials)
    3
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from evo.errors import ConfigError
from evo.tuning.study import recover_orphans

__all__ = ["POLL_S", "Surplus", "TakenOver", "TrialLoop", "ended", "trial_seed"]

#: seconds a worker waits before looking again whether another's running trial finished or died.
POLL_S = 2.0
#: user attribute marking a trial that was not run because the study had all its trials (see :class:`Surplus`).
SURPLUS_ATTR = "surplus"
_DONE = (TrialState.COMPLETE, TrialState.PRUNED)
_TAKEN = (*_DONE, TrialState.RUNNING)

Objective = Callable[[optuna.Trial], float | Sequence[float]]


class Surplus(Exception):
    """A trial started by a process that raced another for the study's last place: it fails without running."""


class TakenOver(Exception):
    """Another process ended this process's trial (to it, the trial's heartbeat had stopped) and re-queued it:
    the objective stops, and the loop goes on with another trial."""


class _QuietFailures(logging.Filter):
    """Optuna logs a failed trial with its traceback; for a surplus or taken-over trial, and for one whose
    sampled values the config rejects (a ConfigError: bad input, not a bug), its one line says all there is."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], (Surplus, TakenOver, ConfigError)):
            record.exc_info = None
        return True


logging.getLogger("optuna.study._optimize").addFilter(_QuietFailures())


def trial_seed(seed: int | None, number: int) -> int | None:
    """The sampler seed of trial ``number`` in a search seeded ``seed`` (None stays None: unseeded)."""
    return None if seed is None else int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialLoop:
    """Runs ``objective`` in trials of ``study`` until ``trials`` are finished, counting every process's.

    Args:
        study: the study (its storage, sampler and pruner; each worker thread gets its own ``Study`` object).
        objective: one trial; an exception in ``catch`` fails that trial only, any other stops the loop.
        trials: finished trials wanted in the study, all processes together.
        sampler_for: the sampler for trial number ``n``; None: the study's own, shared by the threads.
        timeout: stop starting (or waiting for) trials after this many seconds.
        catch: exceptions that fail one trial. After ``trials`` failures in this process it gives up.
        callbacks: called with the study and each trial this process finished (Optuna's ``optimize`` callbacks).
    """

    def __init__(self, study: optuna.Study, objective: Objective, trials: int, *,
                 sampler_for: Callable[[int], optuna.samplers.BaseSampler] | None = None,
                 timeout: float | None = None, catch: tuple[type[Exception], ...] = (),
                 callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = ()) -> None:
        self.study, self.objective, self.trials = study, objective, trials
        self.sampler_for, self.catch, self.callbacks = sampler_for, catch, list(callbacks)
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._claim = threading.Lock()  # held from counting the trials until this worker's trial is RUNNING
        self._stop = threading.Event()
        self._failures = 0

    def run(self, jobs: int = 1) -> None:
        """Run trials in ``jobs`` threads (1: in this thread, so Ctrl-C reaches the trial) until done."""
        if jobs == 1:
            self._work()
            return
        errors: list[BaseException] = []
        threads = [threading.Thread(target=self._guarded, args=(errors,), name=f"evo-trial-{i}", daemon=True)
                   for i in range(jobs)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        finally:  # Ctrl-C: the others start nothing more (their running trials are re-queued on resume)
            self._stop.set()
        if errors:
            raise errors[0]

    def _guarded(self, errors: list[BaseException]) -> None:
        try:
            self._work()
        except BaseException as err:  # a bug in a trial: stop the others and raise it in the caller
            errors.append(err)
            self._stop.set()

    def _work(self) -> None:
        storage: BaseStorage = self.study._storage
        study = optuna.Study(self.study.study_name, storage, sampler=self.study.sampler, pruner=self.study.pruner)
        while self._may_start(study):
            claim, attempt = _Held(self._claim), _Attempt()
            try:
                study.optimize(lambda trial: self._run(study, trial, claim, attempt), n_trials=1,
                               catch=(*self.catch, Surplus), callbacks=[self._count_failure, *self.callbacks])
            except Exception:
                if attempt.ended_elsewhere is None:
                    raise
                warnings.warn(f"trial {attempt.ended_elsewhere} was ended by another process while it ran here "
                              "(to it, this process's heartbeat had stopped: paused or starved) and re-queued "
                              "there; its result here is discarded", stacklevel=1)
            finally:
                claim.release()

    def _may_start(self, study: optuna.Study) -> bool:
        """Wait until this worker may start a trial (True, holding the claim lock) or the search is over."""
        while not self._stop.is_set() and self._failures < self.trials and not self._expired():
            recover_orphans(study)  # trials of dead processes come back as waiting ones, taken first
            self._claim.acquire()
            taken = Counter(t.state for t in study.get_trials(deepcopy=False, states=_TAKEN))
            done = taken[TrialState.COMPLETE] + taken[TrialState.PRUNED]
            if done + taken[TrialState.RUNNING] < self.trials:
                return True
            self._claim.release()
            if done >= self.trials:
                return False
            self._stop.wait(POLL_S)  # the others' running trials may still fail and come back
        return False

    def _expired(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    def _run(self, study: optuna.Study, trial: optuna.Trial, claim: _Held,
             attempt: _Attempt) -> float | Sequence[float]:
        try:
            taken = study.get_trials(deepcopy=False, states=(*_TAKEN, TrialState.WAITING))
            before = sum(t.number < trial.number for t in taken)
        finally:
            claim.release()
        if before >= self.trials:
            trial.set_user_attr(SURPLUS_ATTR, True)
            raise Surplus(f"not run: the study had its {self.trials} trials (another process took the last place "
                          "at the same moment)")
        if self.sampler_for is not None:
            study.sampler = self.sampler_for(trial.number)  # this thread's study: no other trial samples with it
        try:
            return self.objective(trial)
        finally:  # Optuna will refuse this process's tell (an error) if another process already ended the trial
            if ended(trial):
                attempt.ended_elsewhere = trial.number

    def _count_failure(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL and not trial.user_attrs.get(SURPLUS_ATTR):
            self._failures += 1


def ended(trial: optuna.Trial) -> bool:
    """Whether the storage holds ``trial`` as finished: before this process's own tell, that means another
    process ended it (failed it as stale and re-queued it)."""
    return trial.study._storage.get_trial(trial._trial_id).state.is_finished()


@dataclass
class _Attempt:
    """What became of one worker's trial: ``ended_elsewhere`` is its number when another process ended it
    (failed it as stale and re-queued it) while it ran here."""

    ended_elsewhere: int | None = None


class _Held:
    """A lock this thread holds, released once: when its trial is RUNNING, or when no trial started."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock, self.held = lock, True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()
