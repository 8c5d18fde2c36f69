"""Reliability benchmark: SIGKILL `evo run` / `resume` / `search` at random moments; damaged runs; crafted files.

Run ``python -m benchmarks.reliability [--kills 20] [--extension-kills 10] [--search-kills 20] [--seed 0]
[--part runs|search]``; it prints its tables and writes the "reliability" section of docs/benchmarks.md (part
``runs``: items 1 and 2) and the "reliability-search" section (part ``search``: items 3 to 5); ``--part`` runs
one part only and leaves the other's section as it was.

1. Kills: a small serial run (iris, 4 individuals × 6 generations, Optuna mirror on) is run once uninterrupted
   as the reference. Then, for each seeded random moment, a fresh `evo run` is SIGKILLed that long after its run
   directory appeared (moments drawn uniformly over the reference's time from that point to its end; a moment
   the process did not live to see is drawn again within the time it did live, so every trial is a real kill),
   and `evo resume` is called until the run finishes. The same for extensions: a copy of the finished reference
   is extended by 3 generations (`evo resume --set`), killed at a random moment after its start and resumed.
   A trial passes when every individual record (architecture, objectives, genome-file checksum), the final
   population and generation equal the uninterrupted run's, each record is logged once, and the mirror holds one
   finished trial per individual. The window between a generation's records and its
   checkpoint lasts milliseconds, so random kills seldom land in it (the table counts those that did); the tests
   kill there on purpose (tests/test_store.py, tests/test_evolution.py).
2. Corruption: each damage a user met (issue 15) is applied to a copy of a finished toy run (the fast
   ``evo.testing.ToyTask``) and `evo resume` (or the command named) is called in-process; the table lists the one
   line it prints, the exit code and whether the run directory was left as it was.
3. Search kills: a small serial search (the toy run over two parameters, population size and weight-mutation
   sigma; 4 trials, SQLite storage, heartbeat 1 s, no mirror) is run once uninterrupted as the reference. Then,
   for each seeded random moment (drawn as in 1, from the moment its storage file appeared), a fresh search is
   SIGKILLed and the same command run again until the study holds the asked trials COMPLETE. A trial passes when
   there are exactly 4 COMPLETE trials and their parameters and values equal the reference's. The killed
   process's RUNNING trial is failed and re-queued with its parameters (it resumes its run directory); the
   table counts those retried trials and how many equal a reference trial. A trial killed before it sampled
   its parameters (between Optuna's ask and the sampling) has none to pass on: its retry draws its own, and
   is counted apart ("retried without parameters"). A retried trial takes the next free
   trial number, and each trial's sampler is seeded from (seed, trial number) (evo/tuning/loop.py), so the
   trials started after it draw other parameters than the reference's did: a kill during any trial but the
   last leaves 4 COMPLETE trials, not the same 4. A re-run still running after RERUN_S seconds (uninterrupted,
   the search takes seconds) is stopped and counted as hung.
4. Concurrent searches: N `evo search` processes (the search of 3) started at once on one fresh storage, asked
   for 6 trials in all: SQLite, and a throwaway PostgreSQL cluster (``evo.testing.postgres_server``, as
   tests/tuning/test_postgres.py starts it) where its server and driver are installed.
5. Crafted files named ``best.pt`` (the builders of tests/test_export.py, in ``evo.testing``) read with
   ``evo.load(path)`` and with ``trusted=True``: what it says, and whether the payload wrote its marker.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import yaml

from benchmarks._report import table, update_section

EVO = [sys.executable, "-m", "evo"]
KILL_CONFIG: dict[str, Any] = {
    "task": {"kind": "supervised", "dataset": "iris"},
    "evolution": {"generations": 6, "population_size": 4, "eval_steps": 20, "seed": 7},
    "plasticity": {"batch_size": 32},
    "backend": {"kind": "serial"},
}
EXTENDED = 9
EXTEND = ["--set", f"evolution.generations={EXTENDED}"]


def toy_config() -> dict[str, Any]:
    """A run of the fast toy task (every evaluation a few milliseconds)."""
    import evo.testing

    return {"task": {"kind": "custom", "path": evo.testing.__file__, "name": "ToyTask"},
            "evolution": {"generations": 3, "population_size": 4, "seed": 3, "init": {"hidden": [4]}},
            "backend": {"kind": "serial"}}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": _pythonpath_with(Path(__file__).resolve().parents[1])}


def _pythonpath_with(folder: Path) -> str:
    """This process's PYTHONPATH with ``folder`` first."""
    return os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))


