"""Stops what a local Ray instance leaves running when its driver dies, however the driver dies (SIGKILL too).

Ray ties the processes ``ray.init`` starts itself (GCS, raylet, dashboard, monitors) to the driver with
``PR_SET_PDEATHSIG``, so they die with it. The raylet's own children are not tied to anything: on a driver's
SIGKILL its dashboard and runtime-env agents notice the raylet is gone within ~2 s, then spend 60 s trying to
report that to the dead GCS before they exit (measured with Ray 2.60: 61 s), and workers linger ~2 s. A
:class:`Reaper` is a small process (standard library only; its own session, so a terminal's Ctrl-C does not
reach it) that the driver tells about those processes through a pipe; when the pipe closes — the driver closed
it, exited or was killed — it SIGKILLs the ones still running. Linux only (it reads ``/proc``); elsewhere it
does nothing.

Example:
    >>> reaper = Reaper()  # doctest: +SKIP
    >>> reaper.watch()  # after ray.init, and again whenever new workers may have started  # doctest: +SKIP
    >>> reaper.close()  # after ray.shutdown: kills anything it left  # doctest: +SKIP
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["Reaper"]

_PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, start time in clock ticks) of a running process; None if gone or a zombie."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
    return None if fields[0] in "ZX" else (name, int(fields[1]), int(fields[19]))


def ray_helpers(driver: int) -> set[tuple[int, int]]:
    """(pid, start time) of the raylets that ``driver`` started and of everything below them."""
    table = {int(p.name): s for p in _PROC.iterdir() if p.name.isdigit() and (s := _stat(int(p.name)))}
    found = {pid for pid, (name, parent, _) in table.items() if parent == driver and name == "raylet"}
    level = found
    while level:
        level = {pid for pid, (_, parent, _) in table.items() if parent in level} - found
        found |= level
    return {(pid, table[pid][2]) for pid in found}


class Reaper:
    """The driver's side: starts the reaper process on the first :meth:`watch` that finds something."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._told: set[tuple[int, int]] = set()

    def watch(self) -> None:
        """Tell the reaper about the Ray processes below this driver that it does not know yet."""
        if not _PROC.is_dir():
            return
        new = ray_helpers(os.getpid()) - self._told
        if not new:
            return
        if self._process is None:
            self._process = subprocess.Popen([sys.executable, "-I", __file__], stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             start_new_session=True)
        assert self._process.stdin is not None
        self._process.stdin.write("".join(f"{pid} {start}\n" for pid, start in new).encode())
        self._process.stdin.flush()
        self._told |= new

    def close(self) -> None:
        """Close the pipe (after ``ray.shutdown``): the reaper kills whatever it watches that still runs."""
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=10)
            self._process = None
        self._told.clear()


def _reap() -> None:
    """The reaper process: read ``PID START`` lines until the pipe closes, then SIGKILL each process still
    running with that start time (a pid reused since is left alone)."""
    watched = [tuple(map(int, line.split())) for line in sys.stdin]
    for pid, start in watched:
        stat = _stat(pid)
        if stat is not None and stat[2] == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # exited meanwhile
                pass


if __name__ == "__main__":
    _reap()
