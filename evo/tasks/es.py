"""An evolution strategy on a genome's weights within one evaluation (learning in a gradient-free lifetime).

Mutation-only evolution moves weights by blind Gaussian steps; an evolution strategy
estimates where fitness rises from a whole population of perturbations and adapts its
step sizes, and is far stronger on continuous control (Salimans et al. 2017; Hansen's
CMA-ES). Here it runs *inside* an evaluation, as training does for supervised tasks:
it starts from the genome's weights, and the improved weights (the search
distribution's mean) become the individual's (Lamarckian), while evolution keeps
changing the architecture around them. ``sep_cma`` (Ros & Hansen 2008, diagonal
covariance, linear cost in the weights) suits bigger networks; ``cma`` (full covariance)
is stronger on small ones. Both come from the ``cmaes`` package and start each lifetime
from the configured step size.

``snes`` (separable natural evolution strategy, Schaul, Glasmachers & Schmidhuber 2011)
keeps one step size per weight and hands them down with the weights
(:attr:`~evo.genome.Genome.optim_state`, entry ``es_std``), as a supervised child
inherits its parent's optimiser moments: a lineage's lifetimes continue one search
instead of restarting it, and a structural change keeps the step sizes of the weights
it keeps (new ones start from ``sigma``).

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

import math
from collections.abc import Callable
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from evo.genome import Genome

__all__ = ["SNES", "STD", "WeightSearch", "inherited_std", "search_weights"]

#: fitness of each row of a ``(population, weights)`` matrix at an ES iteration (higher is better).
Score = Callable[[np.ndarray, int], np.ndarray]


class WeightSearch(BaseModel):
    """An evolution strategy (CMA-ES or SNES) on a policy's weights inside each evaluation (the
    ``task.weight_search`` config section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["sep_cma", "cma", "snes"] = Field(
        "sep_cma", description="sep_cma: diagonal covariance (Ros & Hansen 2008), linear cost in the weights; "
        "cma: full covariance (Hansen), stronger on small networks, quadratic cost; snes: separable NES (Schaul et "
        "al. 2011), one step size per weight, inherited by the children (a lineage continues one search).")
    iterations: int = Field(10, ge=1, description="ES generations per evaluation.")
    population: int = Field(0, ge=0, description="Candidates per ES generation, at least 2; 0 = 4 + 3 ln(weights).")
    sigma: float = Field(0.1, gt=0, description="Initial step size on every weight (snes: on every weight without "
                         "an inherited one).")
    episodes: int = Field(1, ge=1, description="Episodes per candidate, shared by all candidates of an ES "
                          "generation (fresh each generation).")

    @field_validator("population")
    @classmethod
    def _ranks_two_at_least(cls, population: int) -> int:
        """One candidate has nothing to be ranked against: CMA-ES divides by zero, SNES never moves."""
        if population == 1:
            raise ValueError("must be 0 (4 + 3 ln(weights)) or at least 2: an ES ranks its candidates")
        return population


#: the :attr:`~evo.genome.Genome.optim_state` entry holding a weight's SNES step sizes.
STD = "es_std"


class _Strategy(Protocol):
    """What the lifetime loop needs of an evolution strategy."""

    mean: np.ndarray

    def ask(self) -> np.ndarray: ...

    def tell(self, candidates: np.ndarray, scores: np.ndarray) -> None: ...


class _CMA:
    """``cmaes``'s CMA-ES or sep-CMA-ES behind :class:`_Strategy` (it minimises: scores are negated)."""

    def __init__(self, mean: np.ndarray, search: WeightSearch, seed: int) -> None:
        from cmaes import CMA, SepCMA  # imported when used: config loading stays light

        kind = SepCMA if search.algorithm == "sep_cma" else CMA
        self._cma = kind(mean=mean, sigma=search.sigma, seed=seed % 2**32, population_size=search.population or None)

    @property
    def mean(self) -> np.ndarray:
        return self._cma.mean

    def ask(self) -> np.ndarray:
        return np.stack([self._cma.ask() for _ in range(self._cma.population_size)])

    def tell(self, candidates: np.ndarray, scores: np.ndarray) -> None:
        self._cma.tell([(x, -s) for x, s in zip(candidates, scores)])


