"""evo: neuroevolution for PyTorch networks whose shape grows and shrinks while keeping what they learned."""

from __future__ import annotations

import importlib
from typing import Any

from evo.genome import Genome, LayerKind, LayerSpec

__version__ = "0.1.0"
__all__ = ["Genome", "LayerKind", "LayerSpec", "__version__", "load", "resume", "run", "search"]


def __getattr__(name: str) -> Any:
    """``evo.run``/``evo.resume``/``evo.search``/``evo.load`` import the engine (and torch) on first use, so
    ``import evo`` and the ``evo`` command's start-up stay light."""
    if name in ("run", "resume", "search"):
        from evo import api

        return getattr(api, name)
    if name == "load":  # a module, callable: evo.load(path)
        return importlib.import_module("evo.load")
    raise AttributeError(f"module 'evo' has no attribute {name!r}")
