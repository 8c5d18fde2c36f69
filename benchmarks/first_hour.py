"""The first hour as users meet it: what the Optuna mirror (on by default) costs a run, and the `evo` command's start-up.

Writes the "first-hour" section of docs/benchmarks.md. Everything runs as users run it: ``evo run CONFIG``
with the CLI's defaults (the config's backend — Ray for the shipped digits and MNIST-1D configs —, Optuna mirror
on, SQLite storage in the runs directory), in a fresh process, once with the mirror and once with
``--no-mirror`` (the order alternates between pairs). The process is the ``evo`` command's own code
(``evo.cli.cli``) with the mirror's entry points wrapped in timers, so the mirror's share is read twice: as the
difference between the two runs' wall clocks (noisy on a shared machine) and as the time the mirror itself held
the driver — starting its writer's process, its hooks at each evaluation and generation end (waiting for the
writer included), and the CPU time of the driver's threads that hand batches to that process and collect its
answers — against the run's wall clock. The writer's process (importing Optuna, opening the storage, creating the
study, writing each generation while the next one is evaluated) runs on another core; its CPU seconds are shown
beside the share, not in it. Start-up: ``evo --version``,
``evo --help`` and ``evo show RUN`` (on the digits run just made) in fresh processes.

Run: ``python -m benchmarks.first_hour`` (about 10 minutes on 2 cores); ``--configs configs/xor.yaml`` measures only
the configs named (and prints only: a partial table does not replace the section); ``--smoke`` runs a 2-generation
XOR case and one start-up repeat, and prints only (the tests run it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks._report import ROOT, table, update_section

#: (config, pairs of runs with and without the mirror, the target share of the run's wall time)
CASES: tuple[tuple[str, int, float], ...] = (
    ("configs/xor.yaml", 3, 0.10),
    ("configs/mnist1d_cnn.yaml", 1, 0.02),
    ("configs/digits_mlp.yaml", 1, 0.02),
)
SMOKE_CASES = (("configs/xor.yaml", 1, 0.10),)
SMOKE_SET = ("evolution.generations=2", "evolution.population_size=6")
#: (arguments after ``evo``, target seconds); RUN stands for the digits run's directory
STARTUP: tuple[tuple[tuple[str, ...], float], ...] = ((("--version",), 0.5), (("--help",), 0.5), (("show", "RUN"), 1.5))

# The `evo` command in a fresh process, with the mirror's entry points timed (seconds into EVO_BENCH_OUT).
_PROBE = """
import json, os, sys, time
import evo.cli

spent = {"setup": 0.0, "hooks": 0.0, "threads": 0.0, "writer": 0.0}

