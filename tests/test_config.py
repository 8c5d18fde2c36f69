"""Config loading: an unknown key names the field it was probably meant to be."""

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
