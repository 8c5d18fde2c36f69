"""Search spaces: which config fields a search varies, and over which values.

A space is declarative YAML by default — each parameter maps a dotted config
path to a distribution — or a define-by-run Python function of an Optuna trial
(``path/to/file.py:function``), as Optuna users write them. Either way a space
turns a trial into dotted overrides of the run config.

A YAML space::

    description: plasticity knobs
    parameters:
      plasticity.lr: {type: float, low: 1.0e-4, high: 0.1, log: true}
      plasticity.growth.strategy: {type: categorical, choices: [none, gradmax]}
      plasticity.growth.interval:          # only sampled when growth is on
        {type: int, low: 1, high: 10, when: {plasticity.growth.strategy: gradmax}}
      operators.widen.prob: {type: float, low: 0.0, high: 0.5}

Example:
    >>> import optuna
    >>> space = parse_space({"parameters": {"plasticity.lr": {"type": "float", "low": 0.001, "high": 0.1}}})
    >>> trial = optuna.create_study().ask()
    >>> 0.001 <= space.sample(trial)["plasticity.lr"] <= 0.1
    True
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import optuna
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evo.errors import ConfigError

__all__ = [
    "CategoricalParam",
    "FloatParam",
    "FunctionSpace",
    "IntParam",
    "SearchSpace",
    "YamlSpace",
    "load_space",
    "parse_space",
]

#: :meth:`_Param.stored`'s answer for a value the parameter cannot take.
OUTSIDE = object()
_PATH = re.compile(r"^[A-Za-z_]\w*(\.\w+)*$")
_PRIMITIVE = (type(None), bool, int, float, str)


class _Param(BaseModel):
    """Fields every parameter has: the condition under which it exists."""

    model_config = ConfigDict(extra="forbid")

    when: dict[str, Any] | None = Field(
        None,
        description="Present only when each named earlier parameter has this value (or one of a list of values).",
    )

    def active(self, sampled: Mapping[str, Any]) -> bool:
        """Whether this parameter exists given the values sampled so far."""
        for path, wanted in (self.when or {}).items():
            allowed = wanted if isinstance(wanted, list) else [wanted]
            if path not in sampled or sampled[path] not in allowed:
                return False
        return True

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        """This trial's value, suggested under the Optuna parameter ``name``."""
        raise NotImplementedError

    def extremes(self) -> list[Any]:
        """Values that span the range, to check the config accepts them before a search starts."""
        raise NotImplementedError

    def stored(self, value: Any) -> Any:
        """``value`` as Optuna stores it for this parameter, or :data:`OUTSIDE` when it is not one of its values."""
        raise NotImplementedError


class FloatParam(_Param):
    """A real number in [low, high], optionally on a log scale or a grid of ``step``."""

    type: Literal["float"] = "float"
    low: float = Field(..., description="Smallest value.")
    high: float = Field(..., description="Largest value.")
    log: bool = Field(False, description="Sample on a log scale (low must be > 0).")
    step: float | None = Field(None, gt=0, description="Grid spacing; null = continuous.")

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step is not None)
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def extremes(self) -> list[Any]:
        return [self.low, self.high]

    def stored(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return OUTSIDE
        steps = None if self.step is None else (value - self.low) / self.step
        return OUTSIDE if steps is not None and not math.isclose(steps, round(steps), abs_tol=1e-9) else float(value)


class IntParam(_Param):
    """An integer in [low, high], optionally on a log scale or every ``step``."""

    type: Literal["int"] = "int"
    low: int = Field(..., description="Smallest value.")
    high: int = Field(..., description="Largest value.")
    log: bool = Field(False, description="Sample on a log scale (low must be > 0, step 1).")
    step: int = Field(1, ge=1, description="Spacing of the allowed values.")

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.step != 1)
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def extremes(self) -> list[Any]:
        return [self.low, self.high]

    def stored(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            return OUTSIDE
        return value if (value - self.low) % self.step == 0 else OUTSIDE


class CategoricalParam(_Param):
    """One of ``choices``; a list or mapping choice (e.g. hidden widths ``[64, 32]``) is allowed."""

    type: Literal["categorical"] = "categorical"
    choices: list[Any] = Field(..., min_length=1, description="The values to choose from.")

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        if len(set(self.encoded())) != len(self.choices):
            raise ValueError("choices must be distinct")
        return self

    def encoded(self) -> list[Any]:
        """The choices as Optuna stores them: primitives as they are, lists and mappings as JSON."""
        return [c if isinstance(c, _PRIMITIVE) else json.dumps(c) for c in self.choices]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        raw = trial.suggest_categorical(name, self.encoded())
        return dict(zip(self.encoded(), self.choices, strict=True))[raw]

    def extremes(self) -> list[Any]:
        return list(self.choices)

    def stored(self, value: Any) -> Any:
        for choice, encoded in zip(self.choices, self.encoded(), strict=True):
            if type(choice) is type(value) and choice == value:  # True is not the choice 1
                return encoded
        return OUTSIDE


Param = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]


def _check_range(low: float, high: float, log: bool, stepped: bool) -> None:
    if low >= high:
        raise ValueError("low must be < high")
    if log and low <= 0:
        raise ValueError("log needs low > 0")
    if log and stepped:
        raise ValueError("log and step cannot be combined")


class _SpaceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field("", description="What the space is for.")
    parameters: dict[str, Param] = Field(..., min_length=1, description="Dotted config path → distribution.")


