"""Every task kind in one place: the ``TaskConfig`` union (chosen by ``kind``) and :func:`build_task`.

The kinds live in two packages — :mod:`evo.tasks` (supervised, control, xor, custom) and
:mod:`evo.continual` (a stream of tasks, built on :mod:`evo.tasks`' data loading) — so the union of
their configs sits above both, and neither package imports the other's way up.

Example:
    >>> from pydantic import TypeAdapter
    >>> cfg = TypeAdapter(TaskConfig).validate_python({"dataset": "iris"})
    >>> cfg.kind, cfg.dataset
    ('supervised', 'iris')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Tag

from evo.continual.config import ContinualTaskConfig
from evo.tasks.config import ControlTaskConfig, CustomTaskConfig, SupervisedTaskConfig, XorTaskConfig

if TYPE_CHECKING:
    from evo.plasticity import PlasticityConfig
    from evo.tasks import Task

__all__ = ["TaskConfig", "build_task"]


def _kind(value: Any) -> str:
    """The union's tag; a section without ``kind`` is supervised."""
    if isinstance(value, dict):
        return str(value.get("kind", "supervised"))
    return str(getattr(value, "kind", "supervised"))


TaskConfig = Annotated[
    Union[
        Annotated[SupervisedTaskConfig, Tag("supervised")],
        Annotated[ControlTaskConfig, Tag("control")],
        Annotated[XorTaskConfig, Tag("xor")],
        Annotated[ContinualTaskConfig, Tag("continual")],
        Annotated[CustomTaskConfig, Tag("custom")],
    ],
    Discriminator(_kind),
]


def build_task(
    cfg: SupervisedTaskConfig | ControlTaskConfig | XorTaskConfig | ContinualTaskConfig | CustomTaskConfig,
    plasticity: PlasticityConfig | None = None,
) -> Task:
    """The task a config describes; loads (and caches) the dataset or checks the environment.

    Raises:
        ValueError: a missing or malformed data file, or an unknown environment.
    """
    if isinstance(cfg, SupervisedTaskConfig):
        from evo.tasks.supervised import SupervisedTask

        return SupervisedTask(cfg, plasticity)
    if isinstance(cfg, ControlTaskConfig):
        from evo.tasks.control import ControlTask

        return ControlTask(cfg.env, episodes=cfg.episodes, max_episode_steps=cfg.max_episode_steps,
                           normalize=cfg.normalize, test_episodes=cfg.test_episodes, weight_search=cfg.weight_search)
    if isinstance(cfg, ContinualTaskConfig):
        from evo.continual.task import ContinualTask

        return ContinualTask(cfg)
    if isinstance(cfg, CustomTaskConfig):
        from evo.tasks.custom import build_custom_task

        return build_custom_task(cfg, plasticity)
    from evo.tasks.xor import XorTask

    return XorTask()
