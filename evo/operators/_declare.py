"""Declaring an operator once: ``@register`` above its function carries its name, its parameters' rules,
what it preserves and when it applies.

The decorator fills :data:`OPERATORS` (what configs name), takes each parameter's default from the
function's signature, and makes a direct call (``widen(genome, rng, k=0)``) check its arguments
against the same rules :func:`evo.operators.registry.make_operator` checks a config's against. So a
rule is written in one place and its message reads the same wherever it is broken. Modelled in
spirit on nevergrad's optimizer registry.

Example:
    >>> import numpy as np
    >>> from evo.genome import Genome
    >>> @register("noop", {"times": integer(1)}, preserves=Preservation.YES, note="returns its input")
    ... def noop(genome: Genome, rng: np.random.Generator, times: int = 1) -> Genome:
    ...     return genome
    >>> OPERATORS["noop"].params
    (Param(name='times', default=1, rule=Rule(text='an int >= 1')),)
    >>> noop(Genome.mlp((2,), (3,), 1), np.random.default_rng(0), times=0)
    Traceback (most recent call last):
    ...
    evo.errors.ConfigError: noop: times must be an int >= 1, got 0
    >>> del OPERATORS["noop"]
"""

from __future__ import annotations

import functools
import inspect
import numbers
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from evo.errors import ConfigError
from evo.genome import Genome
from evo.operators._base import Preservation

__all__ = [
    "FLAG",
    "LAYER",
    "OPERATORS",
    "OperatorDef",
    "Param",
    "Rule",
    "choice",
    "integer",
    "is_int",
    "is_number",
    "number",
    "register",
]


@dataclass(frozen=True)
class Rule:
    """What a parameter's value must be: ``text`` says it in words (in ``evo ops`` and error messages)."""

    text: str
    check: Callable[[Any], bool] = field(repr=False)


def is_int(value: Any) -> bool:
    """An integer, not a bool (``True`` is an int to Python, never a count to a config)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(low: int, optional: bool = False) -> Rule:
    """An int ``>= low`` (or None when ``optional``)."""
    return Rule(f"an int >= {low}" + (" or null" if optional else ""), lambda v: (optional and v is None) or (is_int(v) and v >= low))


def number(low: float, high: float, closed: str) -> Rule:
    """A number in an interval; ``closed`` is one of ``[]``, ``[)``, ``(]``, ``()``."""
    above = operator.ge if closed[0] == "[" else operator.gt
    below = operator.le if closed[1] == "]" else operator.lt
    return Rule(f"a number in {closed[0]}{low:g}, {high:g}{closed[1]}", lambda v: is_number(v) and above(v, low) and below(v, high))


def choice(options: Sequence[str]) -> Rule:
    """One of ``options``."""
    return Rule(f"one of {list(options)}", lambda v: v in options)


FLAG = Rule("true or false", lambda v: isinstance(v, bool))
#: a hidden layer's index; None lets the operator draw one.
LAYER = integer(0, optional=True)


@dataclass(frozen=True)
class Param:
    """One operator parameter: its default (from the function's signature) and its rule."""

    name: str
    default: Any
    rule: Rule


@dataclass(frozen=True)
class OperatorDef:
    """A registry entry: the function, its parameters, what it preserves and when it applies.

    Attributes:
        applicable: ``(genome, params) -> bool``, whether it can apply (params with defaults filled in).
        exact: ``params -> bool``, for a ``CONDITIONAL`` operator whether these parameters preserve the function.
        uses_data: it takes the task's calibration batch as ``data=``.
    """

    name: str
    fn: Callable[..., Genome]
    params: tuple[Param, ...]
    preserves: Preservation
    note: str
    applicable: Callable[[Genome, Mapping[str, Any]], bool] = lambda _g, _p: True
    exact: Callable[[Mapping[str, Any]], bool] = lambda _p: False
    uses_data: bool = False

    def with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value: ``params`` where given, the default otherwise."""
        return {p.name: p.default for p in self.params} | dict(params)

    @property
    def rules(self) -> dict[str, Rule]:
        """Parameter name → rule."""
        return {p.name: p.rule for p in self.params}

    def first_invalid(self, params: Mapping[str, Any]) -> str | None:
        """The first key of ``params`` (in their order) that is no parameter of this operator or breaks its rule."""
        rules = self.rules
        return next((k for k, v in params.items() if k not in rules or not rules[k].check(v)), None)


#: Operators by name, in the order they were registered (see :mod:`evo.operators.registry`).
OPERATORS: dict[str, OperatorDef] = {}

#: a function's arguments that are not parameters a config can set.
_INPUTS = ("genome", "rng", "data")

OperatorFn = TypeVar("OperatorFn", bound=Callable[..., Genome])


def register(
    name: str,
    params: Mapping[str, Rule] | None = None,
    *,
    preserves: Preservation,
    note: str,
    applicable: Callable[[Genome, Mapping[str, Any]], bool] = lambda _g, _p: True,
    exact: Callable[[Mapping[str, Any]], bool] = lambda _p: False,
) -> Callable[[OperatorFn], OperatorFn]:
    """Register ``fn(genome, rng, **params) -> Genome`` as operator ``name``; ``params`` maps each of its
    parameters (all but ``genome``, ``rng`` and ``data``, in signature order) to its rule.

    Raises:
        TypeError: ``params`` does not name the function's parameters, or ``name`` is taken (a bug, not a config).
    """
    rules = dict(params or {})

    def declare(fn: OperatorFn) -> OperatorFn:
        signature = inspect.signature(fn)
        names = [p for p in signature.parameters if p not in _INPUTS]
        if names != list(rules):
            raise TypeError(f"operator {name!r}: rules for {list(rules)}, but {fn.__name__} takes {names}")
        if name in OPERATORS:
            raise TypeError(f"operator {name!r} is registered already")
        declared = tuple(Param(n, signature.parameters[n].default, rules[n]) for n in names)
        definition = OperatorDef(name, fn, declared, preserves, note, applicable, exact, "data" in signature.parameters)
        OPERATORS[name] = definition

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Genome:
            given = signature.bind(*args, **kwargs).arguments
            values = {k: v for k, v in given.items() if k not in _INPUTS}
            bad = definition.first_invalid(values)
            # A genome the operator cannot change at all is refused by the function itself, with a message
            # naming the layers or units it needed (``prune_neurons(amount=0)``: "must remove 1..5 units").
            if bad is not None and definition.applicable(given["genome"], definition.with_defaults(values)):
                raise ConfigError(f"{name}: {bad} must be {rules[bad].text}, got {values[bad]!r}")
            return fn(*args, **kwargs)

        return cast(OperatorFn, checked)

    return declare
