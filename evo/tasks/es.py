"""An evolution strategy on a genome's weights within one evaluation (learning in a gradient-free lifetime).

Mutation-only evolution moves weights by blind Gaussian steps; an evolution strategy
estimates where fitness rises from a whole population of perturbations and adapts its
step sizes, and is far stronger on continuous control (Salimans et al. 2017; Hansen's
CMA-ES). Here it runs *inside* an evaluation, as training does for supervised tasks:
it starts from the genome's weights, and the improved weights (the search
distribution's mean) become the individual's (Lamarckian), while evolution keeps
changing the architecture around them. ``sep_cma`` (Ros & Hansen 2008, diagonal
covariance, linear cost in the weights) suits bigger networks; ``cma`` (full covariance)
is stronger on small ones. Both come from the ``cmaes`` package.

Example:
    >>> from evo.genome import Genome
    >>> g = Genome.mlp((2,), (), 1, seed=0)
    >>> score = lambda vectors, iteration: -np.abs(vectors - 1).sum(axis=1)  # best: every weight 1
    >>> better, stats = search_weights(g, score, WeightSearch(iterations=30, sigma=0.5), seed=0)
    >>> from evo.stacked import to_vector
    >>> bool(stats["es_best"] > score(to_vector(g)[None], 0)[0])
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evo.genome import Genome

__all__ = ["WeightSearch", "search_weights"]

#: fitness of each row of a ``(population, weights)`` matrix at an ES iteration (higher is better).
Score = Callable[[np.ndarray, int], np.ndarray]


class WeightSearch(BaseModel):
    """CMA-ES on a policy's weights inside each evaluation (the ``task.weight_search`` config section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["sep_cma", "cma"] = Field(
        "sep_cma", description="sep_cma: diagonal covariance (Ros & Hansen 2008), linear cost in the weights; "
        "cma: full covariance (Hansen), stronger on small networks, quadratic cost.")
    iterations: int = Field(10, ge=1, description="ES generations per evaluation.")
    population: int = Field(0, ge=0, description="Candidates per ES generation; 0 = CMA-ES's 4 + 3 ln(weights).")
    sigma: float = Field(0.1, gt=0, description="Initial step size on every weight.")
    episodes: int = Field(1, ge=1, description="Episodes per candidate, shared by all candidates of an ES "
                          "generation (fresh each generation).")


def search_weights(genome: Genome, score: Score, search: WeightSearch, seed: int) -> tuple[Genome, dict[str, float]]:
    """``genome`` with the weights ``search`` found from its own, and statistics (``es_*`` metrics).

    Non-finite scores (a failed candidate) rank last. Deterministic for a given ``seed``.
    """
    from cmaes import CMA, SepCMA  # imported when used: config loading stays light

    from evo.stacked import to_vector, with_vector

    mean = to_vector(genome).astype(np.float64)
    kind = SepCMA if search.algorithm == "sep_cma" else CMA
    optimizer = kind(mean=mean, sigma=search.sigma, seed=seed % 2**32, population_size=search.population or None)
    best = -np.inf
    for iteration in range(search.iterations):
        candidates = np.stack([optimizer.ask() for _ in range(optimizer.population_size)])
        scores = np.asarray(score(candidates.astype(np.float32), iteration), dtype=np.float64)
        finite = scores[np.isfinite(scores)]
        floor = finite.min() - 1.0 if finite.size else 0.0
        scores = np.where(np.isfinite(scores), scores, floor)
        best = float(scores.max())
        optimizer.tell([(x, -s) for x, s in zip(candidates, scores)])  # cmaes minimises
    stats = {"es_iterations": float(search.iterations), "es_population": float(optimizer.population_size),
             "es_best": best}
    return with_vector(genome, optimizer.mean.astype(np.float32)), stats
