"""Starting Ray from several threads at once (the trials of a parallel search share one backend), without Ray."""

from __future__ import annotations

import time

import pytest
import ray

from evo.backends import RayBackend
from evo.testing import at_once


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
    errors = at_once(backend._connect)
    assert errors == [] and len(started) == 1
    backend.close()
    assert started == []  # it started Ray, so it stops it
