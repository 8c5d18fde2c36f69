"""Config loading: an unknown key names the field it was probably meant to be; a rejected value is one line."""

from __future__ import annotations

import pytest

from evo.config import ConfigError, load_config


@pytest.mark.parametrize(("override", "message"), [
    ("evolution.generationz=3", "evolution.generationz: unknown field (did you mean 'generations'?)"),
    ("plasticity.growth.stratgy=gradmax", "plasticity.growth.stratgy: unknown field (did you mean 'strategy'?)"),
    ("task.datset=iris", "task.supervised.datset: unknown field (did you mean 'dataset'?)"),
    ("zzz=1", "zzz: unknown field"),
])
def test_unknown_field_suggests_the_closest_name(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value).endswith(message)


def test_a_field_of_another_task_kind_is_not_suggested() -> None:
    with pytest.raises(ConfigError, match=r"task\.supervised\.learner: unknown field$"):
        load_config(None, ["task.learner.growth=3"])


def test_a_section_rejecting_a_combination_says_why_without_dumping_the_section() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["evolution.halving.rungs=3", "evolution.eval_steps=2"])
    assert str(err.value) == "defaults with overrides: evolution: halving: 3 rungs with eta 3 need eval_steps >= 9 (got 2)"


def test_a_rejected_value_is_named() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["evolution.population_size=1"])
    assert str(err.value).endswith("evolution.population_size: Input should be greater than or equal to 2 (got 1)")
