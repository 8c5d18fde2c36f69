"""Backends: where evaluations run.

``RayBackend`` is imported on first use, so serial runs never pay for importing Ray.
"""

from __future__ import annotations

from typing import Any

from evo.backends._base import Backend
from evo.backends.config import BackendConfig
from evo.backends.factory import make_backend
from evo.backends.serial import SerialBackend
from evo.backends.stats import BackendStats

__all__ = ["Backend", "BackendConfig", "BackendStats", "RayBackend", "SerialBackend", "make_backend"]


def __getattr__(name: str) -> Any:
    if name == "RayBackend":
        from evo.backends.ray import RayBackend

        return RayBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
