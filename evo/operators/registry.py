"""Operators by name with validated parameters, so configs can say ``{op: widen, k: 8, init: split}``.

Bad specs fail at :func:`make_operator` with a one-line message naming the
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

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from torch import Tensor

from evo.errors import ConfigError
from evo.genome import ACTIVATIONS, NORMS, Genome
from evo.operators import apoptosis, dropin, norms, pooling, weights
from evo.operators._base import Operator, Preservation
from evo.operators.importance import CRITERIA

__all__ = ["OPERATORS", "OperatorDef", "OperatorInfo", "Param", "describe_operators", "make_operator"]


@dataclass(frozen=True)
class Param:
    """One operator parameter: its default and the rule a value must satisfy (``rule`` says it in words)."""

    name: str
    default: Any
    rule: str
    check: Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _int(name: str, default: Any, low: int, optional: bool = False) -> Param:
    rule = f"an int >= {low}" + (" or null" if optional else "")
    return Param(name, default, rule, lambda v: (optional and v is None) or (_is_int(v) and v >= low))


def _num(name: str, default: float, low: float, high: float, closed: str) -> Param:
    """A number in an interval; ``closed`` is one of ``[]``, ``[)``, ``(]``, ``()``."""
    above = operator.ge if closed[0] == "[" else operator.gt
    below = operator.le if closed[1] == "]" else operator.lt
    rule = f"a number in {closed[0]}{low:g}, {high:g}{closed[1]}"
    return Param(name, default, rule, lambda v: _is_num(v) and above(v, low) and below(v, high))


def _choice(name: str, default: str, options: Sequence[str]) -> Param:
    return Param(name, default, f"one of {list(options)}", lambda v: v in options)


_LAYER = _int("layer", None, 0, optional=True)
_SIGMA = _num("sigma", 0.1, 0.0, float("inf"), "()")
_AMOUNT = Param(
    "amount", 1, "an int >= 1 or a float in (0, 1)", lambda v: (_is_int(v) and v >= 1) or (isinstance(v, float) and 0 < v < 1)
)


def _layer_ok(allowed: Sequence[int], layer: int | None) -> bool:
    return bool(allowed) if layer is None else layer in allowed


@dataclass(frozen=True)
class OperatorDef:
    """A registry entry: the function, its parameters and what it preserves."""

    name: str
    fn: Callable[..., Genome]
    params: tuple[Param, ...]
    preserves: Preservation
    note: str
    applicable: Callable[[Genome, Mapping[str, Any]], bool] = lambda _g, _p: True
    exact: Callable[[Mapping[str, Any]], bool] = lambda _p: False
    uses_data: bool = False


OPERATORS: dict[str, OperatorDef] = {
    d.name: d
    for d in (
        OperatorDef(
            "widen", dropin.widen,
            (_LAYER, _int("k", 1, 1), _choice("init", "zero", dropin.WIDEN_INITS), _num("noise", 0.0, 0.0, float("inf"), "[)")),
            Preservation.CONDITIONAL, "exact for init zero/split without noise (in a layer without a layer norm); random is not",
            lambda g, p: _layer_ok(g.hidden_layers, p["layer"]),
            lambda p: p["init"] != "random" and p["noise"] == 0,
        ),
        OperatorDef(
            "deepen", dropin.deepen,
            (_int("position", None, 1, optional=True), _choice("init", "identity", dropin.DEEPEN_INITS),
             _choice("activation", "same", ["same", *ACTIVATIONS])),
            Preservation.CONDITIONAL, "exact for identity init after relu/identity with activation same; approximate otherwise",
            lambda g, p: _layer_ok(g.hidden_layers, None if p["position"] is None else p["position"] - 1),
        ),
        OperatorDef(
            "add_skip", dropin.add_skip, (_int("src", None, 0, optional=True), _int("dst", None, 2, optional=True)),
            Preservation.YES, "zero-initialised projection",
            lambda g, p: any(p["src"] in (None, s) and p["dst"] in (None, d) for s, d in dropin.candidate_skips(g)),
        ),
        OperatorDef(
            "remove_skip", dropin.remove_skip, (_int("src", None, 0, optional=True), _int("dst", None, 2, optional=True)),
            Preservation.NO, "exact only if the projection was zero",
            lambda g, p: any(p["src"] in (None, s) and p["dst"] in (None, d) for s, d in g.skips),
        ),
        OperatorDef(
            "prune_neurons", apoptosis.prune_neurons,
            (_LAYER, _AMOUNT, _choice("importance", "l1", CRITERIA),
             Param("compensate", True, "true or false", lambda v: isinstance(v, bool))),
            Preservation.NO, "exact only for units with zero fan-out; bias compensation keeps their mean contribution",
            lambda g, p: _layer_ok(apoptosis.prunable_layers(g, p["amount"]), p["layer"]), uses_data=True,
        ),
        OperatorDef(
            "remove_layer", apoptosis.remove_layer, (_LAYER,),
            Preservation.CONDITIONAL, "exact for a linear layer with identity activation; approximate otherwise",
            lambda g, p: _layer_ok(apoptosis.removable_layers(g), p["layer"]),
        ),
        OperatorDef(
            "set_dropout", apoptosis.set_dropout, (_LAYER, _num("p", 0.1, 0.0, 1.0, "[)")),
            Preservation.YES, "at inference (dropout is off in eval mode)",
            lambda g, p: _layer_ok(g.hidden_layers, p["layer"]),
        ),
        OperatorDef(
            "add_norm", norms.add_norm, (_LAYER, _choice("kind", "batch", NORMS)),
            Preservation.CONDITIONAL, "batch: exact in eval mode (statistics of the calibration batch, "
            "γ = √(σ²+ε), β = μ); layer: least-squares fit, approximate",
            lambda g, p: _layer_ok([i for i in g.hidden_layers if g.layers[i].norm is None], p["layer"]),
            lambda p: p["kind"] == "batch", uses_data=True,
        ),
        OperatorDef(
            "remove_norm", norms.remove_norm, (_LAYER,),
            Preservation.CONDITIONAL, "a batch norm is folded into the layer's weights (exact in eval mode); "
            "a layer norm is dropped (approximate)",
            lambda g, p: _layer_ok([i for i in g.hidden_layers if g.layers[i].norm is not None], p["layer"]),
        ),
        OperatorDef(
            "add_gap", pooling.add_gap, (),
            Preservation.NO, "head weights summed over positions: exact only for features constant over positions",
            lambda g, _p: not g.gap and g.flatten_at > 0,
        ),
        OperatorDef("remove_gap", pooling.remove_gap, (), Preservation.YES, "head weights spread over positions",
                    lambda g, _p: g.gap),
        OperatorDef(
            "set_pool", pooling.set_pool, (_LAYER, _int("pool", None, 1, optional=True)),
            Preservation.NO, "a conv block's max-pool factor (null: another of 1-4); a flattening head is resampled",
            lambda g, p: _layer_ok(pooling.pool_layers(g, p["pool"]), p["layer"]),
        ),
        OperatorDef(
            "mutate_weights", weights.mutate_weights, (_SIGMA, _num("rate", 1.0, 0.0, 1.0, "(]")),
            Preservation.NO, "Gaussian perturbation, for gradient-free tasks",
        ),
        OperatorDef("reset_weights", weights.reset_weights, (), Preservation.NO, "fresh random weights"),
    )
}


class RegisteredOperator(Operator):
    """An :class:`Operator` calling a registry function with validated parameters."""

    def __init__(self, definition: OperatorDef, params: Mapping[str, Any]) -> None:
        super().__init__(definition.name, params)
        self.definition = definition
        self.kwargs = {p.name: p.default for p in definition.params} | dict(params)

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
        ValueError: unknown operator or parameter, or a value of the wrong type or out of range.
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("op"), str):
        raise ConfigError(f"an operator spec must be a mapping with a string 'op', got {spec!r}")
    name = spec["op"]
    if name not in OPERATORS:
        raise ConfigError(f"unknown operator {name!r}; allowed: {sorted(OPERATORS)}")
    definition = OPERATORS[name]
    rules = {p.name: p for p in definition.params}
    params = {k: v for k, v in spec.items() if k != "op"}
    for key, value in params.items():
        if key not in rules:
            raise ConfigError(f"operator {name!r}: unknown parameter {key!r}; allowed: {sorted(rules)}")
        if not rules[key].check(value):
            raise ConfigError(f"operator {name!r}: parameter {key!r} must be {rules[key].rule}, got {value!r}")
    return RegisteredOperator(definition, params)


class OperatorInfo(NamedTuple):
    """One row of :func:`describe_operators`."""

    name: str
    params: str
    preserves: str
    note: str


def _yaml(value: Any) -> str:
    """A default as a config would spell it (null, true, false)."""
    return {None: "null", True: "true", False: "false"}.get(value, str(value)) if not _is_num(value) else str(value)


def describe_operators() -> list[OperatorInfo]:
    """Every registered operator with its parameters (rule = default) and whether it preserves the function."""
    return [
        OperatorInfo(d.name, "; ".join(f"{p.name}: {p.rule} = {_yaml(p.default)}" for p in d.params) or "-", d.preserves.value, d.note)
        for d in OPERATORS.values()
    ]
