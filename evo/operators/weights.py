"""Weight mutation for gradient-free tasks (neuroevolution of the weights themselves, as in NEAT).

A mutated genome keeps its optimiser state (:attr:`~evo.genome.Genome.optim_state`: the same weights,
nudged); fresh weights start without any.

Example:
    >>> import numpy as np
    >>> from evo.genome import Genome
    >>> g = Genome.mlp((4,), hidden=(3,), output_size=2)
    >>> mutate_weights(g, np.random.default_rng(0), sigma=0.1).num_params() == g.num_params()
    True
"""

from __future__ import annotations

import numpy as np
import torch

from evo.genome import Genome, is_norm_stat
from evo.operators._base import Preservation
from evo.operators._common import torch_generator
from evo.operators._declare import number, register

__all__ = ["mutate_weights", "reset_weights"]


@register(
    "mutate_weights",
    {"sigma": number(0.0, float("inf"), "()"), "rate": number(0.0, 1.0, "(]")},
    preserves=Preservation.NO,
    note="Gaussian perturbation, for gradient-free tasks",
)
def mutate_weights(genome: Genome, rng: np.random.Generator, sigma: float = 0.1, rate: float = 1.0) -> Genome:
    """Add N(0, σ²) noise to a random fraction ``rate`` of all weights (biases, skips and norms' affine included;
    BatchNorm's running statistics are state, left alone).

    Args:
        sigma: noise standard deviation (> 0).
        rate: probability that each weight is perturbed, in (0, 1].
    """
    gen = torch_generator(rng)
    mutated = {}
    for name, w in genome.weights.items():
        if is_norm_stat(name):
            mutated[name] = w
            continue
        noise = torch.randn(w.shape, generator=gen).mul_(sigma)  # in place: small tensors cost their op calls
        if rate < 1.0:
            noise.mul_(torch.rand(w.shape, generator=gen) < rate)
        mutated[name] = noise.add_(w)
    return genome.with_weights(mutated)


@register("reset_weights", preserves=Preservation.NO, note="fresh random weights")
def reset_weights(genome: Genome, rng: np.random.Generator) -> Genome:
    """The same architecture with fresh PyTorch-default random weights (a restart, not a morphism)."""
    return genome.reinitialised(seed=int(rng.integers(2**62)))
