"""Applying sampled values to a config: dotted paths, operator entries by name or index, up-front checks."""

from __future__ import annotations

import pytest

from evo.config import ConfigError, EvoConfig, apply_overrides, load_config
from evo.evolution import DEFAULT_OPERATORS, operator_specs
from evo.tuning import apply_params, check_space, parse_space
from evo.tuning.overrides import config_lookup


def test_dotted_paths_and_operators(xor_config: EvoConfig) -> None:
    cfg = apply_params(xor_config, {"evolution.population_size": 5, "operators.add_skip.prob": 0.5, "operators.0.sigma": 0.2})
    assert cfg.evolution.population_size == 5
    specs = {spec["op"]: spec for spec in cfg.operators or []}
    assert specs["add_skip"]["prob"] == 0.5 and specs["mutate_weights"]["sigma"] == 0.2
    assert len(cfg.operators or []) == len(DEFAULT_OPERATORS["gradient_free"])  # defaults made explicit
    assert xor_config.operators is None  # the base config is untouched


def test_operator_specs_follow_the_task_kind(xor_config: EvoConfig) -> None:
    assert operator_specs(xor_config) == DEFAULT_OPERATORS["gradient_free"]
    assert operator_specs(load_config(None)) == DEFAULT_OPERATORS["gradient"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"operators.widen.prob": 0.1}, "operator 'widen' occurs 2 times in the run's operators"),
        ({"operators.grow.prob": 0.1}, "operator 'grow' is not among the run's operators"),
        ({"operators.99.prob": 0.1}, "there are only 8 operators"),
        ({"operators.prob": 0.1}, "operator parameters look like operators.<op name or index>.<key>"),
        ({"plasticity.nope": 1}, "plasticity.nope: unknown field"),
    ],
)
def test_bad_values(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_params(load_config(None), values)


def test_check_space_names_the_parameter(xor_config: EvoConfig) -> None:
    bad_range = parse_space({"parameters": {"evolution.population_size": {"type": "int", "low": 1, "high": 8}}}, "s.yaml")
    with pytest.raises(ValueError, match="s.yaml: parameter 'evolution.population_size': evolution.population_size: "):
        check_space(bad_range, xor_config)
    typo = parse_space({"parameters": {"plasticity.learning_rate": {"type": "float", "low": 0.1, "high": 1}}}, "s.yaml")
    with pytest.raises(ValueError, match="s.yaml: parameter 'plasticity.learning_rate': plasticity.learning_rate: unknown field"):
        check_space(typo, xor_config)


def test_config_lookup_reads_paths_as_apply_params_writes_them(xor_config: EvoConfig) -> None:
    lookup = config_lookup(apply_params(xor_config, {"operators.add_skip.prob": 0.5}))
    assert lookup("evolution.population_size") == xor_config.evolution.population_size
    assert lookup("operators.add_skip.prob") == 0.5
    first = operator_specs(xor_config)[0]
    assert lookup(f"operators.0.{next(k for k in first if k not in ('op', 'prob'))}") == next(
        v for k, v in first.items() if k not in ("op", "prob"))
    for missing in ("evolution.no_such_field", "evolution.population_size.deeper", "operators.no_such_op.prob",
                    "operators.0.no_such_key", "operators.99.prob", "operators.add_skip"):
        with pytest.raises(KeyError):
            lookup(missing)


def test_config_lookup_gives_an_unset_probability_its_default(xor_config: EvoConfig) -> None:
    cfg = apply_overrides(xor_config, {"operators": [{"op": "add_skip"}]})
    assert config_lookup(cfg)("operators.add_skip.prob") == 1.0  # what build_operators uses
