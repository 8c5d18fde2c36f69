"""The ``Operator`` interface: a named, parameterised, pure genome transformation.

The evolution loop only needs this: apply an operator to a parent genome with
the run's rng (and an optional calibration batch), check beforehand whether it
can apply at all, and describe it in a child's lineage.

Example:
    >>> import numpy as np
    >>> from evo.genome import Genome
    >>> from evo.operators.registry import make_operator
    >>> op = make_operator({"op": "widen", "k": 2, "init": "split"})
    >>> str(op), op.preserves_function
    ('widen(k=2, init=split)', True)
    >>> op.apply(Genome.mlp((4,), (3,), 2), np.random.default_rng(0)).layers[0].width
    5
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import Enum
from typing import Any

import numpy as np
from torch import Tensor

from evo.genome import Genome

__all__ = ["Operator", "Preservation"]


class Preservation(str, Enum):
    """Whether an operator keeps the network's function (its outputs on every input)."""

    YES = "yes"
    NO = "no"
    CONDITIONAL = "conditional"


class Operator(ABC):
    """A genome → genome transformation with fixed parameters; never mutates its input.

    Attributes:
        name: the registry name (``widen``, ``prune_neurons``...).
        params: the parameters given explicitly (defaults are not repeated).
    """

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.params = dict(params or {})

    @abstractmethod
    def apply(self, genome: Genome, rng: np.random.Generator, data: tuple[Tensor, Tensor] | None = None) -> Genome:
        """A new genome; ``data`` is a calibration batch ``(x, y)`` for data-dependent operators.

        Raises:
            NotApplicable: the operator cannot apply to this genome (e.g. a layer out of range); the
                evolution loop then draws another. Anything else raised here is a bug and surfaces.
        """

    def applicable(self, genome: Genome) -> bool:
        """Whether :meth:`apply` can succeed on ``genome`` (so a loop can pick another operator)."""
        return True

    @property
    def preserves_function(self) -> bool:
        """True when, with these parameters, the output is always exactly preserved (in eval mode).

        One exception: a layer with a ``layer`` norm normalises each sample over all its channels, so
        widening it changes every channel's output even when the new units' own fan-out is zero.
        """
        return False

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def __repr__(self) -> str:
        return f"<Operator {self}>"
