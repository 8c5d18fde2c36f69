"""Ctrl-C and SIGTERM: a run stops within seconds at any moment, exit 130 (143), and resumes to the same result.

The in-process tests drive :mod:`evo.interrupts` directly. The CLI tests run ``evo`` as a subprocess and
interrupt it at chosen moments: from outside (a real signal when a file appears in the run directory) or from
inside, through a small driver that patches one function to signal its own process at a precise point (data
loading, right after a generation's records are written and before its checkpoint, inside a weakref callback
where Python swallows the KeyboardInterrupt — the bug this suite was written for).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from evo import interrupts
from evo.backends import reaper
from evo.backends import SerialBackend
from evo.genome import Genome
from evo.plasticity import PlasticityConfig
from evo.store import RunStore
from evo.tasks import Budget, Evaluation
from evo.testing import ToyTask, make_jobs

EVO = [sys.executable, "-m", "evo"]

TINY = {
    "task": {"kind": "supervised", "dataset": "iris"},
    "evolution": {"generations": 3, "population_size": 4, "eval_steps": 60, "seed": 3},
    "plasticity": {"batch_size": 32},
    "backend": {"kind": "serial"},
}

#: Seconds from a signal to the process's exit: the clean-up and interpreter shutdown (~1-4 s on a busy 2-core
#: machine), never the rest of the run.
EXIT_S = 10


def _swallowed_interrupt() -> None:
    """SIGINT to this process while a weakref callback runs: Python prints 'Exception ignored' and goes on."""

    class Key:
        pass

    key = Key()
    ref = weakref.ref(key, lambda _: (os.kill(os.getpid(), signal.SIGINT), sum(range(1000))))
    del key
    assert ref() is None


# ------------------------------------------------------------------ evo.interrupts in this process
@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """The exceptions Python swallowed ('Exception ignored in ...') during the test."""
    seen: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(info.exc_value))
    return seen


def test_a_swallowed_interrupt_is_raised_at_the_next_check(unraisable: list[BaseException | None]) -> None:
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a job a shell started in the background
    with interrupts.stop_signals():
        _swallowed_interrupt()
        assert len(unraisable) == 1 and isinstance(unraisable[0], KeyboardInterrupt)
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
        assert interrupts.received() == signal.SIGINT
    interrupts.check()  # outside the scope: nothing to raise
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_raises_keyboard_interrupt_and_is_told_apart() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), interrupts.stop_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs here
    assert interrupts.received() == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is previous


def test_reclaim_takes_the_handlers_back_from_a_library() -> None:
    with interrupts.stop_signals():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as ray.init replaces it
        interrupts.reclaim()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)


class _InterruptedTask(ToyTask):
    """Evaluating ``at`` (a job seed) gets a SIGINT that Python swallows; records every seed it evaluates."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.evaluated = at, []

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        self.evaluated.append(seed)
        if seed == self.at:
            _swallowed_interrupt()
        return super().evaluate(genome, budget, device, seed)


def test_the_serial_backend_stops_before_the_next_evaluation(unraisable: list[BaseException | None]) -> None:
    jobs = make_jobs(4, seed=1)
    task = _InterruptedTask(at=jobs[1].seed)
    with interrupts.stop_signals(), pytest.raises(KeyboardInterrupt):
        for _ in SerialBackend().map(task, jobs):
            pass
    assert task.evaluated == [jobs[0].seed, jobs[1].seed] and unraisable


def test_training_stops_at_the_next_step(unraisable: list[BaseException | None]) -> None:
    import torch

    from evo.plasticity.trainer import train

    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    genome = Genome.mlp((4,), hidden=(8,), output_size=3)
    with interrupts.stop_signals():
        _swallowed_interrupt()
        with pytest.raises(KeyboardInterrupt):
            train(genome, x, y, PlasticityConfig(), steps=5)
    train(genome, x, y, PlasticityConfig(), steps=5)  # outside the scope it trains as ever