def evo(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVO, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env())


def final_state(run_dir: Path) -> dict[str, Any]:
    """What an interrupted run must end with to count as the same run (see the module docstring)."""
    from evo.inspect import load_run

    run = load_run(run_dir)
    lines = (run_dir / "individuals.jsonl").read_text().splitlines()
    records = {r["id"]: (r["architecture"], r["evaluation"]["objectives"], r.get("sha256"))
               for r in map(json.loads, lines)}
    return {"generation": run.history[-1].generation, "population": run.population,
            "records": records, "each once": len(records) == len(lines), "mirror": _mirror_ok(run_dir, len(records))}


def _mirror_ok(run_dir: Path, individuals: int) -> bool | None:
    """One finished trial per individual in the run's mirror study (None without a mirror)."""
    database = run_dir.parent / "evo.db"
    if not database.exists():
        return None
    import optuna

    from evo.mirror import run_study_name

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=run_study_name(run_dir.name), storage=f"sqlite:///{database}").trials
    ids = [t.user_attrs.get("individual_id") for t in trials if t.state.is_finished()]
    return len(ids) == len(set(ids)) == individuals == len(trials)


@dataclass
class Kill:
    """One kill-and-resume trial."""

    delay: float
    phase: str
    resumes: int
    same: bool
    mirror: bool | None
    ran: float = 0.0  # seconds from the moment the kill clock started to the process's end


def _finished(run_dir: Path, generation: int) -> bool:
    """The run ended (its last event) at ``generation``."""
    from evo.store import RunStore

    store = RunStore(run_dir)
    events = store.events() if (run_dir / "events.jsonl").exists() else []
    state = store.latest_checkpoint() if (run_dir / "checkpoints").exists() else None
    return bool(events) and events[-1]["event"] == "run_end" and state is not None and state["generation"] == generation


FINISHED = "finished first"


