"""Continual-learning metrics from an accuracy matrix (Lopez-Paz & Ranzato 2017; Chaudhry et al. 2018).

``R[i, j]`` is the accuracy on task ``j`` after learning tasks ``0..i`` (only
``j <= i`` is needed). After a stream of ``T`` tasks:

* ACC = mean over j of R[T-1, j] — the average final accuracy;
* BWT = mean over j < T-1 of (R[T-1, j] − R[j, j]) — negative when learning
  later tasks made earlier ones worse (forgetting), positive when it helped;
* forgetting of task j = max over i in j..T-2 of R[i, j] − R[T-1, j]; its
  mean and maximum over j < T-1 are reported.

Example:
    >>> m = continual_metrics(np.array([[0.9, 0.0], [0.7, 0.8]]))
    >>> round(m.acc, 3), round(m.bwt, 3), round(m.max_forgetting, 3)
    (0.75, -0.2, 0.2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ContinualMetrics", "continual_metrics"]


@dataclass(frozen=True)
class ContinualMetrics:
    """ACC, BWT and forgetting of one accuracy matrix (BWT and forgetting are NaN for a single task)."""

    acc: float
    bwt: float
    forgetting: float
    max_forgetting: float

    def as_dict(self, prefix: str) -> dict[str, float]:
        """``{prefix}acc``, ``{prefix}bwt``, ``{prefix}forgetting``, ``{prefix}max_forgetting``."""
        return {f"{prefix}{name}": float(getattr(self, name)) for name in ("acc", "bwt", "forgetting", "max_forgetting")}


def continual_metrics(matrix: np.ndarray) -> ContinualMetrics:
    """The metrics of a square accuracy matrix ``R`` (rows: after task i; columns: task j).

    Raises:
        ValueError: ``matrix`` is not a non-empty square matrix.
    """
    r = np.asarray(matrix, dtype=float)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise ValueError(f"continual_metrics: matrix must be square and non-empty, got shape {r.shape}")
    last = r.shape[0] - 1
    acc = float(r[last].mean())
    if last == 0:
        return ContinualMetrics(acc, math.nan, math.nan, math.nan)
    earlier = np.arange(last)
    bwt = float(np.mean(r[last, earlier] - r[earlier, earlier]))
    best = np.array([r[j:last, j].max() for j in earlier])
    forgetting = best - r[last, earlier]
    return ContinualMetrics(acc, bwt, float(forgetting.mean()), float(forgetting.max()))
