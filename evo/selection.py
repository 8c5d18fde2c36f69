"""Selection: who becomes a parent and who survives.

Four strategies behind one small interface:

* :class:`AgingSelector` — regularized evolution (Real et al. 2019): a parent is
  the best of ``S`` random members; children join and the *oldest* die, which
  keeps the population young and resists lucky evaluations.
* :class:`TournamentSelector` — tournament parents, generational replacement
  with elitism.
* :class:`NSGA2Selector` — non-dominated sorting and crowding distance
  (Deb et al. 2002) for several objectives; the population approximates the
  Pareto front.
* :class:`LemonadeSelector` — NSGA-II survivors, but parents drawn from the
  Pareto front with probability inversely proportional to the density of
  their network sizes (Elsken et al. 2019), so sparse regions get explored.

:func:`sample_inverse_density` is the same idea applied to candidate children
before any training (LEMONADE's pre-filter, ``evolution.prefilter``).

Scores are oriented so that larger is always better (minimised objectives are
negated); failed individuals score −inf everywhere.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from evo.errors import ConfigError
from evo.records import Individual
from evo.types import Direction, Objective

__all__ = [
    "AgingSelector",
    "LemonadeSelector",
    "NSGA2Selector",
    "Selector",
    "TournamentSelector",
    "crowding_distance",
    "inverse_density",
    "kde_log_density",
    "make_selector",
    "non_dominated_fronts",
    "pareto_front",
    "sample_inverse_density",
    "scores",
]


def scores(individual: Individual, objectives: Sequence[Objective]) -> tuple[float, ...]:
    """The individual's objectives as a larger-is-better vector (−inf when missing or failed)."""
    out = []
    for obj in objectives:
        value = individual.objectives.get(obj.name, math.nan)
        if individual.evaluation is None or not individual.evaluation.ok or math.isnan(value):
            out.append(-math.inf)
        else:
            out.append(value if obj.direction is Direction.MAXIMIZE else -value)
    return tuple(out)


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def non_dominated_fronts(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``points`` grouped into Pareto fronts, best first (larger is better)."""
    n = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(n)]
    count = [0] * n
    for i in range(n):
        for j in range(n):
            if i != j and _dominates(points[i], points[j]):
                dominated_by[i].append(j)
            elif i != j and _dominates(points[j], points[i]):
                count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def crowding_distance(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II crowding distance of each point within one front (boundary points: inf)."""
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    distance = [0.0] * n
    for m in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][m])
        lo, hi = points[order[0]][m], points[order[-1]][m]
        distance[order[0]] = distance[order[-1]] = math.inf
        span = hi - lo
        if not math.isfinite(span) or span == 0:
            continue
        for k in range(1, n - 1):
            distance[order[k]] += (points[order[k + 1]][m] - points[order[k - 1]][m]) / span
    return distance


def pareto_front(individuals: Sequence[Individual], objectives: Sequence[Objective]) -> list[Individual]:
    """The non-dominated evaluated individuals."""
    ok = [ind for ind in individuals if ind.evaluation is not None and ind.evaluation.ok]
    if not ok:
        return []
    points = [scores(ind, objectives) for ind in ok]
    # Sweep in lexicographically decreasing order: a point can only be dominated by one
    # before it, and anything dominated is dominated by a front member, so each point is
    # checked against the front alone — O(n·|front|) instead of a full O(n²) sort, which
    # matters because runs ask for the front every generation over every individual ever seen.
    front: list[int] = []
    for i in sorted(range(len(ok)), key=points.__getitem__, reverse=True):
        if not any(_dominates(points[j], points[i]) for j in front):
            front.append(i)
    return [ok[i] for i in sorted(front)]


class Selector(ABC):
    """Chooses parents and survivors; ``objectives[0]`` is the primary fitness."""

    def __init__(self, objectives: Sequence[Objective], tournament_size: int = 3) -> None:
        self.objectives = tuple(objectives)
        self.tournament_size = tournament_size

    def key(self, individual: Individual) -> tuple[float, ...]:
        """Sort key, larger is better: primary objective, then the rest, then youth (larger id)."""
        return (*scores(individual, self.objectives), individual.id)

    def parents(self, population: Sequence[Individual], k: int, rng: np.random.Generator) -> list[Individual]:
        """``k`` parents, each the best of a random tournament."""
        size = min(self.tournament_size, len(population))
        picks = [rng.choice(len(population), size=size, replace=False) for _ in range(k)]
        return [max((population[i] for i in pick), key=self.key) for pick in picks]

    @abstractmethod
    def survivors(self, population: Sequence[Individual], children: Sequence[Individual], size: int) -> list[Individual]:
        """The next population (``size`` members) from the current one and the evaluated children."""


class AgingSelector(Selector):
    """Regularized evolution: children are appended and the oldest members are removed."""

    def survivors(self, population: Sequence[Individual], children: Sequence[Individual], size: int) -> list[Individual]:
        merged = sorted([*population, *children], key=lambda ind: ind.id)
        return merged[-size:]


