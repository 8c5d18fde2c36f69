"""evo: neuroevolution for PyTorch networks whose shape grows and shrinks while keeping what they learned."""

from __future__ import annotations

from typing import Any

from evo.genome import Genome, LayerKind, LayerSpec
from evo.load import load

__version__ = "0.1.0"
__all__ = ["Genome", "LayerKind", "LayerSpec", "__version__", "load", "resume", "run", "search"]


def __getattr__(name: str) -> Any:
    """``evo.run``/``evo.resume``/``evo.search`` import the engine on first use, so ``import evo`` stays light."""
    if name in ("run", "resume"):
        from evo import api

        return getattr(api, name)
    if name == "search":  # the subpackage, callable: evo.search(config, space) is evo.api.search
        import importlib

        return importlib.import_module("evo.search")
    raise AttributeError(f"module 'evo' has no attribute {name!r}")
