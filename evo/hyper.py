"""Hyperparameters as genes: population-based training inside evolution (Jaderberg et al. 2017).

Each individual may carry its own training hyperparameters (``Genome.hparams``:
learning rate, weight decay, batch size, dropout, momentum, learning-rate
schedule). A child inherits them with its parent's weights and perturbs them
PBT-style — each numeric gene multiplied by a factor drawn from ``perturb``
(×0.8 or ×1.25), or resampled from its range with probability
``resample_prob`` — so a run discovers a hyperparameter *schedule* along each
lineage. With the architecture operators switched off, evolution is PBT; with
them on it is PBT that also changes shapes, which Ray Tune's PBT cannot.

Everything here is a pure function of its arguments and an explicit ``rng``;
the plastic trainer reads the genes in place of ``plasticity.*``.

Example:
    >>> import numpy as np
    >>> rules = HyperConfig(genes=["lr", "batch_size"], resample_prob=0.0)
    >>> child = perturb({"lr": 0.01, "batch_size": 32}, np.random.default_rng(0), rules)
    >>> child["lr"] in (0.008, 0.0125), child["batch_size"] in (26, 40)
    (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["GENES", "Gene", "HParams", "HyperConfig", "initial_hparams", "perturb"]

#: one individual's hyperparameters: a ``plasticity`` field name → its value.
HParams = dict[str, Any]

GeneName = Literal["lr", "weight_decay", "batch_size", "dropout", "momentum", "lr_schedule"]


@dataclass(frozen=True)
class Gene:
    """The values one hyperparameter may take: a numeric range (log-scaled or not, integer or not), or choices."""

    low: float = 0.0
    high: float = 1.0
    log: bool = False
    integer: bool = False
    choices: tuple[str, ...] = ()

    def sample(self, rng: np.random.Generator) -> Any:
        """A value drawn uniformly from the range (log-uniformly when ``log``), or one of the choices."""
        if self.choices:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.log:
            return self.clip(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return self.clip(rng.uniform(self.low, self.high))

    def clip(self, value: float) -> float | int:
        """``value`` inside the range (rounded first for integer genes), as a plain Python number."""
        value = round(value) if self.integer else value
        clipped = min(max(value, self.low), self.high)
        return int(clipped) if self.integer else float(clipped)


#: the hyperparameters that can evolve, with their default ranges (``evolution.hyper.ranges`` overrides them).
GENES: dict[str, Gene] = {
    "lr": Gene(1e-4, 1e-1, log=True),
    "weight_decay": Gene(1e-6, 1e-2, log=True),
    "batch_size": Gene(8, 256, log=True, integer=True),
    "dropout": Gene(0.0, 0.5),
    "momentum": Gene(0.5, 0.99),
    "lr_schedule": Gene(choices=("constant", "cosine")),
}


class HyperConfig(BaseModel):
    """Hyperparameters as genes (PBT inside evolution); off while ``genes`` is empty."""

    model_config = ConfigDict(extra="forbid")

    genes: list[GeneName] = Field(
        default_factory=list,
        description="plasticity fields each individual carries and mutates, from: lr, weight_decay, batch_size, "
        "dropout, momentum, lr_schedule; empty = off (every individual trains with the plasticity section).",
    )
    perturb: list[float] = Field(
        default_factory=lambda: [0.8, 1.25],
        description="A child multiplies each numeric gene by one of these factors, drawn uniformly (PBT's explore).",
    )
    resample_prob: float = Field(
        0.25, ge=0, le=1, description="Probability that a gene is instead resampled from its range (choices: redrawn)."
    )
    init: Literal["sample", "config"] = Field(
        "sample",
        description="sample: the initial population draws each gene from its range; config: every initial "
        "individual starts from the plasticity section's value (clipped into the range).",
    )
    ranges: dict[str, list[float]] = Field(
        default_factory=dict,
        description="[low, high] per numeric gene, overriding the defaults: lr [1e-4, 0.1] and weight_decay "
        "[1e-6, 0.01] and batch_size [8, 256] (log-scaled), dropout [0, 0.5], momentum [0.5, 0.99].",
    )

    @field_validator("perturb")
    @classmethod
    def _positive_factors(cls, factors: list[float]) -> list[float]:
        if not factors or min(factors) <= 0:
            raise ValueError(f"perturbation factors must be a non-empty list of numbers > 0, got {factors}")
        return factors

    @model_validator(mode="after")
    def _check_ranges(self) -> HyperConfig:
        for name, bounds in self.ranges.items():
            default = GENES.get(name)
            if default is None or default.choices:
                numeric = sorted(n for n, g in GENES.items() if not g.choices)
                raise ValueError(f"ranges.{name}: not a numeric gene (allowed: {', '.join(numeric)})")
            if len(bounds) != 2 or not bounds[0] < bounds[1] or (default.log and bounds[0] <= 0):
                rule = "0 < low < high (log-scaled)" if default.log else "low < high"
                raise ValueError(f"ranges.{name}: must be [low, high] with {rule}, got {bounds}")
        return self

    def gene(self, name: str) -> Gene:
        """The gene ``name`` with its configured range."""
        default = GENES[name]
        if name not in self.ranges:
            return default
        low, high = self.ranges[name]
        return Gene(low, high, default.log, default.integer)


def initial_hparams(rules: HyperConfig, defaults: Mapping[str, Any], rng: np.random.Generator) -> HParams:
    """An initial individual's genes: drawn from their ranges (``init: sample``) or the ``defaults``
    (the plasticity section's values; a null dropout counts as 0) clipped into them (``init: config``)."""
    out: HParams = {}
    for name in rules.genes:
        gene = rules.gene(name)
        if rules.init == "sample":
            out[name] = gene.sample(rng)
        else:
            value = defaults[name] if defaults[name] is not None else 0.0
            out[name] = value if gene.choices else gene.clip(value)
    return out


def perturb(hparams: Mapping[str, Any], rng: np.random.Generator, rules: HyperConfig) -> HParams:
    """A child's genes from its parent's: per gene, a resample with probability ``rules.resample_prob``,
    else (numeric genes) the value times a factor drawn from ``rules.perturb``, clipped into the range."""
    out: HParams = {}
    for name in rules.genes:
        gene, value = rules.gene(name), hparams[name]
        if rng.random() < rules.resample_prob:
            out[name] = gene.sample(rng)
        elif gene.choices:
            out[name] = value
        else:
            out[name] = gene.clip(value * float(rng.choice(rules.perturb)))
    return out
