"""Stop signals: Ctrl-C (SIGINT) and SIGTERM stop a command promptly, through its ``finally`` blocks.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread is when it arrives. Inside a weakref
callback or a ``__del__`` method that exception is printed (``Exception ignored in: ... KeyboardInterrupt``)
and dropped, and the run goes on as if nothing had happened. Under :func:`stop_signals` a signal still raises
KeyboardInterrupt at once (so start-up and data loading stop too), and is also remembered: :func:`check`,
called at safe points (before each evaluation, each training step, each wait for Ray), raises it again, so a
dropped interrupt stops the run at the next such point. SIGTERM takes the same way, so a terminated run stops
its workers instead of dying where it stands and leaving them behind. Each later signal raises again, so a
second Ctrl-C cuts a slow clean-up short.

Outside :func:`stop_signals` (the library in a user's notebook) nothing changes and :func:`check` does nothing
(Ray workers, separate processes, never see a scope either). The bottom layer: imports nothing of evo.

Example:
    >>> with stop_signals():  # doctest: +SKIP
    ...     evo.run(config)  # Ctrl-C: KeyboardInterrupt; received() says which signal
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["STOP_SIGNALS", "check", "reclaim", "received", "stop_signals"]

#: The signals that stop a command under :func:`stop_signals`.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_active = False
_received: int | None = None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt


def check() -> None:
    """A safe point: raise KeyboardInterrupt if a stop signal came, even if its first one was swallowed."""
    if _active and _received is not None:
        raise KeyboardInterrupt


def received() -> int | None:
    """The stop signal received during the current (or last) :func:`stop_signals`, None if none came."""
    return _received


def reclaim() -> None:
    """Put the stop handlers back after a library replaced them (``ray.init`` installs its own SIGTERM
    handler, which exits without clean-up); a no-op outside :func:`stop_signals` or off the main thread."""
    if _active and threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _on_signal)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt now and at every later :func:`check`.

    Must be entered on the main thread (only it receives signals); the previous handlers come back on exit.
    """
    global _active, _received
    previous = {signum: signal.signal(signum, _on_signal) for signum in STOP_SIGNALS}
    _active, _received = True, None
    try:
        yield
    finally:
        _active = False
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
