"""Reliability benchmark: SIGKILL `evo run` / `evo resume` at random moments and resume; damage a run, read the error.

Run ``python -m benchmarks.reliability [--kills 20] [--extension-kills 10] [--seed 0]``; it prints two tables and
writes the "reliability" section of docs/benchmarks.md.

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
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
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
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def evo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVO, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=_env())


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

    from evo.search import run_study_name

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


def kill_and_resume(start: list[str], resume: list[str], run_dir: Path, delay: float, cwd: Path,
                    generation: int) -> Kill:
    """Start ``start``, SIGKILL it ``delay`` seconds after ``run_dir/config.yaml`` appears (or, when it exists
    already, after the start), then resume until the run ends at ``generation``."""
    proc = subprocess.Popen([*EVO, *start], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    config = run_dir / "config.yaml"
    while not config.exists() and proc.poll() is None:
        time.sleep(0.01)
    clock = time.perf_counter()
    time.sleep(delay)
    phase = "finished first"
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        phase = _phase(run_dir)
    proc.wait()
    if phase == "finished first":
        return Kill(delay, phase, 0, False, None, time.perf_counter() - clock)
    resumes = 0
    while not _finished(run_dir, generation):
        resumes += 1
        again = evo(*(resume if config.exists() else start), cwd=cwd)
        if again.returncode != 0 or resumes > 3:
            raise RuntimeError(f"resume #{resumes} of {run_dir} failed: {again.stderr.strip()}")
    return Kill(delay, phase, resumes, False, None)


def _phase(run_dir: Path) -> str:
    """Where the run was when killed: its newest checkpoint, and records logged past it."""
    checkpoints = sorted((run_dir / "checkpoints").glob("gen_*.json")) if (run_dir / "checkpoints").exists() else []
    log = run_dir / "individuals.jsonl"
    logged = len(log.read_bytes().splitlines()) if log.exists() else 0
    newest = f"after gen {int(checkpoints[-1].stem[4:])}" if checkpoints else "before gen 0"
    covered = json.loads(checkpoints[-1].read_text())["individuals_logged"] if checkpoints else 0
    return newest + (f", {logged - covered} records past it" if logged > covered else "")


def kill_trials(seed: int, kills: int, extension_kills: int, work: Path,
                config: dict[str, Any] = KILL_CONFIG) -> list[tuple[str, Kill]]:
    """The kill table's rows: ``kills`` kills of `evo run`, ``extension_kills`` of an extending `evo resume`."""
    (work / "kill.yaml").write_text(yaml.safe_dump(config))
    generations = config["evolution"]["generations"]
    ref_runs = work / "ref"
    proc = subprocess.Popen([*EVO, "run", "kill.yaml", "--name", "r", "--runs-dir", str(ref_runs)], cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    while not (ref_runs / "r" / "config.yaml").exists() and proc.poll() is None:
        time.sleep(0.01)
    appeared = time.perf_counter()
    if proc.wait() != 0:
        raise RuntimeError(f"the reference run failed: {proc.stderr.read() if proc.stderr else ''}")
    span = time.perf_counter() - appeared
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
        trial = Kill(0.0, "finished first", 0, False, None, span if kind == "run" else ext_span)
        while trial.phase == "finished first":  # the machine ran it faster than the reference: a new moment
            shutil.rmtree(runs, ignore_errors=True)
            delay = float(rng.uniform(0, trial.ran))
            if kind == "run":
                trial = kill_and_resume(["run", "kill.yaml", "--name", "r", "--runs-dir", str(runs)],
                                        ["resume", str(runs / "r")], runs / "r", delay, work, generations)
            else:
                shutil.copytree(ref_runs, runs)
                trial = kill_and_resume(["resume", str(runs / "r"), *EXTEND], ["resume", str(runs / "r"), *EXTEND],
                                        runs / "r", delay, work, EXTENDED)
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
    state = json.loads(sorted((run_dir / "checkpoints").glob("gen_*.json"))[-1].read_text())
    return run_dir / "individuals" / f"{state['population'][-1]}.pt"


def _nan_config(run_dir: Path) -> Path:
    rows = np.random.default_rng(0).normal(size=(40, 3))
    rows[5, 1], rows[:, 2] = np.nan, rows[:, 0] > 0
    np.savetxt(run_dir.parent / "nan.csv", rows, delimiter=",", header="a,b,y", comments="")
    config = {**toy_config(), "task": {"kind": "supervised", "dataset": "csv", "path": str(run_dir.parent / "nan.csv")},
              "evolution": {"generations": 1, "population_size": 2, "eval_steps": 2}}
    path = run_dir.parent / "nan.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _full_mirror(run_dir: Path) -> contextlib.AbstractContextManager[None]:
    """The mirror's SQLite database limited to the pages it has: SQLite's own "database or disk is full"."""
    from sqlalchemy import event

    from evo.search.study import open_storage

    real = open_storage

    def limited(url: str | None = None, **kwargs: Any) -> Any:
        storage = real(url, **kwargs)
        pages = storage.engine.connect().exec_driver_sql("PRAGMA page_count").scalar()
        event.listen(storage.engine, "connect", lambda conn, _: conn.execute(f"PRAGMA max_page_count={pages}"))
        storage.engine.dispose()
        return storage

    import evo.search.study

    @contextlib.contextmanager
    def patched() -> Iterator[None]:
        evo.search.study.open_storage = limited
        try:
            yield
        finally:
            evo.search.study.open_storage = real

    return patched()


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


def _code(text: str) -> str:
    """``text`` as Markdown inline code, even when it holds backticks."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--extension-kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "cases").mkdir()
        cases = corruption_cases(work / "cases")
        kills = kill_trials(args.seed, args.kills, args.extension_kills, work)
    minutes = (time.perf_counter() - started) / 60
    kill_rows = []
    for kind in ("run", "extension"):
        trials = [t for k, t in kills if k == kind]
        if trials:
            phases = sorted({t.phase.split(",")[0] for t in trials})
            kill_rows.append((f"`evo {'run' if kind == 'run' else f'resume --set evolution.generations={EXTENDED}'}`",
                              len(trials), f"{sum(t.same for t in trials)}/{len(trials)}",
                              f"{sum(bool(t.mirror) for t in trials)}/{len(trials)}",
                              sum("records past" in t.phase for t in trials), ", ".join(phases)))
    load = os.getloadavg()[2]
    body = (f"{__doc__.split(chr(10) + chr(10), 1)[1].strip()}\n\nSeed {args.seed}; {minutes:.1f} min in all; load "
            f"average {load:.1f} over the last 15 min on {os.cpu_count()} cores (timings depend on what else runs).\n\n"
            + table(["killed", "kills", "same result as uninterrupted", "mirror: one finished trial each",
                     "killed with records past the checkpoint", "killed at"], kill_rows)
            + "\n\n" + table(["damage", "exit", "what the user reads (one line)", "run directory after"],
                             [(c, code, _code(msg), after) for c, code, msg, after in cases]))
    print(body)
    if not args.no_doc:
        update_section("reliability", "Reliability: kills and damaged run directories", body)


if __name__ == "__main__":
    main()
