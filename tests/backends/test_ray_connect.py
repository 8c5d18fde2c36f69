"""Starting Ray from several threads at once (the trials of a parallel search share one backend), without Ray."""

from __future__ import annotations

import threading
import time

import pytest
import ray

from evo.backends import RayBackend


def test_threads_start_ray_once(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[dict[str, object]] = []

    def fake_init(**kwargs: object) -> None:  # as slow as the real one, and as strict about a second call
        assert not started, "Perhaps you called ray.init twice by accident?"
        time.sleep(0.05)
        started.append(kwargs)

    monkeypatch.setattr(ray, "is_initialized", lambda: bool(started))
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(ray, "shutdown", started.clear)
    backend = RayBackend(workers=1)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def connect() -> None:
        barrier.wait()
        try:
            backend._connect()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=connect) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(started) == 1
    backend.close()
    assert started == []  # it started Ray, so it stops it