# ------------------------------------------------------------------ the CLI, interrupted at chosen moments
#: Runs `evo` with one function patched to send SIGINT to its own process at a precise moment (argv[1]).
_DRIVER = """
import os, signal, sys
import evo.backends.serial as serial, evo.runner as runner, evo.store as store
from evo.cli import cli
from tests.test_signals import _swallowed_interrupt

def interrupt():
    os.kill(os.getpid(), signal.SIGINT)

def wrap(owner, name, before=None, after=None):
    original = getattr(owner, name)
    def patched(*args, **kwargs):
        act = before and before(*args)
        if act: act()
        result = original(*args, **kwargs)
        act = after and after(*args)
        if act: act()
        return result
    setattr(owner, name, patched)

calls = []
moment = sys.argv[1]
if moment == "loading":  # while the task (its data set) is built, before the run directory exists
    wrap(runner, "_build_task", before=lambda config: interrupt)
elif moment == "checkpoint":  # generation 1's records written, its checkpoint not yet
    wrap(store.RunStore, "append_records",
         after=lambda self, records, generation=None: calls.append(1) or (len(calls) == 2 and interrupt))
elif moment == "swallowed":  # inside a weakref callback, evaluating individual 5 (generation 1)
    wrap(serial, "run_job", before=lambda task, job, device="cpu": job.individual_id == 5 and _swallowed_interrupt)
cli(sys.argv[2:])
"""


