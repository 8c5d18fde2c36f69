"""evo: neuroevolution for PyTorch networks whose shape grows and shrinks while keeping what they learned."""

from __future__ import annotations

from evo.genome import Genome, LayerKind, LayerSpec
from evo.load import load

__version__ = "0.1.0"
__all__ = ["Genome", "LayerKind", "LayerSpec", "__version__", "load"]