class TournamentSelector(Selector):
    """Generational replacement keeping the ``elitism`` best of the old population."""

    def __init__(self, objectives: Sequence[Objective], tournament_size: int = 3, elitism: int = 1) -> None:
        super().__init__(objectives, tournament_size)
        self.elitism = elitism

    def survivors(self, population: Sequence[Individual], children: Sequence[Individual], size: int) -> list[Individual]:
        elites = sorted(population, key=self.key, reverse=True)[: self.elitism]
        rest = sorted(children, key=self.key, reverse=True)
        if len(elites) + len(rest) < size:  # too few children: refill from the old population
            rest += sorted((p for p in population if p not in elites), key=self.key, reverse=True)
        return sorted([*elites, *rest][:size], key=lambda ind: ind.id)


class NSGA2Selector(Selector):
    """NSGA-II: parents by (front rank, crowding) tournaments, survivors front by front."""

    def _rank(self, individuals: Sequence[Individual]) -> dict[int, tuple[int, float]]:
        points = [scores(ind, self.objectives) for ind in individuals]
        rank: dict[int, tuple[int, float]] = {}
        for r, front in enumerate(non_dominated_fronts(points)):
            for i, dist in zip(front, crowding_distance([points[i] for i in front]), strict=True):
                rank[individuals[i].id] = (r, dist)
        return rank

    def parents(self, population: Sequence[Individual], k: int, rng: np.random.Generator) -> list[Individual]:
        rank = self._rank(population)
        size = min(max(self.tournament_size, 2), len(population))
        picks = [rng.choice(len(population), size=size, replace=False) for _ in range(k)]
        best = [min((population[i] for i in pick), key=lambda ind: (rank[ind.id][0], -rank[ind.id][1], -ind.id)) for pick in picks]
        return best

    def survivors(self, population: Sequence[Individual], children: Sequence[Individual], size: int) -> list[Individual]:
        merged = [*population, *children]
        rank = self._rank(merged)
        ordered = sorted(merged, key=lambda ind: (rank[ind.id][0], -rank[ind.id][1], -ind.id))
        return sorted(ordered[:size], key=lambda ind: ind.id)


def kde_log_density(points: Sequence[float], reference: Sequence[float]) -> np.ndarray | None:
    """The log of a Gaussian kernel density estimate of ``reference`` at each of ``points`` (up to a constant),
    with Scott's bandwidth from the reference — or, where the reference does not spread, from reference and points
    together; None when neither spreads (every density is the same)."""
    x, ref = np.asarray(points, dtype=float), np.asarray(reference, dtype=float)
    spread = float(ref.std()) or float(np.concatenate([ref, x]).std())
    if spread == 0:
        return None
    bandwidth = 1.06 * spread * len(ref) ** -0.2
    z = -0.5 * ((x[:, None] - ref[None, :]) / bandwidth) ** 2
    top = z.max(axis=1)  # log-sum-exp: a point far from every reference point still gets a finite log density
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def inverse_density(values: Sequence[float]) -> np.ndarray:
    """Probabilities proportional to 1 / a Gaussian kernel density estimate at each value (Scott's bandwidth);
    uniform when the values do not spread."""
    log_density = kde_log_density(values, values)
    if log_density is None:
        return np.full(len(values), 1.0 / len(values))
    weights = np.exp(log_density.min() - log_density)
    return weights / weights.sum()


def sample_inverse_density(points: Sequence[float], reference: Sequence[float], k: int,
                           rng: np.random.Generator) -> list[int]:
    """``k`` distinct indices of ``points`` (in increasing order), drawn without replacement with probability
    proportional to 1 / the density of ``reference`` at each point (:func:`kde_log_density`; uniform when nothing
    spreads), by the Gumbel top-k trick (Vieira 2014; Kool et al. 2019): one draw per point, no underflow however
    far a point lies from the reference."""
    log_density = kde_log_density(points, reference)
    keys = rng.gumbel(size=len(points)) - (0.0 if log_density is None else log_density)
    return sorted(int(i) for i in np.argsort(-keys, kind="stable")[:k])


class LemonadeSelector(NSGA2Selector):
    """LEMONADE's parent sampling (Elsken et al. 2019): parents come from the Pareto front, each drawn with
    probability inversely proportional to a kernel density estimate of log(parameters) over the front, so a
    lone network in a sparse region of sizes (often a small one) is explored as often as a whole crowd.
    Survivors as NSGA-II."""

    def parents(self, population: Sequence[Individual], k: int, rng: np.random.Generator) -> list[Individual]:
        front = [population[i] for i in non_dominated_fronts([scores(p, self.objectives) for p in population])[0]]
        probs = inverse_density([math.log(ind.genome.num_params()) for ind in front])
        return [front[i] for i in rng.choice(len(front), size=k, p=probs)]


def make_selector(name: str, objectives: Sequence[Objective], tournament_size: int = 3, elitism: int = 1) -> Selector:
    """The selector a config names; ``auto`` is aging for one objective and NSGA-II for several."""
    if name == "auto":
        name = "aging" if len(objectives) == 1 else "nsga2"
    if name == "aging":
        return AgingSelector(objectives, tournament_size)
    if name == "tournament":
        return TournamentSelector(objectives, tournament_size, elitism)
    if name == "nsga2":
        return NSGA2Selector(objectives, tournament_size)
    if name == "lemonade":
        return LemonadeSelector(objectives, tournament_size)
    raise ConfigError(f"evolution.selection: unknown selector {name!r} (allowed: auto, aging, tournament, nsga2, "
                     "lemonade)")