def timed(key, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - start
    return wrapper

def thread_cpu(fn):  # the CPU seconds of the thread running fn, counted when fn returns (the thread's end)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            spent["threads"] += time.thread_time()
    return wrapper

real = evo.cli._mirror

def mirror(*args, **kwargs):
    start = time.perf_counter()
    made = real(*args, **kwargs)
    import concurrent.futures.process as pool, multiprocessing.queues as queues
    from evo.mirror import reporter
    cls = reporter.OptunaMirror
    cls.__init__ = timed("setup", cls.__init__)  # starts the writer's process
    for name in ("on_evaluated", "on_restored", "on_generation_end", "on_run_end", "close"):
        setattr(cls, name, timed("hooks", getattr(cls, name)))
    end = cls.close  # the runner's exit: waits for the last write
    def close(self, *args, **kwargs):
        try:
            end(self, *args, **kwargs)
        finally:
            spent["writer"] = self.writer_cpu_s  # the writer process's own CPU seconds, set-up included
    cls.close = close
    # the driver's threads serving the writer's process: pickling batches for it, reading its answers
    pool._ExecutorManagerThread.run = thread_cpu(pool._ExecutorManagerThread.run)
    queues.Queue._feed = staticmethod(thread_cpu(queues.Queue._feed))
    spent["setup"] += time.perf_counter() - start
    return made

evo.cli._mirror = mirror
try:
    evo.cli.cli(sys.argv[1:])
finally:
    with open(os.environ["EVO_BENCH_OUT"], "w") as f:
        json.dump(spent, f)
"""


@dataclass(frozen=True)
class Run:
    """One ``evo run``: wall and CPU seconds, the mirror's own seconds, and the ``--json`` line."""

    mirror: bool
    wall: float
    cpu: float
    setup: float
    hooks: float
    threads: float
    writer: float
    result: dict[str, object]

    @property
    def spent(self) -> float:
        """The mirror's seconds on the driver: set-up, hooks and the threads serving its writer's process (they
        share the driver's interpreter lock with the evaluations on the serial backend); the writer process's own
        CPU seconds run on another core and are not among them."""
        return self.setup + self.hooks + self.threads

    @property
    def share(self) -> float:
        """The mirror's own seconds as a share of the run's wall clock: an upper bound of what it adds."""
        return self.spent / self.wall


def evo_run(config: str, mirror: bool, runs_dir: Path, name: str, overrides: Sequence[str]) -> Run:
    """``evo run CONFIG --json`` in a fresh process (with ``--no-mirror`` when ``mirror`` is off)."""
    out = runs_dir / f"{name}.timers.json"
    args = [config, "--runs-dir", str(runs_dir), "--name", name, "--json", *("--no-mirror",) * (not mirror),
            *[a for o in overrides for a in ("--set", o)]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PROBE, "run", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "EVO_BENCH_OUT": str(out)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"evo run {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    spent = json.loads(out.read_text())
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Run(mirror, wall, cpu, spent["setup"], spent["hooks"], spent["threads"], spent["writer"],
               json.loads(done.stdout.strip().splitlines()[-1]))


def mirror_rows(cases: Sequence[tuple[str, int, float]], runs_dir: Path, overrides: Sequence[str]) -> list[list[str]]:
    """Per config: medians over its pairs of the two runs' wall and CPU clocks and of the mirror's own time."""
    rows = []
    for config, pairs, target in cases:
        runs: list[Run] = []
        for pair in range(pairs):
            for mirror in (True, False) if pair % 2 == 0 else (False, True):
                runs.append(evo_run(config, mirror, runs_dir, f"{Path(config).stem}-{pair}-{int(mirror)}", overrides))
                print(f"{config} pair {pair} mirror={mirror}: {runs[-1].wall:.1f} s", flush=True)
        on, off = [r for r in runs if r.mirror], [r for r in runs if not r.mirror]
        wall_on, wall_off = (statistics.median(r.wall for r in side) for side in (on, off))
        share = statistics.median(r.share for r in on)
        rows.append([
            f"`{config}`", len(on), f"{wall_on:.1f}", f"{wall_off:.1f}", f"{(wall_on - wall_off) / wall_off:+.1%}",
            f"{statistics.median(r.cpu for r in on):.1f} / {statistics.median(r.cpu for r in off):.1f}",
            f"{statistics.median(r.setup for r in on):.2f}", f"{statistics.median(r.hooks for r in on):.2f}",
            f"{statistics.median(r.threads for r in on):.2f}", f"{share:.1%}", f"≤ {target:.0%}",
            "yes" if share <= target else "**no**", f"{statistics.median(r.writer for r in on):.2f}",
        ])
    return rows


def startup_rows(run_dir: Path, repeats: int) -> list[list[str]]:
    """Wall seconds of ``evo ARGS`` in a fresh process: median and slowest of ``repeats``."""
    evo = shutil.which("evo", path=str(Path(sys.executable).parent)) or shutil.which("evo")
    if evo is None:
        raise RuntimeError("the `evo` command is neither beside this Python nor on PATH (pip install -e . puts it there)")
    rows = []
    for args, target in STARTUP:
        command = [evo, *(str(run_dir) if a == "RUN" else a for a in args)]
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
            seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        rows.append([f"`evo {' '.join(args)}`", repeats, f"{median:.2f}", f"{max(seconds):.2f}", f"≤ {target}",
                     "yes" if median <= target else "**no**"])
    return rows


MIRROR_HEADERS = ["config", "pairs", "wall s, mirror on", "wall s, --no-mirror", "difference",
                  "driver CPU s, on / off", "mirror set-up s", "mirror hooks s", "mirror threads s",
                  "mirror's share of the run", "target", "met", "writer process CPU s (another core)"]
STARTUP_HEADERS = ["command", "repeats", "wall s (median)", "slowest", "target", "met"]


def report(mirror: list[list[str]], startup: list[list[str]], load: tuple[float, float]) -> str:
    return (
        "### The Optuna mirror's cost\n\n"
        "Each config run as `evo run CONFIG --json` with the CLI's defaults, with the mirror (the default) and with "
        "`--no-mirror`, in fresh processes, medians over the pairs. The mirror writes from a process of its own "
        "(`spawn`ed by the driver), which imports Optuna, opens the SQLite storage, creates the run's study and "
        "writes each generation's trials in one transaction while the next generation is evaluated. On the driver: "
        "*mirror set-up*, starting that process; *hooks*, the mirror's calls on the driver's path at each "
        "evaluation and generation end, waiting for the writer included (at the runner's exit, after the "
        "end-of-run plots: the rest of its last write, and its exit); *threads*, the CPU seconds of the driver's "
        "two threads that hand batches to the process and read its answers. Their sum against the run's wall clock is *the mirror's share*, an upper bound: on the "
        "serial backend (`configs/xor.yaml`) the threads compete with the evaluations for the interpreter. The "
        "*writer process CPU s* run on another core (the machine's other core here, shared with whatever else "
        "runs), so they are not in the share. The *difference* of the two wall clocks is the same question with "
        "the machine's noise in it (a single pair on a shared 2-core machine moves by ±15%). Driver CPU s: the "
        "`evo` process and what it reaped (the writer's process among them; Ray's workers not).\n\n"
        + table(MIRROR_HEADERS, mirror)
        + "\n\n### Start-up of the `evo` command\n\n"
        "Wall seconds of the command in a fresh process (Python's start-up included), `evo show` on the digits run "
        "of the table above.\n\n"
        + table(STARTUP_HEADERS, startup)
        + f"\n\n1-minute load average before/after: {load[0]:.1f}/{load[1]:.1f} on {os.cpu_count()} cores. "
        "Re-run: `python -m benchmarks.first_hour`."
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a 2-generation XOR case, one start-up repeat; print only")
    parser.add_argument("--configs", nargs="+", choices=[case[0] for case in CASES], metavar="CONFIG",
                        help="measure only these of the shipped cases; print only")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="evo-first-hour-") as tmp:
        runs_dir = Path(tmp)
        cases, overrides = (SMOKE_CASES, SMOKE_SET) if args.smoke else (CASES, ())
        if args.configs:
            cases = tuple(case for case in cases if case[0] in args.configs)
        mirror = mirror_rows(cases, runs_dir, overrides)
        shown = runs_dir / f"{Path(cases[-1][0]).stem}-0-1"
        startup = startup_rows(shown, repeats=1 if args.smoke else 7)
    body = report(mirror, startup, (load_before, os.getloadavg()[0]))
    print(body, flush=True)
    if not (args.smoke or args.configs):
        update_section("first-hour", "The first hour: the mirror's cost and the command's start-up", body)


if __name__ == "__main__":
    main()