class SNES:
    """Separable natural evolution strategy (Schaul, Glasmachers & Schmidhuber 2011; Wierstra et al. 2014).

    A Gaussian with a mean and one standard deviation per weight; each iteration samples ``population``
    points, ranks them, and moves the mean along the rank-weighted noise (learning rate 1) and each
    standard deviation multiplicatively (learning rate ``(3 + ln n) / (5 √n)``), with NES's rank utilities.
    Its whole state is the mean and ``std``: what a child inherits to continue the search.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, population: int, seed: int) -> None:
        n = mean.size
        self.mean, self.std = mean.astype(np.float64), std.astype(np.float64)
        self.population = population or 4 + int(3 * math.log(n))
        self.std_rate = (3 + math.log(n)) / (5 * math.sqrt(n))
        ranks = np.maximum(0.0, math.log(self.population / 2 + 1) - np.log(np.arange(1, self.population + 1)))
        self.utilities = ranks / ranks.sum() - 1 / self.population  # best first
        self._rng = np.random.default_rng(seed)
        self._noise = np.zeros((0, n))

    def ask(self) -> np.ndarray:
        self._noise = self._rng.standard_normal((self.population, self.mean.size))
        return self.mean + self.std * self._noise

    def tell(self, candidates: np.ndarray, scores: np.ndarray) -> None:
        utility = np.empty(self.population)
        utility[np.argsort(-scores, kind="stable")] = self.utilities
        self.mean = self.mean + self.std * (utility @ self._noise)
        self.std = self.std * np.exp(self.std_rate / 2 * (utility @ (self._noise**2 - 1)))


def inherited_std(genome: Genome, sigma: float) -> np.ndarray:
    """Per-weight step sizes in :func:`~evo.stacked.to_vector` order: the genome's inherited ones (``es_std``),
    ``sigma`` where it has none (a new weight, or a new unit, whose state a structural edit set to 0)."""
    parts = []
    for name, shape in genome.param_shapes().items():
        carried = genome.optim_state.get(name, {}).get(STD)
        std = np.full(math.prod(shape), sigma) if carried is None else carried.numpy().astype(np.float64).ravel()
        parts.append(np.where(std > 0, std, sigma))
    return np.concatenate(parts)


def _with_std(genome: Genome, std: np.ndarray) -> Genome:
    """``genome`` carrying ``std`` (in :func:`~evo.stacked.to_vector` order) as its weights' ``es_std``."""
    from evo.stacked import with_vector

    shaped = with_vector(genome, std.astype(np.float32)).weights  # the step sizes split and shaped as the weights
    return genome.replace(optim_state={name: {STD: value} for name, value in shaped.items()})


def search_weights(genome: Genome, score: Score, search: WeightSearch, seed: int) -> tuple[Genome, dict[str, float]]:
    """``genome`` with the weights ``search`` found from its own, and statistics (``es_*`` metrics).

    Non-finite scores (a failed candidate) rank last. Deterministic for a given ``seed``.
    """
    from evo.stacked import to_vector, with_vector

    mean = to_vector(genome).astype(np.float64)
    strategy: _Strategy
    if search.algorithm == "snes":
        strategy = SNES(mean, inherited_std(genome, search.sigma), search.population, seed)
    else:
        strategy = _CMA(mean, search, seed)
    best = -np.inf
    for iteration in range(search.iterations):
        candidates = strategy.ask()
        scores = np.asarray(score(candidates.astype(np.float32), iteration), dtype=np.float64)
        finite = scores[np.isfinite(scores)]
        floor = finite.min() - 1.0 if finite.size else 0.0
        scores = np.where(np.isfinite(scores), scores, floor)
        best = float(scores.max())
        strategy.tell(candidates, scores)
    stats = {"es_iterations": float(search.iterations), "es_population": float(len(candidates)), "es_best": best}
    found = with_vector(genome, strategy.mean.astype(np.float32))
    if isinstance(strategy, SNES):
        stats["es_std"] = float(strategy.std.mean())
        found = _with_std(found, strategy.std)
    return found, stats