def _evo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVO, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _outcome(run_dir: Path) -> dict[str, object]:
    """What must not depend on interruptions: the best individual (with test metrics) and every record once."""
    store = RunStore.open(run_dir)
    state = store.latest_checkpoint()
    assert state is not None
    records = store.records(state)
    assert len((run_dir / "individuals.jsonl").read_text().splitlines()) == len(records)
    best = json.loads((run_dir / "best.json").read_text())
    return {"best": best, "records": {r["id"]: r["evaluation"]["objectives"] for r in records}}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("signals")
    (path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def reference(workdir: Path) -> dict[str, object]:
    proc = _evo("run", "tiny.yaml", "--name", "reference", "--no-mirror", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    return _outcome(workdir / "runs" / "reference")


def _interrupt_from_inside(workdir: Path, moment: str, name: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", _DRIVER, moment, "run", "tiny.yaml", "--name", name, "--no-mirror"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


def _interrupt_from_outside(workdir: Path, marker: str, name: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """SIGINT once ``marker`` exists in the run directory; returns the process and seconds from signal to exit."""
    proc = subprocess.Popen([*EVO, "run", "tiny.yaml", "--name", name, "--no-mirror"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (workdir / "runs" / name / marker).exists():
        assert proc.poll() is None, f"the run ended before {marker} appeared"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.monotonic() - sent


def _assert_interrupted(workdir: Path, name: str, proc: subprocess.CompletedProcess[str]) -> None:
    """Exit 130 with the line saying how to go on, before the run's end."""
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"interrupted — continue with: evo resume {Path('runs', name)}"
    assert proc.stderr.count("Traceback") == proc.stderr.count("Exception ignored")  # only Python's own note
    assert not (workdir / "runs" / name / "checkpoints" / "gen_0003.json").exists(), "the run stopped before its end"


def _assert_resumes_to(workdir: Path, name: str, proc: subprocess.CompletedProcess[str],
                       reference: dict[str, object]) -> None:
    """Interrupted, and ``evo resume`` then ends where an uninterrupted run ends."""
    _assert_interrupted(workdir, name, proc)
    run_dir = workdir / "runs" / name
    resumed = _evo("resume", str(run_dir), "--no-mirror", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert _outcome(run_dir) == reference


def test_a_swallowed_ctrl_c_still_stops_the_run(workdir: Path) -> None:
    """The reported bug: 'Exception ignored in ... KeyboardInterrupt' and the run went on to its end."""
    proc = _interrupt_from_inside(workdir, "swallowed", "swallowed")
    assert "Exception ignored" in proc.stderr and "KeyboardInterrupt" in proc.stderr  # it was swallowed...
    _assert_interrupted(workdir, "swallowed", proc)  # ...and stopped the run all the same, in generation 1
    assert (workdir / "runs" / "swallowed" / "checkpoints" / "gen_0000.json").exists()
    assert not (workdir / "runs" / "swallowed" / "checkpoints" / "gen_0001.json").exists()


@pytest.mark.slow
def test_a_run_stopped_by_a_swallowed_ctrl_c_resumes(workdir: Path, reference: dict[str, object]) -> None:
    _assert_resumes_to(workdir, "swallowed-resumed", _interrupt_from_inside(workdir, "swallowed", "swallowed-resumed"),
                       reference)


@pytest.mark.slow
@pytest.mark.parametrize("marker", ["individuals/gen_0000.pt", "individuals/gen_0001.pt"],
                         ids=["generation-0", "generation-1"])
def test_ctrl_c_mid_generation(workdir: Path, reference: dict[str, object], marker: str) -> None:
    """SIGINT as a generation's genome file appears: its records and checkpoint, or the next generation, are cut."""
    name = f"sigint-{marker[-4]}"
    proc, exit_s = _interrupt_from_outside(workdir, marker, name)
    assert exit_s < EXIT_S, f"exited {exit_s:.1f} s after SIGINT"
    _assert_resumes_to(workdir, name, proc, reference)


@pytest.mark.slow
def test_ctrl_c_between_records_and_checkpoint(workdir: Path, reference: dict[str, object]) -> None:
    proc = _interrupt_from_inside(workdir, "checkpoint", "checkpoint")
    run_dir = workdir / "runs" / "checkpoint"
    assert (run_dir / "checkpoints" / "gen_0000.json").exists()
    assert not (run_dir / "checkpoints" / "gen_0001.json").exists()
    assert len((run_dir / "individuals.jsonl").read_text().splitlines()) == 8  # generation 1's past the checkpoint
    _assert_resumes_to(workdir, "checkpoint", proc, reference)


@pytest.mark.slow
def test_ctrl_c_while_loading_leaves_nothing_to_resume(workdir: Path, reference: dict[str, object]) -> None:
    proc = _interrupt_from_inside(workdir, "loading", "loading")
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "interrupted — the run had not started"
    assert not (workdir / "runs" / "loading").exists()
    again = _evo("run", "tiny.yaml", "--name", "loading", "--no-mirror", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert _outcome(workdir / "runs" / "loading") == reference


# ------------------------------------------------------------------ evo dashboard
def test_dashboard_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.db").touch()  # an existing storage: the dashboard refuses a missing one before the port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([*EVO, "dashboard", "--port", str(port), "--storage", f"sqlite:///{tmp_path / 'x.db'}",
                               "--artifacts", str(tmp_path / "artifacts")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and not proc.stdout
    assert proc.stderr.strip().splitlines() == [
        f"error: --port {port}: 127.0.0.1:{port} is already in use (another dashboard?); choose a free port with --port"
    ]


# ------------------------------------------------------------------ Ray's processes end with the driver
def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a running process, None if gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else (int(fields[1]), int(fields[19]))


def _descendants(root: int) -> set[tuple[int, int]]:
    """(pid, start time) of every process below ``root``: a pid alone could be reused by then."""
    table = {int(p.name): s for p in Path("/proc").iterdir() if p.name.isdigit() and (s := _stat(int(p.name)))}
    found, level = set(), {root}
    while level:
        level = {pid for pid, (parent, _) in table.items() if parent in level} - found
        found |= level
    return {(pid, table[pid][1]) for pid in found}


def _left(processes: set[tuple[int, int]], within_s: float) -> set[tuple[int, int]]:
    """Those of ``processes`` still running after waiting up to ``within_s`` for them to go."""
    deadline = time.monotonic() + within_s
    while (alive := {(pid, start) for pid, start in processes if (s := _stat(pid)) and s[1] == start}) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


_FAKE_RAYLET = """
import ctypes, subprocess, sys, time
ctypes.CDLL(None).prctl(15, b"raylet", 0, 0, 0)  # PR_SET_NAME: the command name the reaper looks for
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], stdout=subprocess.DEVNULL)  # an agent
print(child.pid, flush=True)
time.sleep(600)
"""

#: A driver with a fake raylet (and a process below it) and an unrelated child; with argv[1] == "close" it
#: closes its reaper as a finished run does, else it waits to be killed.
_DRIVER_WITH_REAPER = f"""
import importlib.util, subprocess, sys, time
spec = importlib.util.spec_from_file_location("reaper", {reaper.__file__!r})
reaper_module = importlib.util.module_from_spec(spec)  # alone, as the reaper process runs it: standard library only
spec.loader.exec_module(reaper_module)
raylet = subprocess.Popen([sys.executable, "-c", {_FAKE_RAYLET!r}], stdout=subprocess.PIPE, text=True)
agent = int(raylet.stdout.readline())
other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], stdout=subprocess.DEVNULL)
reaper = reaper_module.Reaper()
reaper.watch()
print(raylet.pid, agent, other.pid, flush=True)
sys.stdin.readline()  # the test has seen them
if sys.argv[1] == "close":
    reaper.close()
time.sleep(600)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the reaper reads /proc (Linux)")
@pytest.mark.parametrize("end", ["close", "sigkill"])
def test_the_reaper_stops_what_runs_below_the_raylet(end: str) -> None:
    """Without Ray: a fake raylet (by its command name) with a process below it, under a driver that closes its
    reaper (a finished run) or gets SIGKILL; an unrelated child of the driver is left alone."""
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER_WITH_REAPER, end], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert driver.stdin is not None and driver.stdout is not None
    raylet, agent, other = map(int, driver.stdout.readline().split())
    below = _descendants(driver.pid)
    watched = {(pid, start) for pid, start in below if pid in (raylet, agent)}
    try:
        assert len(watched) == 2
        if end == "sigkill":
            driver.kill()
        else:
            driver.stdin.write("go\n")
            driver.stdin.flush()
        assert not _left(watched, within_s=5)
        assert _stat(other) is not None
    finally:
        driver.kill()
        driver.wait()
        for pid, start in below:
            if (s := _stat(pid)) and s[1] == start:
                os.kill(pid, signal.SIGKILL)


RAY = {**TINY, "backend": {"kind": "ray", "workers": 2}}


def _watched_run(workdir: Path, args: list[str], stop: int | None, name: str, group: bool = False
                 ) -> tuple[subprocess.CompletedProcess[str], set[tuple[int, int]], float]:
    """`evo ARGS` collecting the processes below it; sends ``stop`` once generation 1 is checkpointed (to its whole
    process group with ``group``, as a terminal's Ctrl-C does).

    Returns the finished process, everything that ran below it, and seconds from the signal to its exit.
    """
    proc = subprocess.Popen([*EVO, *args], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=group)
    seen: set[tuple[int, int]] = set()
    checkpoint = workdir / "runs" / name / "checkpoints" / "gen_0001.json"
    deadline = time.monotonic() + 300
    while proc.poll() is None and not (stop is not None and checkpoint.exists()):
        seen |= _descendants(proc.pid)
        assert time.monotonic() < deadline
        time.sleep(0.1)
    seen |= _descendants(proc.pid)
    sent = time.monotonic()
    if stop is not None:
        os.killpg(proc.pid, stop) if group else proc.send_signal(stop)
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, None, err), seen, time.monotonic() - sent


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(("stop", "exit_code", "group"), [(signal.SIGINT, 130, True), (signal.SIGKILL, -9, False)],
                         ids=["ctrl-c-at-a-terminal", "sigkill"])
def test_the_mirror_process_ends_with_its_run_which_resumes_mirroring_each_individual_once(
        workdir: Path, reference: dict[str, object], stop: int, exit_code: int, group: bool) -> None:
    """The mirror writes from a process of its own. A terminal's Ctrl-C reaches it too: it ignores it, writes what
    the driver hands it and ends with the run; after a SIGKILL of the driver it ends by itself."""
    import optuna

    name = f"mirror-{stop.name.lower()}"
    proc, seen, exit_s = _watched_run(workdir, ["run", "tiny.yaml", "--name", name], stop, name, group)
    assert proc.returncode == exit_code, proc.stderr
    assert seen, "the mirror's process ran below the driver"
    assert not _left(seen, within_s=5), "the mirror's process outlived its run"
    if stop == signal.SIGINT:
        assert exit_s < EXIT_S, f"exited {exit_s:.1f} s after SIGINT"
        _assert_interrupted(workdir, name, proc)  # the last line says how to go on; no traceback
    resumed, seen, _ = _watched_run(workdir, ["resume", f"runs/{name}"], None, name)
    assert resumed.returncode == 0, resumed.stderr
    assert not _left(seen, within_s=5), "the mirror's process outlived a finished run"
    outcome = _outcome(workdir / "runs" / name)
    assert outcome == reference
    study = optuna.load_study(study_name=f"run:{name}", storage=f"sqlite:///{workdir / 'runs' / 'evo.db'}")
    mirrored = [t.user_attrs["individual_id"] for t in study.trials]
    assert sorted(mirrored) == sorted(outcome["records"])  # type: ignore[call-overload]


@pytest.fixture
def ray_workdir(workdir: Path) -> Iterator[Path]:
    (workdir / "ray.yaml").write_text(yaml.safe_dump(RAY))
    yield workdir


@pytest.mark.ray
@pytest.mark.slow
def test_ray_run_stops_on_ctrl_c_and_resumes(ray_workdir: Path, reference: dict[str, object]) -> None:
    proc, seen, exit_s = _watched_run(ray_workdir, ["run", "ray.yaml", "--name", "ray", "--no-mirror"],
                                      signal.SIGINT, "ray")
    assert proc.returncode == 130, proc.stderr
    assert exit_s < 2 * EXIT_S, f"exited {exit_s:.1f} s after SIGINT"  # Ray's shutdown takes a few seconds more
    assert len(seen) >= 5, "Ray's processes ran below the driver"  # GCS, raylet, agents, workers...
    assert not _left(seen, within_s=2), "Ray processes outlived the driver"
    resumed, seen, _ = _watched_run(ray_workdir, ["resume", "runs/ray", "--no-mirror"], None, "ray")
    assert resumed.returncode == 0, resumed.stderr
    assert not _left(seen, within_s=2), "Ray processes outlived a finished run"
    assert _outcome(ray_workdir / "runs" / "ray") == reference  # serial and Ray evaluate alike


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize(("stop", "exit_code", "within_s"), [(signal.SIGTERM, 143, 2), (signal.SIGKILL, -9, 5)],
                         ids=["sigterm", "sigkill"])
def test_ray_processes_end_with_a_terminated_driver(ray_workdir: Path, stop: int, exit_code: int,
                                                   within_s: float) -> None:
    """SIGTERM: a clean stop like Ctrl-C's. SIGKILL: the reaper stops what Ray leaves (its agents: 61 s before)."""
    name = f"ray-{stop.name.lower()}"
    proc, seen, _ = _watched_run(ray_workdir, ["run", "ray.yaml", "--name", name, "--no-mirror"], stop, name)
    assert proc.returncode == exit_code, proc.stderr
    assert not _left(seen, within_s=within_s), f"Ray processes outlived a driver stopped by {stop.name}"


@pytest.mark.ray
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_a_ray_run_mirrors_every_individual_once_from_the_mirror_process(
        ray_workdir: Path, reference: dict[str, object]) -> None:
    """The CLI's defaults as `make run` uses them: the Ray backend with the mirror's own process beside Ray's."""
    import optuna

    proc, seen, _ = _watched_run(ray_workdir, ["run", "ray.yaml", "--name", "ray-mirrored"], None, "ray-mirrored")
    assert proc.returncode == 0, proc.stderr
    assert not _left(seen, within_s=5), "the mirror's or Ray's processes outlived the run"
    outcome = _outcome(ray_workdir / "runs" / "ray-mirrored")
    assert outcome == reference  # serial and Ray evaluate alike, mirrored or not
    study = optuna.load_study(study_name="run:ray-mirrored", storage=f"sqlite:///{ray_workdir / 'runs' / 'evo.db'}")
    assert sorted(t.user_attrs["individual_id"] for t in study.trials) == sorted(outcome["records"])  # type: ignore[call-overload]
