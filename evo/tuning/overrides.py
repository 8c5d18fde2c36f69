"""Applying a trial's sampled values to a run config, and checking a space against a config up front.

Values are dotted config paths (``plasticity.lr``), as ``--set`` takes them; operator entries, a list
in the config, are addressed by name or index: ``operators.widen.prob``, ``operators.0.k``.

Example:
    >>> from evo.config import load_config
    >>> cfg = apply_params(load_config(None), {"evolution.population_size": 4, "operators.deepen.prob": 0.5})
    >>> cfg.evolution.population_size, [s["prob"] for s in cfg.operators if s["op"] == "deepen"]
    (4, [0.5])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from evo.config import apply_overrides
from evo.errors import ConfigError
from evo.evolution import operator_specs
from evo.tuning.space import SearchSpace

if TYPE_CHECKING:
    from evo.config import EvoConfig

__all__ = ["apply_params", "check_space", "config_lookup"]


def _operator_index(specs: list[dict[str, Any]], ref: str, path: str) -> int:
    """The entry ``operators.<ref>`` names: an index, or an operator name that occurs exactly once."""
    if ref.isdigit():
        if int(ref) >= len(specs):
            raise ConfigError(f"{path}: there are only {len(specs)} operators (indices 0..{len(specs) - 1})")
        return int(ref)
    matches = [i for i, spec in enumerate(specs) if spec.get("op") == ref]
    if len(matches) != 1:
        names = [spec.get("op") for spec in specs]
        problem = "is not among" if not matches else f"occurs {len(matches)} times in"
        raise ConfigError(f"{path}: operator {ref!r} {problem} the run's operators {names}; name it by index (operators.0.prob)")
    return matches[0]


def apply_params(config: EvoConfig, values: Mapping[str, Any]) -> EvoConfig:
    """``config`` with a trial's values set, re-validated.

    ``operators.<op name or index>.<key>`` sets one key of one operator entry (e.g. ``operators.widen.prob``),
    starting from the task kind's default operators when the config names none.

    Raises:
        ConfigError: a value the config rejects, naming the field.
    """
    plain = {path: value for path, value in values.items() if not path.startswith("operators.")}
    edits = {path: value for path, value in values.items() if path.startswith("operators.")}
    if edits:
        specs = operator_specs(config)
        for path, value in edits.items():
            parts = path.split(".")
            if len(parts) != 3:
                raise ConfigError(f"{path}: operator parameters look like operators.<op name or index>.<key>")
            specs[_operator_index(specs, parts[1], path)][parts[2]] = value
        plain["operators"] = specs
    return apply_overrides(config, plain)


def check_space(space: SearchSpace, config: EvoConfig) -> None:
    """Fail before a search starts when a parameter names no config field or its range holds invalid values.

    Raises:
        ValueError: ``<space file>: parameter 'a.b': <what the config says>``.
    """
    for path, values in space.extremes().items():
        for value in values:
            try:
                apply_params(config, {path: value})
            except ConfigError as err:
                reason = str(err).removeprefix("overrides: ")
                raise ConfigError(f"{space.source}: parameter {path!r}: {reason}") from None


def config_lookup(config: EvoConfig) -> Callable[[str], Any]:
    """``lookup(path)``: the config's value at a dotted path, as :func:`apply_params` addresses it.

    An operator key the entry leaves to the operator's default (say ``operators.0.init``) has no value here;
    ``lookup`` raises ``KeyError`` for it, as for a path the config does not have.
    """
    data = config.model_dump(mode="json")
    specs = operator_specs(config)

    def lookup(path: str) -> Any:
        parts = path.split(".")
        if parts[0] == "operators":
            if len(parts) != 3:
                raise KeyError(path)
            try:
                spec = specs[_operator_index(specs, parts[1], path)]
            except ConfigError:
                raise KeyError(path) from None
            return spec.get("prob", 1.0) if parts[2] == "prob" else spec[parts[2]]
        node: Any = data
        for key in parts:
            if not isinstance(node, dict) or key not in node:
                raise KeyError(path)
            node = node[key]
        return node

    return lookup
