"""User-defined tasks: a :class:`Task` subclass in a Python file named by the config.

``task: {kind: custom, path: examples/my_task.py, name: MyTask, options: {...}}``
builds ``MyTask(**options)`` from the file, without installing it as a package.
The task travels to Ray workers as ``(path, name, options)`` and is rebuilt
there by importing the file again (:class:`CustomTask` pickles as its recipe),
so the user's class need not be importable by module name and data loaded in
its constructor is never shipped.

Example:
    >>> task = build_custom_task(CustomTaskConfig(path="examples/my_task.py", name="MyTask"))  # doctest: +SKIP
    >>> task.input_shape, [o.name for o in task.objectives]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evo.errors import ConfigError
from evo.genome import Genome
from evo.preprocessing import Preprocessing
from evo.tasks._base import Task
from evo.types import Budget, Evaluation

if TYPE_CHECKING:
    from evo.plasticity import PlasticityConfig

__all__ = ["CustomTask", "CustomTaskConfig", "build_custom_task", "load_task_class"]


class CustomTaskConfig(BaseModel):
    """A Task subclass of your own, loaded from a Python file (see docs/extending.md)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["custom"] = Field("custom", description="Task kind.")
    path: str = Field(
        "examples/my_task.py",
        description="Python file defining the task class, relative to the current directory or absolute; "
        "stored absolute, so a run resumes from anywhere.",
    )
    name: str = Field("MyTask", description="Name of the evo.tasks.Task subclass in that file.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for the class's constructor; a `plasticity` parameter, if it has one, "
        "receives the plasticity section.",
    )

    @field_validator("path")
    @classmethod
    def _resolve(cls, path: str) -> str:
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise ValueError(f"task file {path} not found (relative to {Path.cwd()})")
        return str(file)


#: modules already imported from task files: path → (modification time, module).
_MODULES: dict[str, tuple[int, ModuleType]] = {}


def _import_file(path: Path) -> ModuleType:
    """Import a Python file as a module of its own (re-imported when the file changed)."""
    if not path.is_file():
        raise ConfigError(f"{path}: task file not found")
    key, mtime = str(path), path.stat().st_mtime_ns
    cached = _MODULES.get(key)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    module_name = f"evo_user_task_{path.stem}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickle look classes up here
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[module_name]
        raise ConfigError(f"{path}: importing it failed: {type(err).__name__}: {err}") from err
    _MODULES[key] = (mtime, module)
    return module


def load_task_class(path: str | Path, name: str) -> type[Task]:
    """The class ``name`` from the file ``path``, checked to be a :class:`Task` subclass.

    Raises:
        ValueError: missing file, import error, no such class, or not a Task subclass.
    """
    file = Path(path).expanduser().resolve()
    module = _import_file(file)
    cls = getattr(module, name, None)
    if cls is None:
        found = sorted(k for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, Task) and v is not Task)
        raise ConfigError(f"{file}: no class {name!r} (Task subclasses there: {', '.join(found) or 'none'})")
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"{file}: {name} is not a subclass of evo.tasks.Task")
    return cls


def _instantiate(cls: type[Task], path: str, options: dict[str, Any], plasticity: PlasticityConfig | None) -> Task:
    kwargs = dict(options)
    if plasticity is not None and "plasticity" in inspect.signature(cls).parameters:
        kwargs.setdefault("plasticity", plasticity)
    try:
        return cls(**kwargs)
    except Exception as err:
        raise ConfigError(f"{path}: {cls.__name__}(**options) failed: {type(err).__name__}: {err}") from err


class CustomTask(Task):
    """The user's task behind a picklable recipe; every other attribute (e.g. ``test``) is the user's.

    Args:
        path: the Python file.
        name: the Task subclass in it.
        options: constructor keyword arguments.
        plasticity: passed to the constructor when it has a ``plasticity`` parameter.
    """

    def __init__(self, path: str | Path, name: str, options: dict[str, Any] | None = None,
                 plasticity: PlasticityConfig | None = None) -> None:
        self.path = str(Path(path).expanduser().resolve())
        self.name = name
        self.options = dict(options or {})
        self.plasticity = plasticity
        self.task = _instantiate(load_task_class(self.path, name), self.path, self.options, plasticity)
        self.objectives = tuple(self.task.objectives)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the recipe, not the instance: the receiving process imports the file again."""
        return CustomTask, (self.path, self.name, self.options, self.plasticity)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr == "task":
            raise AttributeError(attr)
        return getattr(self.task, attr)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.task.input_shape)

    @property
    def output_size(self) -> int:
        return int(self.task.output_size)

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        return self.task.evaluate(genome, budget, device, seed)

    def calibration_batch(self, n: int, seed: int) -> Any:
        return self.task.calibration_batch(n, seed)

    def preprocessing(self) -> Preprocessing:
        return self.task.preprocessing()

    def __repr__(self) -> str:
        return f"CustomTask({self.path!r}, {self.name!r}, {self.options!r})"


def build_custom_task(cfg: CustomTaskConfig, plasticity: PlasticityConfig | None = None) -> CustomTask:
    """The task a ``kind: custom`` section names.

    Raises:
        ValueError: one line naming the file and the problem.
    """
    return CustomTask(cfg.path, cfg.name, cfg.options, plasticity)