class SearchSpace(ABC):
    """Turns an Optuna trial into dotted config overrides."""

    #: where the space came from, for error messages.
    source: str = "space"

    @abstractmethod
    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest this trial's values; returns ``{"a.b": value}`` overrides."""

    def extremes(self) -> dict[str, list[Any]]:
        """Per parameter, values spanning its range (empty when the space cannot tell before sampling)."""
        return {}

    def fixed(self, lookup: Callable[[str], Any]) -> dict[str, Any]:
        """Optuna's parameters of a trial that takes the values ``lookup(path)`` gives, where the space holds them.

        ``lookup`` raises ``KeyError`` for a path it has no value for. Used to run a search's base config first
        (``optuna.Study.enqueue_trial``); parameters left out are sampled as usual. By default none: a
        define-by-run space cannot tell its parameters before a trial runs.
        """
        return {}

    def identity(self) -> Any:
        """JSON-able data that differs between spaces that sample differently (a study keeps to one space);
        by default the class, so a space of your own is told apart from others only by its type."""
        return f"{type(self).__module__}.{type(self).__qualname__}"


class YamlSpace(SearchSpace):
    """A declarative space: parameters in order, each present when its ``when`` condition holds."""

    def __init__(self, parameters: Mapping[str, _Param], source: str = "space", description: str = "") -> None:
        self.parameters = dict(parameters)
        self.source = source
        self.description = description

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for path, param in self.parameters.items():
            if param.active(values):
                values[path] = param.suggest(trial, path)
        return values

    def extremes(self) -> dict[str, list[Any]]:
        return {path: param.extremes() for path, param in self.parameters.items()}

    def fixed(self, lookup: Callable[[str], Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}  # what the trial will sample, as far as known: decides the conditions
        params: dict[str, Any] = {}
        for path, param in self.parameters.items():
            if not param.active(values):
                continue
            try:
                value = lookup(path)
            except KeyError:
                continue
            stored = param.stored(value)
            if stored is not OUTSIDE:
                values[path], params[path] = value, stored
        return params

    def identity(self) -> Any:
        return [[path, param.model_dump(mode="json")] for path, param in self.parameters.items()]  # order: conditions


class FunctionSpace(SearchSpace):
    """A define-by-run space: ``fn(trial) -> {"a.b": value}``."""

    def __init__(self, fn: Callable[[optuna.Trial], Mapping[str, Any]], source: str = "space") -> None:
        self.fn = fn
        self.source = source

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        values = self.fn(trial)
        if not isinstance(values, Mapping) or not all(isinstance(k, str) and _PATH.match(k) for k in values):
            raise ConfigError(f"{self.source}: must return a mapping of dotted config paths to values, got {values!r}")
        return dict(values)

    def identity(self) -> Any:
        try:
            return inspect.getsource(self.fn)
        except (OSError, TypeError):  # defined where its source cannot be read (an interactive session)
            return f"{getattr(self.fn, '__module__', '')}.{getattr(self.fn, '__qualname__', repr(self.fn))}"


def parse_space(data: Any, source: str = "space") -> YamlSpace:
    """Validate a space's YAML data.

    Raises:
        ValueError: one line naming ``source``, the parameter and what is wrong.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping with a 'parameters' section")
    try:
        parsed = _SpaceFile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_describe(err)}") from None
    seen: dict[str, _Param] = {}
    for path, param in parsed.parameters.items():
        if not _PATH.match(path):
            raise ConfigError(f"{source}: parameter {path!r}: must be a dotted config path like plasticity.lr")
        _check_condition(path, param, seen, source)
        seen[path] = param
    return YamlSpace(parsed.parameters, source, parsed.description)


def _check_condition(path: str, param: _Param, earlier: Mapping[str, _Param], source: str) -> None:
    """A condition may only name parameters defined above it, with values they can take."""
    for other, wanted in (param.when or {}).items():
        if other not in earlier:
            raise ConfigError(f"{source}: parameter {path!r}: when names {other!r}, which is not a parameter defined above it")
        choices = earlier[other].extremes() if isinstance(earlier[other], CategoricalParam) else None
        for value in wanted if isinstance(wanted, list) else [wanted]:
            if choices is not None and value not in choices:
                raise ConfigError(f"{source}: parameter {path!r}: when {other}={value!r} is not one of its choices {choices}")


def _describe(err: ValidationError) -> str:
    """The first problem as "parameter 'a.b': what is wrong"."""
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a typo explains a "missing"
    loc = [str(part) for part in first["loc"]]
    where = f"parameter {loc[1]!r}: " if len(loc) >= 2 and loc[0] == "parameters" else ""
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{where}unknown key {loc[-1]!r}"
    if kind == "union_tag_not_found":
        return f"{where}missing 'type' (float, int or categorical)"
    if kind == "union_tag_invalid":
        return f"{where}type must be float, int or categorical, got {first['input'].get('type')!r}"
    if kind == "missing":
        return f"{where}missing {loc[-1]!r}"
    error = first.get("ctx", {}).get("error")
    return f"{where}{error}" if error is not None else f"{where}{loc[-1] if loc else 'space'}: {first['msg']}"


def load_space(spec: str | Path) -> SearchSpace:
    """A space from a YAML file, or from ``file.py:function`` (a define-by-run function of a trial).

    Raises:
        ValueError: a missing or malformed file, naming it and the parameter at fault.
    """
    text = str(spec)
    file, sep, function = text.rpartition(":")
    if not (sep and file.endswith(".py")):
        file, sep = text, ""
    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"{file}: search space file not found")
    if sep:
        return FunctionSpace(_load_function(path, function), source=text)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise ConfigError(f"{file}: not valid YAML" + (f" at line {mark.line + 1}" if mark else "")) from None
    return parse_space(data, source=file)


def _load_function(path: Path, name: str) -> Callable[[optuna.Trial], Mapping[str, Any]]:
    spec = importlib.util.spec_from_file_location(f"evo_search_space_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"{path}: has no function {name!r} (expected file.py:function)")
    return fn  # type: ignore[no-any-return]

