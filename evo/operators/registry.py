"""Operators by name with validated parameters, so configs can say ``{op: widen, k: 8, init: split}``.

Each operator module declares its operators with :func:`register` (name, parameters' rules, what
it preserves, when it applies); importing them here fills :data:`OPERATORS`. Bad specs fail at :func:`make_operator` with a one-line message naming the
operator, the parameter and what is allowed; genome-dependent problems (a
layer out of range, pruning more units than a layer has) fail at apply time
with the same kind of message.

Example:
    >>> make_operator({"op": "prune_neurons", "amount": 0.25, "importance": "taylor"}).name
    'prune_neurons'
    >>> make_operator({"op": "widen", "k": 0})
    Traceback (most recent call last):
    ...
    evo.errors.ConfigError: operator 'widen': parameter 'k' must be an int >= 1, got 0
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from torch import Tensor

from evo.errors import ConfigError
from evo.genome import Genome
from evo.operators import apoptosis, dropin, norms, pooling, weights
from evo.operators._base import Operator, Preservation
from evo.operators._declare import OPERATORS, OperatorDef, Param, Rule, is_number, register

__all__ = ["OPERATORS", "OperatorDef", "OperatorInfo", "Param", "Rule", "describe_operators", "make_operator", "register"]


def _by_family(modules: tuple[ModuleType, ...]) -> None:
    """Order :data:`OPERATORS` by the module that declares each operator, as ``evo ops`` lists them.

    Each module registers its operators as it is imported, so the import order (``apoptosis``
    imports ``norms``) would otherwise decide the listing.
    """
    for module in modules:
        for name in [d.name for d in OPERATORS.values() if d.fn.__module__ == module.__name__]:
            OPERATORS[name] = OPERATORS.pop(name)


_by_family((dropin, apoptosis, norms, pooling, weights))


class RegisteredOperator(Operator):
    """An :class:`Operator` calling a registry function with validated parameters."""

    def __init__(self, definition: OperatorDef, params: Mapping[str, Any]) -> None:
        super().__init__(definition.name, params)
        self.definition = definition
        self.kwargs = definition.with_defaults(params)

    def apply(self, genome: Genome, rng: np.random.Generator, data: tuple[Tensor, Tensor] | None = None) -> Genome:
        extra = {"data": data} if self.definition.uses_data else {}
        return self.definition.fn(genome, rng, **self.kwargs, **extra)

    def applicable(self, genome: Genome) -> bool:
        return self.definition.applicable(genome, self.kwargs)

    @property
    def preserves_function(self) -> bool:
        d = self.definition
        return d.preserves is Preservation.YES or (d.preserves is Preservation.CONDITIONAL and d.exact(self.kwargs))


def make_operator(spec: Mapping[str, Any]) -> Operator:
    """An operator from a spec such as ``{"op": "widen", "k": 8, "init": "split"}``.

    Raises:
        ConfigError: unknown operator or parameter, or a value of the wrong type or out of range.
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("op"), str):
        raise ConfigError(f"an operator spec must be a mapping with a string 'op', got {spec!r}")
    name = spec["op"]
    if name not in OPERATORS:
        raise ConfigError(f"unknown operator {name!r}; allowed: {sorted(OPERATORS)}")
    definition = OPERATORS[name]
    rules = definition.rules
    params = {k: v for k, v in spec.items() if k != "op"}
    bad = definition.first_invalid(params)
    if bad is not None and bad not in rules:
        raise ConfigError(f"operator {name!r}: unknown parameter {bad!r}; allowed: {sorted(rules)}")
    if bad is not None:
        raise ConfigError(f"operator {name!r}: parameter {bad!r} must be {rules[bad].text}, got {params[bad]!r}")
    return RegisteredOperator(definition, params)


class OperatorInfo(NamedTuple):
    """One row of :func:`describe_operators`."""

    name: str
    params: str
    preserves: str
    note: str


def _yaml(value: Any) -> str:
    """A default as a config would spell it (null, true, false)."""
    return {None: "null", True: "true", False: "false"}.get(value, str(value)) if not is_number(value) else str(value)


def describe_operators() -> list[OperatorInfo]:
    """Every registered operator with its parameters (rule = default) and whether it preserves the function."""
    return [
        OperatorInfo(d.name, "; ".join(f"{p.name}: {p.rule.text} = {_yaml(p.default)}" for p in d.params) or "-", d.preserves.value, d.note)
        for d in OPERATORS.values()
    ]
