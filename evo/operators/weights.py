"""Weight mutation for gradient-free tasks (neuroevolution of the weights themselves, as in NEAT).

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

from evo.errors import ConfigError
from evo.genome import Genome, is_norm_stat
from evo.operators._common import torch_generator

__all__ = ["mutate_weights", "reset_weights"]


def mutate_weights(genome: Genome, rng: np.random.Generator, sigma: float = 0.1, rate: float = 1.0) -> Genome:
    """Add N(0, σ²) noise to a random fraction ``rate`` of all weights (biases, skips and norms' affine included;
    BatchNorm's running statistics are state, left alone).

    Args:
        sigma: noise standard deviation (> 0).
        rate: probability that each weight is perturbed, in (0, 1].
    """
    if sigma <= 0 or not 0.0 < rate <= 1.0:
        raise ConfigError(f"mutate_weights: sigma must be > 0 and rate in (0, 1], got sigma={sigma}, rate={rate}")
    gen = torch_generator(rng)
    mutated = {}
    for name, w in genome.weights.items():
        if is_norm_stat(name):
            mutated[name] = w
            continue
        noise = sigma * torch.randn(w.shape, generator=gen)
        if rate < 1.0:
            noise = noise * (torch.rand(w.shape, generator=gen) < rate)
        mutated[name] = w + noise
    return genome.with_weights(mutated)


def reset_weights(genome: Genome, rng: np.random.Generator) -> Genome:
    """The same architecture with fresh PyTorch-default random weights (a restart, not a morphism)."""
    return genome.reinitialised(seed=int(rng.integers(2**62)))
