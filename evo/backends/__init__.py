"""Backends: where evaluations run."""

from __future__ import annotations

from evo.backends._base import Backend
from evo.backends.serial import SerialBackend

__all__ = ["Backend", "SerialBackend"]
