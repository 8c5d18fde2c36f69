"""Operators: pure ``op(genome, rng, **params) -> Genome`` transformations, by name in a registry.

Each is declared once by :func:`register` with its parameters' rules (:func:`integer`,
:func:`number`, :func:`choice`, :data:`FLAG`, :data:`LAYER` or any :class:`Rule`).

``dropin`` grows (widen, deepen, add_skip), ``apoptosis`` shrinks
(prune_neurons, remove_layer, set_dropout), ``norms`` inserts and folds
normalisation (add_norm, remove_norm), ``pooling`` changes spatial reduction
(add_gap, remove_gap, set_pool), ``weights`` perturbs, and ``importance``
scores units for pruning.
"""

from __future__ import annotations

from evo.operators._base import Operator, Preservation
from evo.operators._declare import FLAG, LAYER, Rule, choice, integer, number, register
from evo.operators.apoptosis import compensate_bias, prune_neurons, remove_layer, set_dropout
from evo.operators.dropin import add_skip, deepen, remove_skip, widen
from evo.operators.importance import capture_outputs, layer_outputs, unit_importance
from evo.operators.norms import add_norm, remove_norm
from evo.operators.pooling import add_gap, remove_gap, set_pool
from evo.operators.registry import OPERATORS, OperatorInfo, describe_operators, make_operator
from evo.operators.weights import mutate_weights, reset_weights

__all__ = [
    "FLAG",
    "LAYER",
    "OPERATORS",
    "Operator",
    "OperatorInfo",
    "Preservation",
    "Rule",
    "add_gap",
    "add_norm",
    "add_skip",
    "capture_outputs",
    "choice",
    "compensate_bias",
    "deepen",
    "describe_operators",
    "integer",
    "layer_outputs",
    "make_operator",
    "mutate_weights",
    "number",
    "prune_neurons",
    "register",
    "remove_gap",
    "remove_layer",
    "remove_norm",
    "remove_skip",
    "reset_weights",
    "set_dropout",
    "set_pool",
    "unit_importance",
    "widen",
]