def _kill_at(args: list[str], ready: Path, delay: float, cwd: Path, where: Callable[[], str]) -> tuple[str, float]:
    """Start ``evo ARGS`` and SIGKILL it ``delay`` seconds after ``ready`` appears (or, when it exists already,
    after the start): (where it was killed, as ``where()`` says, or FINISHED; seconds it ran from that clock)."""
    proc = subprocess.Popen([*EVO, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    while not ready.exists() and proc.poll() is None:
        time.sleep(0.01)
    clock = time.perf_counter()
    time.sleep(delay)
    phase = FINISHED
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        phase = where()
    proc.wait()
    return phase, time.perf_counter() - clock


def kill_and_resume(start: list[str], resume: list[str], run_dir: Path, delay: float, cwd: Path,
                    generation: int) -> Kill:
    """Start ``start``, SIGKILL it ``delay`` seconds after ``run_dir/config.yaml`` appears (or, when it exists
    already, after the start), then resume until the run ends at ``generation``."""
    config = run_dir / "config.yaml"
    phase, ran = _kill_at(start, config, delay, cwd, lambda: _phase(run_dir))
    if phase == FINISHED:
        return Kill(delay, phase, 0, False, None, ran)
    resumes = 0
    while not _finished(run_dir, generation):
        resumes += 1
        again = evo(*(resume if config.exists() else start), cwd=cwd)
        if again.returncode != 0 or resumes > 3:
            raise RuntimeError(f"resume #{resumes} of {run_dir} failed: {again.stderr.strip()}")
    return Kill(delay, phase, resumes, False, None)


def _until_killed(rng: np.random.Generator, span: float, attempt: Callable[[float], Kill]) -> Kill:
    """``attempt`` at a moment drawn over ``span`` seconds; a moment the process did not live to see is drawn
    again within the time it did live, so every trial is a real kill."""
    trial = Kill(0.0, FINISHED, 0, False, None, span)
    while trial.phase == FINISHED:
        trial = attempt(float(rng.uniform(0, trial.ran)))
    return trial


def _phase(run_dir: Path) -> str:
    """Where the run was when killed: its newest checkpoint, and records logged past it."""
    checkpoints = sorted((run_dir / "checkpoints").glob("gen_*.json")) if (run_dir / "checkpoints").exists() else []
    log = run_dir / "individuals.jsonl"
    logged = len(log.read_bytes().splitlines()) if log.exists() else 0
    newest = f"after gen {int(checkpoints[-1].stem[4:])}" if checkpoints else "before gen 0"
    covered = json.loads(checkpoints[-1].read_text())["individuals_logged"] if checkpoints else 0
    return newest + (f", {logged - covered} records past it" if logged > covered else "")


def _timed(args: list[str], ready: Path, cwd: Path) -> float:
    """Run ``evo ARGS`` uninterrupted (the reference): seconds from ``ready`` appearing to its end."""
    proc = subprocess.Popen([*EVO, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env())
    while not ready.exists() and proc.poll() is None:
        time.sleep(0.01)
    appeared = time.perf_counter()
    if proc.wait() != 0:
        raise RuntimeError(f"evo {' '.join(args)} failed: {proc.stderr.read() if proc.stderr else ''}")
    return time.perf_counter() - appeared


def kill_trials(seed: int, kills: int, extension_kills: int, work: Path,
                config: dict[str, Any] = KILL_CONFIG) -> list[tuple[str, Kill]]:
    """The kill table's rows: ``kills`` kills of `evo run`, ``extension_kills`` of an extending `evo resume`."""
    (work / "kill.yaml").write_text(yaml.safe_dump(config))
    generations = config["evolution"]["generations"]
    ref_runs = work / "ref"
    ref_run = ["run", "kill.yaml", "--name", "r", "--runs-dir", str(ref_runs)]
    span = _timed(ref_run, ref_runs / "r" / "config.yaml", work)
    extended = work / "ref-ext"
    shutil.copytree(ref_runs, extended)
    started = time.perf_counter()
    if evo("resume", str(extended / "r"), *EXTEND, cwd=work).returncode != 0:
        raise RuntimeError("the reference extension failed")
    ext_span = time.perf_counter() - started
    reference, ext_reference = final_state(ref_runs / "r"), final_state(extended / "r")
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(kills + extension_kills):
        runs, kind = work / f"k{k}", "run" if k < kills else "extension"

        def attempt(delay: float) -> Kill:
            shutil.rmtree(runs, ignore_errors=True)
            if kind == "run":
                return kill_and_resume(["run", "kill.yaml", "--name", "r", "--runs-dir", str(runs)],
                                       ["resume", str(runs / "r")], runs / "r", delay, work, generations)
            shutil.copytree(ref_runs, runs)
            return kill_and_resume(["resume", str(runs / "r"), *EXTEND], ["resume", str(runs / "r"), *EXTEND],
                                   runs / "r", delay, work, EXTENDED)

        trial = _until_killed(rng, span if kind == "run" else ext_span, attempt)
        expected = reference if kind == "run" else ext_reference
        state = final_state(runs / "r")
        trial.mirror = state.pop("mirror")
        trial.same = state == {k: v for k, v in expected.items() if k != "mirror"}
        rows.append((kind, trial))
        print(f"{kind} kill at +{trial.delay:.2f}s ({trial.phase}): resumes={trial.resumes} same={trial.same} "
              f"mirror={trial.mirror}", flush=True)
        shutil.rmtree(runs)
    return rows


# ----------------------------------------------------------------- corruption cases
def evo_inline(*args: str) -> tuple[int, str]:
    """``evo ARGS`` in this process: its exit code and its stderr."""
    from evo.cli import cli

    err = io.StringIO()
    code: Any = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            cli(list(args))
        except SystemExit as exit_:
            code = exit_.code
    return int(code or 0), err.getvalue().strip()


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()
            and p.name != ".lock"}


@contextlib.contextmanager
def _failing(module: Any, name: str, code: int, after: int) -> Iterator[None]:
    """``module.name`` raising ``OSError(code)`` after ``after`` calls while the block runs (a disk that fills up,
    a place that turns read-only)."""
    real, calls = getattr(module, name), []

    def fail(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) <= after:
            return real(*args, **kwargs)
        raise OSError(code, os.strerror(code))

    setattr(module, name, fail)
    try:
        yield
    finally:
        setattr(module, name, real)


@contextlib.contextmanager
def _lock_held_elsewhere(run_dir: Path) -> Iterator[None]:
    holder = subprocess.Popen([sys.executable, "-c", "import time; from evo.store import RunStore\n"
                               f"with RunStore({str(run_dir)!r}).lock():\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.kill()
        holder.wait()


def _edit_checkpoints(run_dir: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    for path in (run_dir / "checkpoints").glob("gen_*.json"):
        state = json.loads(path.read_text())
        edit(state)
        path.write_text(json.dumps(state))


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _population_genome(run_dir: Path) -> Path:
    """The genome file (its generation's) of a member of the newest checkpoint's population."""
    from evo.inspect import load_run

    view = load_run(run_dir)
    i = view.population[-1]
    return view.store.genome_path(i, view.records[i])


def _nan_config(run_dir: Path) -> Path:
    rows = np.random.default_rng(0).normal(size=(40, 3))
    rows[5, 1], rows[:, 2] = np.nan, rows[:, 0] > 0
    np.savetxt(run_dir.parent / "nan.csv", rows, delimiter=",", header="a,b,y", comments="")
    config = {**toy_config(), "task": {"kind": "supervised", "dataset": "csv", "path": str(run_dir.parent / "nan.csv")},
              "evolution": {"generations": 1, "population_size": 2, "eval_steps": 2}}
    path = run_dir.parent / "nan.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


#: Run at the start of the mirror's own process (a ``sitecustomize`` module on its PYTHONPATH): every storage it
#: opens may not grow past the pages the database has.
_FULL_MIRROR_HOOK = """
import evo.mirror.storage as storage

real = storage.open_storage


def limited(url=None, **kwargs):
    from sqlalchemy import event

    opened = real(url, **kwargs)
    pages = opened.engine.connect().exec_driver_sql("PRAGMA page_count").scalar()
    event.listen(opened.engine, "connect", lambda conn, _: conn.execute(f"PRAGMA max_page_count={pages}"))
    opened.engine.dispose()
    return opened


storage.open_storage = limited
"""


def _full_mirror(run_dir: Path) -> contextlib.AbstractContextManager[Any]:
    """The mirror's SQLite database limited to the pages it has: SQLite's own "database or disk is full".

    The CLI's mirror writes from a process of its own (started with ``spawn``), so the limit is set there, by a
    ``sitecustomize`` module that process finds first on its PYTHONPATH; this process's imports are untouched.
    """
    hook = run_dir.parent / "full-mirror-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_FULL_MIRROR_HOOK)
    return mock.patch.dict(os.environ, {"PYTHONPATH": _pythonpath_with(hook)})


#: (case, damage applied to the run directory (returns a context the command runs in), command).
CASES: list[tuple[str, Callable[[Path], object], list[str]]] = [
    ("second `evo resume` while one runs", _lock_held_elsewhere, ["resume", "RUN", "--no-mirror"]),
    ("empty config.yaml", lambda d: (d / "config.yaml").write_text(""), ["resume", "RUN", "--no-mirror"]),
    ("config.yaml cut in half", lambda d: _cut(d / "config.yaml"), ["resume", "RUN", "--no-mirror"]),
    ("checkpoint without a field", lambda d: _edit_checkpoints(d, lambda s: s.pop("next_id")),
     ["resume", "RUN", "--no-mirror"]),
    ("checkpoint naming an unknown id", lambda d: _edit_checkpoints(d, lambda s: s["history"][1].update(best_id=99)),
     ["resume", "RUN", "--no-mirror"]),
    ("newest checkpoint cut (older intact)", lambda d: _cut(sorted((d / "checkpoints").glob("*.json"))[-1]),
     ["resume", "RUN", "--no-mirror"]),
    ("every checkpoint cut", lambda d: [_cut(p) for p in (d / "checkpoints").glob("*.json")],
     ["resume", "RUN", "--no-mirror"]),
    ("individuals.jsonl cut in half", lambda d: _cut(d / "individuals.jsonl"), ["resume", "RUN", "--no-mirror"]),
    ("genome file overwritten", lambda d: _population_genome(d).write_bytes(b"junk"), ["resume", "RUN", "--no-mirror"]),
    ("genome file deleted", lambda d: _population_genome(d).unlink(), ["export", "RUN", "--format", "state_dict"]),
    ("damaged checkpoint, `evo show`", lambda d: _edit_checkpoints(d, lambda s: s.pop("population")), ["show", "RUN"]),
    ("disk full during generation 4 (ENOSPC)", lambda d: _failing(os, "fsync", errno.ENOSPC, after=3),
     ["resume", "RUN", "--set", "evolution.generations=5", "--no-mirror"]),
    ("run directory turns read-only (EROFS)", lambda d: _failing(tempfile, "mkstemp", errno.EROFS, after=2),
     ["resume", "RUN", "--set", "evolution.generations=5", "--no-mirror"]),
    ("mirror database full", _full_mirror, ["resume", "RUN", "--set", "evolution.generations=5"]),
    ("every evaluation fails (NaN in a CSV)", lambda d: None, ["run", "NAN", "--no-mirror", "--runs-dir", "RUNS"]),
    ("`evo run` given a run directory", lambda d: None, ["run", "RUN"]),
]


def corruption_cases(work: Path, cases: list[tuple[str, Callable[[Path], object], list[str]]] = CASES,
                     ) -> list[tuple[str, int, str, str]]:
    """Each of ``cases`` on a fresh copy of a finished toy run: (case, exit code, message, run directory after)."""
    (work / "toy.yaml").write_text(yaml.safe_dump(toy_config()))
    code, err = evo_inline("run", str(work / "toy.yaml"), "--name", "toy", "--runs-dir", str(work / "ref"))
    if code != 0:
        raise RuntimeError(f"the toy run failed: {err}")
    rows = []
    for i, (case, damage, args) in enumerate(cases):
        runs = work / f"c{i}"
        shutil.copytree(work / "ref", runs)
        run_dir = runs / "toy"
        context = damage(run_dir)
        context = context if isinstance(context, contextlib.AbstractContextManager) else contextlib.nullcontext()
        before = _snapshot(run_dir)
        names = {"RUN": str(run_dir), "RUNS": str(runs), "NAN": str(_nan_config(run_dir)) if "NAN" in args else ""}
        with context:
            code, err = evo_inline(*(names.get(a, a) for a in args))
        after = "unchanged" if _snapshot(run_dir) == before else "resumed" if code == 0 else "changed"
        if after == "changed" and evo_inline("resume", str(run_dir), "--no-mirror")[0] == 0:
            after = "changed; resumes once fixed"
        rows.append((case, code, err.replace(str(work) + os.sep, "").replace("\n", " ⏎ "), after))
        print(f"{case}: exit {code}: {rows[-1][2]} ({after})", flush=True)
        shutil.rmtree(runs)
    return rows


# ----------------------------------------------------------------- searches: kills, concurrency
SEARCH_SPACE: dict[str, Any] = {"parameters": {
    "evolution.population_size": {"type": "int", "low": 2, "high": 6},
    "operators.mutate_weights.sigma": {"type": "float", "low": 0.05, "high": 1.0, "log": True}}}


def search_command(folder: Path, trials: int, storage: str | None = None) -> list[str]:
    """`evo search` of the toy run over SEARCH_SPACE (see :func:`_search_files`), its runs in ``folder``; its
    storage ``storage``, default an SQLite file in ``folder``."""
    return ["search", "toy.yaml", "--space", "space.yaml", "--trials", str(trials), "--study-name", "s",
            "--storage", storage or f"sqlite:///{folder / 'evo.db'}", "--runs-dir", str(folder / "runs"), "--no-mirror",
            "--heartbeat", "1"]


def _search_files(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / "toy.yaml").write_text(yaml.safe_dump(toy_config()))
    (work / "space.yaml").write_text(yaml.safe_dump(SEARCH_SPACE))


def study_trials(storage: str) -> list[Any]:
    """The trials of the benchmark's study ``s`` in ``storage`` (none before the study exists)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name="s", storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


def _completed(trials: list[Any]) -> list[tuple[Any, ...]]:
    """The COMPLETE trials as sorted (parameters, values): what an interrupted search must end with."""
    return sorted((tuple(sorted(t.params.items())), tuple(t.values)) for t in trials if t.state.name == "COMPLETE")


def _search_phase(storage: str) -> str:
    """Where a search was when killed: the trials finished and the one running."""
    try:
        trials = study_trials(storage)
    except Exception as err:  # a database killed while its tables were made  # noqa: BLE001
        return f"storage unreadable ({type(err).__name__})"
    done = sum(t.state.name == "COMPLETE" for t in trials)
    running = [t.number for t in trials if t.state.name == "RUNNING"]
    return f"{done} complete" + (f", trial {running[0]} running" if running else "")


def count_retries(trials: list[Any], reference: list[tuple[Any, ...]]) -> tuple[int, int, int]:
    """Of a study's COMPLETE retries: those of a trial that had sampled its parameters, how many of them equal a
    ``reference`` trial (see :func:`_completed`), and the retries of a trial killed before it sampled any."""
    sampled = {t.number for t in trials if t.params}
    retries = [t for t in trials if "failed_trial" in t.system_attrs]
    retried = _completed([t for t in retries if t.system_attrs["failed_trial"] in sampled])
    return len(retried), sum(r in reference for r in retried), len(_completed(retries)) - len(retried)


#: seconds a re-run of the benchmark's search may take (uninterrupted: seconds) before it counts as hung.
RERUN_S = 120


@dataclass
class SearchKill(Kill):
    """One kill-and-rerun of a search: besides :class:`Kill`, how its retried trials compare."""

    exact: bool = False  # exactly the asked number of COMPLETE trials
    retried: int = 0  # COMPLETE trials that re-ran a killed trial (same parameters, its run directory resumed)
    retried_same: int = 0  # of those, the ones whose parameters and values equal a reference trial's
    retried_blank: int = 0  # COMPLETE retries of a trial killed before it sampled: their parameters are their own
    hung: bool = False  # a re-run did not end within RERUN_S: it waits for a RUNNING trial nothing recovers


def search_kill(delay: float, folder: Path, trials: int, cwd: Path) -> SearchKill:
    """A fresh search SIGKILLed ``delay`` seconds after its storage appeared, then run again until done."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    storage, command = f"sqlite:///{folder / 'evo.db'}", search_command(folder, trials)
    phase, ran = _kill_at(command, folder / "evo.db", delay, cwd, lambda: _search_phase(storage))
    reruns = 0
    while phase != FINISHED and sum(t.state.name == "COMPLETE" for t in study_trials(storage)) < trials:
        reruns += 1
        try:
            again = evo(*command, cwd=cwd, timeout=RERUN_S)
        except subprocess.TimeoutExpired:
            return SearchKill(delay, phase, reruns, False, None, ran, hung=True)
        if again.returncode != 0 or reruns > 3:
            raise RuntimeError(f"re-run #{reruns} of the search in {folder} failed: {again.stderr.strip()}")
    return SearchKill(delay, phase, reruns, False, None, ran)


def search_kill_trials(seed: int, kills: int, work: Path, trials: int = 4) -> list[SearchKill]:
    """``kills`` kills of `evo search` (``trials`` trials), each compared with an uninterrupted search."""
    _search_files(work)
    span = _timed(search_command(work / "ref-search", trials), work / "ref-search" / "evo.db", work)
    reference = _completed(study_trials(f"sqlite:///{work / 'ref-search' / 'evo.db'}"))
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(kills):
        folder = work / f"s{k}"
        trial = _until_killed(rng, span, lambda delay: search_kill(delay, folder, trials, work))  # noqa: B023
        assert isinstance(trial, SearchKill)
        storage = f"sqlite:///{folder / 'evo.db'}"
        got = study_trials(storage)
        completed = _completed(got)
        trial.exact, trial.same = len(completed) == trials, completed == reference
        trial.retried, trial.retried_same, trial.retried_blank = count_retries(got, reference)
        rows.append(trial)
        print(f"search kill at +{trial.delay:.2f}s ({trial.phase}): reruns={trial.resumes} exact={trial.exact} "
              f"same={trial.same} retried={trial.retried_same}/{trial.retried} without parameters={trial.retried_blank}"
              + (f" HUNG with {_search_phase(storage)}" if trial.hung else ""), flush=True)
        shutil.rmtree(folder)
    return rows


def concurrent_searches(storage: str, processes: int, trials: int, work: Path) -> tuple[Any, ...]:
    """``processes`` `evo search` processes started at once on ``storage``, asked for ``trials`` in all:
    (processes, trials, COMPLETE, FAIL as surplus, other FAIL, exit codes)."""
    _search_files(work)
    command = search_command(work, trials, storage)
    procs = [subprocess.Popen([*EVO, *command], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, env=_env()) for _ in range(processes)]
    codes = [proc.wait(timeout=600) for proc in procs]
    got = study_trials(storage)
    surplus = sum(t.state.name == "FAIL" and bool(t.user_attrs.get("surplus")) for t in got)
    complete = sum(t.state.name == "COMPLETE" for t in got)
    return processes, trials, complete, surplus, sum(t.state.name == "FAIL" for t in got) - surplus, codes


def postgres_searches(work: Path) -> list[tuple[Any, ...]]:
    """:func:`concurrent_searches` for 2 and 3 processes, each on a fresh throwaway PostgreSQL cluster; one row
    saying why where none can be started here."""
    from evo.testing import PostgresUnavailable, postgres_server

    rows = []
    for n in (2, 3):
        try:
            with postgres_server() as url:
                rows.append(("PostgreSQL", *concurrent_searches(url, n, 6, work / f"pg{n}")))
        except PostgresUnavailable as err:
            print(f"PostgreSQL: {err}", flush=True)
            return [(f"PostgreSQL: not measured ({err})", *"–" * 6)]
    return rows


# ----------------------------------------------------------------- crafted files
def _crafted(kind: str, path: Path, marker: Path) -> Path:
    """A file of ``kind`` (see CRAFTED) at ``path`` that creates ``marker`` if its stored code runs."""
    import torch

    from evo.genome import Genome
    from evo.testing import MkdirPayload, crafted_exported_program, crafted_torchscript

    genome = Genome.mlp(3, [], 2, seed=3)
    if kind == "torchscript":
        return crafted_torchscript(path, marker)
    if kind == "exported_program":
        return crafted_exported_program(genome, path, marker, path.parent)
    torch.save({"genome": genome.to_dict(), "weights": dict(genome.weights), "x": MkdirPayload(str(marker))}, path)
    return path


#: (kind, what it is); each is named best.pt, a name that promises a plain genome file.
CRAFTED = [("torchscript", "TorchScript file whose `__setstate__` writes a file"),
           ("exported_program", "torch.export `.pt2` archive with a pickled payload"),
           ("genome", "genome file with a pickled payload")]


def crafted_files(work: Path) -> list[tuple[str, bool, str, bool]]:
    """Each crafted file through ``evo.load`` (default, then ``trusted=True``): (file, trusted, what it said,
    whether the marker was written)."""
    import warnings

    import evo

    rows = []
    for kind, what in CRAFTED:
        for trusted in (False, True):
            folder = work / f"{kind}-{trusted}"
            folder.mkdir(parents=True)
            marker = folder / "marker"
            path = _crafted(kind, folder / "best.pt", marker)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    evo.load(path, trusted=trusted)
                said = "loaded"
            except Exception as err:  # whatever happens after the payload ran  # noqa: BLE001
                said = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            rows.append((what, trusted, said.replace(str(work) + os.sep, ""), marker.exists()))
            print(f"{what}, trusted={trusted}: {rows[-1][2]} (marker written: {marker.exists()})", flush=True)
    return rows


def _code(text: str) -> str:
    """``text`` as Markdown inline code, even when it holds backticks."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _about(*items: int) -> str:
    """The usage paragraph and the numbered ``items`` of the module docstring: a section's introduction."""
    usage, numbered = __doc__.split("\n\n")[1:3]
    chosen = [text for text in re.split(r"\n(?=\d\. )", numbered) if int(text.split(".")[0]) in items]
    return usage + "\n\n" + "\n".join(chosen).rstrip()


def _conditions(seed: int, started: float) -> str:
    return (f"Seed {seed}; {(time.perf_counter() - started) / 60:.1f} min in all; load average "
            f"{os.getloadavg()[2]:.1f} over the last 15 min on {os.cpu_count()} cores "
            "(timings depend on what else runs).")


def runs_part(args: argparse.Namespace, work: Path) -> str:
    """Items 1 and 2: the "reliability" section's body."""
    started = time.perf_counter()
    (work / "cases").mkdir()
    cases = corruption_cases(work / "cases")
    kills = kill_trials(args.seed, args.kills, args.extension_kills, work)
    kill_rows = []
    for kind in ("run", "extension"):
        trials = [t for k, t in kills if k == kind]
        if trials:
            phases = sorted({t.phase.split(",")[0] for t in trials})
            kill_rows.append((f"`evo {'run' if kind == 'run' else f'resume --set evolution.generations={EXTENDED}'}`",
                              len(trials), f"{sum(t.same for t in trials)}/{len(trials)}",
                              f"{sum(bool(t.mirror) for t in trials)}/{len(trials)}",
                              sum("records past" in t.phase for t in trials), ", ".join(phases)))
    return (f"{_about(1, 2)}\n\n{_conditions(args.seed, started)}\n\n"
            + table(["killed", "kills", "same result as uninterrupted", "mirror: one finished trial each",
                     "killed with records past the checkpoint", "killed at"], kill_rows)
            + "\n\n" + table(["damage", "exit", "what the user reads (one line)", "run directory after"],
                             [(c, code, _code(msg), after) for c, code, msg, after in cases]))


def search_part(args: argparse.Namespace, work: Path) -> str:
    """Items 3 to 5: the "reliability-search" section's body."""
    started = time.perf_counter()
    crafted = crafted_files(work / "crafted")
    kills = search_kill_trials(args.seed, args.search_kills, work / "search-kills")
    concurrent = [("SQLite", *concurrent_searches(f"sqlite:///{work / f'c{n}' / 'evo.db'}", n, 6, work / f"c{n}"))
                  for n in (2, 3)]
    concurrent += postgres_searches(work)
    n = len(kills)
    phases = sorted({t.phase.split(",")[-1].strip() for t in kills})
    kill_row = ("`evo search --trials 4`", n, f"{sum(t.exact for t in kills)}/{n}", f"{sum(t.same for t in kills)}/{n}",
                f"{sum(t.retried_same for t in kills)}/{sum(t.retried for t in kills)}",
                sum(t.retried_blank for t in kills), sum(t.hung for t in kills), ", ".join(phases))
    return (f"{_about(3, 4, 5)}\n\n{_conditions(args.seed, started)}\n\n"
            + table(["killed", "kills", "exactly 4 COMPLETE trials", "same parameters and values as uninterrupted",
                     "retried trials equal to a reference trial", "retried without parameters",
                     f"re-run hung (> {RERUN_S} s)", "killed at"],
                    [kill_row])
            + "\n\n" + table(["storage", "processes", "trials asked", "COMPLETE", "FAIL: surplus (not run)",
                                "FAIL: other", "exit codes"],
                               concurrent)
            + "\n\n" + table(["crafted file", "`evo.load`", "what it says", "marker written"],
                               [(what, "trusted=True" if trusted else "default", _code(said), "yes" if wrote else "no")
                                for what, trusted, said, wrote in crafted]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--extension-kills", type=int, default=10)
    parser.add_argument("--search-kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=["runs", "search"], help="run this part only (default: both)")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    parts = [("runs", runs_part, "reliability", "Reliability: kills and damaged run directories"),
             ("search", search_part, "reliability-search",
              "Reliability: killed and concurrent searches, crafted files")]
    for name, part, section, title in parts:
        if args.part in (None, name):
            with tempfile.TemporaryDirectory() as tmp:
                body = part(args, Path(tmp))
            print(body)
            if not args.no_doc:
                update_section(section, title, body)

if __name__ == "__main__":
    main()
