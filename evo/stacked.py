"""Many small dense networks of one architecture run as one batched forward pass, in numpy.

Why: evaluating a tiny gradient-free policy costs little arithmetic but much fixed
overhead — building an ``nn.Module`` (~1 ms) and a torch call per layer (~10 µs).
Stacking the weights of P genomes that share an architecture into ``(P, in, out)``
arrays runs all of them with one matmul per layer, and numpy calls cost about a
tenth of torch's at these sizes. The same code evaluates one genome (P = 1).

Bit-exactness: numpy multiplies each ``(rows, in) @ (in, out)`` slice of a stack with
the same BLAS call whatever the stack's length, and every other step is elementwise,
so a network's outputs never depend on its batch-mates: a genome scores the same
alone or in a batch (tests check it). Dropout is ignored (evaluation mode).

Example:
    >>> g = Genome.mlp((4,), (8,), 2, seed=0)
    >>> net = StackedNet.of([g, g])
    >>> net(np.zeros((2, 5, 4), np.float32)).shape
    (2, 5, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np
import torch
from scipy.special import erf, expit

from evo.genome import Genome, LayerKind, skip_name, weight_name

__all__ = ["StackedNet", "architecture_key", "stackable", "to_vector", "with_vector"]

_SQRT2 = np.float32(np.sqrt(2.0))
#: numpy versions of :data:`evo.genome.ACTIVATIONS` (torch's defaults: leaky slope 0.01, ELU α = 1, exact GELU).
NP_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda z: np.maximum(z, np.float32(0)),
    "leaky_relu": lambda z: np.where(z >= 0, z, np.float32(0.01) * z),
    "tanh": np.tanh,
    "gelu": lambda z: np.float32(0.5) * z * (np.float32(1) + erf(z / _SQRT2)),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, np.float32(0)))),
    "sigmoid": expit,
    "identity": lambda z: z,
}


def stackable(genome: Genome) -> bool:
    """Whether ``genome`` is a dense network without norm layers on flat inputs (what :class:`StackedNet` runs)."""
    return len(genome.input_shape) == 1 and all(
        layer.kind is LayerKind.LINEAR and layer.norm is None for layer in genome.layers)


def architecture_key(genome: Genome) -> Hashable:
    """Genomes with equal keys have weights of equal shapes and stack into one :class:`StackedNet`."""
    return (genome.input_shape, genome.layers, genome.skips, genome.gap)


def to_vector(genome: Genome) -> np.ndarray:
    """All weights as one float32 vector, in ``param_shapes`` order (what an evolution strategy searches)."""
    return np.concatenate([genome.weights[name].numpy().ravel() for name in genome.param_shapes()])


def with_vector(genome: Genome, vector: np.ndarray) -> Genome:
    """``genome``'s architecture with the weights of a :func:`to_vector` vector."""
    return genome.with_weights({k: torch.from_numpy(v[0].copy()) for k, v in _split(genome, vector[None]).items()})


def _split(genome: Genome, vectors: np.ndarray) -> dict[str, np.ndarray]:
    """``(P, n)`` weight vectors → name → ``(P, *shape)`` float32 arrays."""
    out, start = {}, 0
    for name, shape in genome.param_shapes().items():
        size = int(np.prod(shape))
        out[name] = vectors[:, start:start + size].reshape(len(vectors), *shape).astype(np.float32)
        start += size
    if start != vectors.shape[1]:
        raise ValueError(f"a weight vector of {vectors.shape[1]} values does not fit {genome} ({start} weights)")
    return out


class StackedNet:
    """P dense networks of ``genome``'s architecture with stacked weights (name → ``(P, *shape)`` arrays).

    Build it with :meth:`of` (from genomes) or :meth:`from_vectors` (from weight vectors).
    """

    def __init__(self, genome: Genome, weights: Mapping[str, np.ndarray]) -> None:
        if not stackable(genome):
            raise ValueError(f"gradient-free tasks run dense networks without norm layers on flat inputs, not {genome}")
        last = len(genome.layers) - 1
        self._plan = tuple(
            (
                np.ascontiguousarray(weights[weight_name(i)].transpose(0, 2, 1)),  # (P, in, out)
                weights[weight_name(i, "bias")][:, None, :],  # (P, 1, out)
                None if i == last and spec.activation == "identity" else NP_ACTIVATIONS[spec.activation],
                tuple((s, np.ascontiguousarray(weights[skip_name(s, d)].transpose(0, 2, 1)))
                      for s, d in genome.skips if d == i),
            )
            for i, spec in enumerate(genome.layers)
        )

    @classmethod
    def of(cls, genomes: Sequence[Genome]) -> StackedNet:
        """The genomes (all of one :func:`architecture_key`) as one stack, in order."""
        first = genomes[0]
        if any(architecture_key(g) != architecture_key(first) for g in genomes):
            raise ValueError("StackedNet.of needs genomes of one architecture")
        return cls(first, {name: np.stack([g.weights[name].numpy() for g in genomes]) for name in first.weights})

    @classmethod
    def from_vectors(cls, genome: Genome, vectors: np.ndarray) -> StackedNet:
        """``genome``'s architecture with each row of ``vectors`` (see :func:`to_vector`) as one network."""
        return cls(genome, _split(genome, np.atleast_2d(vectors)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, rows, out)`` for inputs ``(P, rows, in)`` (float32); non-finite values pass through."""
        outputs: list[np.ndarray] = []
        h = x
        with np.errstate(all="ignore"):
            for weight, bias, activation, skips in self._plan:
                z = h @ weight + bias
                for s, skip in skips:
                    z = z + outputs[s] @ skip
                h = z if activation is None else activation(z)
                outputs.append(h)
        return h
