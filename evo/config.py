"""The run configuration: composed, validated models loaded from YAML with dotted overrides.

Each component owns its section and its defaults (the task, plasticity, backend
and operator modules); this module only composes them, applies ``a.b=value``
overrides and turns validation failures into one readable line.

Example:
    >>> cfg = load_config(None, ["evolution.generations=3", "task.dataset=iris"])
    >>> cfg.evolution.generations, cfg.task.dataset
    (3, 'iris')
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from evo.backends.config import BackendConfig
from evo.errors import ConfigError, DamagedRunError, EvoError
from evo.hyper import HyperConfig
from evo.paths import RUN_CONFIG
from evo.plasticity import PlasticityConfig
from evo.task_kinds import TaskConfig

__all__ = [
    "ConfigError",
    "EvoConfig",
    "EvolutionConfig",
    "HalvingConfig",
    "InitConfig",
    "apply_overrides",
    "config_diff",
    "dump_config",
    "load_config",
    "load_run_config",
    "parse_overrides",
]


class InitConfig(BaseModel):
    """How the first generation is built."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["minimal", "random"] = Field(
        "minimal",
        description="minimal: every individual starts from `hidden`/`channels` (NEAT's 'start minimal'); "
        "random: depth and widths sampled within the bounds below.",
    )
    hidden: list[int] = Field(
        default_factory=lambda: [32],
        description="Hidden Linear widths of the starting network; [] with no `channels`: no hidden layer at all "
        "(the smallest network; over a flat input the `deepen` operator grows the first).",
    )
    channels: list[int] = Field(
        default_factory=list,
        description="Conv channels of the starting network: Conv2d blocks for an image input (C, H, W), Conv1d "
        "for a signal (C, L) or a flat input (L,) read as one channel.",
    )
    kernel_size: int = Field(3, ge=1, description="Conv kernel size (odd).")
    pool: int = Field(2, ge=1, description="Max-pool factor after each conv block.")
    norm: Literal["batch", "layer"] | None = Field(
        None, description="Normalisation of every hidden layer of the starting network (batch: BatchNorm; layer: "
        "GroupNorm with one group, i.e. LayerNorm); null = none (the add_norm operator can add them later)."
    )
    gap: bool = Field(
        False, description="Global average pooling of the last conv block's output before the first Linear layer "
        "instead of flattening it (needs `channels`)."
    )
    activation: str = Field("relu", description="Activation of the hidden layers.")
    min_layers: int = Field(1, ge=0, description="random: fewest hidden Linear layers.")
    max_layers: int = Field(3, ge=0, description="random: most hidden Linear layers.")
    min_width: int = Field(8, ge=1, description="random: narrowest hidden layer.")
    max_width: int = Field(128, ge=1, description="random: widest hidden layer.")

    @model_validator(mode="after")
    def _check(self) -> InitConfig:
        if self.gap and not self.channels:
            raise ValueError("gap needs conv layers: set channels")
        return self


class HalvingConfig(BaseModel):
    """Successive halving inside a generation (Jamieson & Talwalkar 2016; Li et al. 2017, Hyperband)."""

    model_config = ConfigDict(extra="forbid")

    rungs: int = Field(
        1, ge=1, description="Training rounds per generation; 1 = off (every child trains eval_steps steps). With r "
        "rungs, a child stopped at rung k has trained round(S / eta^(r-1-k)) steps in all, S being eval_steps or, "
        "when it is 0, the task's default (supervised: plasticity.epochs passes over the training split).",
    )
    eta: int = Field(3, ge=2, description="After each rung the best 1/eta of the children (at least one) train on, "
                     "from their trained weights; the rest stop.")

    @property
    def min_steps(self) -> int:
        """The shortest lifetime the rungs can split: the first rung must train at least one step."""
        return self.eta ** (self.rungs - 1)

    def steps(self, eval_steps: int) -> list[int]:
        """Cumulative training steps at the end of each rung; the last is ``eval_steps``."""
        return [max(1, round(eval_steps / self.eta ** (self.rungs - 1 - k))) for k in range(self.rungs)]


class PrefilterConfig(BaseModel):
    """LEMONADE's cheap pre-filter of children (Elsken, Metzen & Hutter 2019, Algorithm 1)."""

    model_config = ConfigDict(extra="forbid")

    factor: int = Field(
        1, ge=1, description="Each generation makes factor × the children it trains (operators only: no "
        "training) and keeps as many as it needs, drawn without replacement with probability inversely "
        "proportional to a kernel density estimate of the population's log(parameters) at each candidate, so "
        "children in sparsely covered size ranges are trained; 1 = off.",
    )


class EvolutionConfig(BaseModel):
    """The generational loop: population, selection, inheritance, stopping."""

    model_config = ConfigDict(extra="forbid")

    generations: int = Field(10, ge=0, description="Generations after the initial population (stopping "
                             "criterion); 0 evaluates the initial population only.")
    population_size: int = Field(8, ge=2, description="Individuals kept alive.")
    children: int = Field(0, ge=0, description="Children per generation; 0 = population_size.")
    selection: Literal["auto", "aging", "tournament", "nsga2", "lemonade"] = Field(
        "auto",
        description="aging: regularized evolution (Real et al. 2019) — the oldest dies; tournament: with elitism; "
        "nsga2: Pareto ranking + crowding (Deb et al. 2002); lemonade: nsga2 survivors, parents from the Pareto "
        "front sampled inversely to the density of their log(parameters) (Elsken et al. 2019); auto: aging for "
        "one objective, nsga2 for several.",
    )
    tournament_size: int = Field(3, ge=1, description="Individuals sampled per parent choice (aging's S, tournament's k).")
    elitism: int = Field(1, ge=0, description="tournament: best individuals always kept.")
    mutations: int = Field(1, ge=1, description="Operators applied to make one child.")
    lamarckian: bool = Field(
        True,
        description="Children start from their parents' trained weights (Lamarckian inheritance); "
        "false: the child's architecture is re-initialised at random (Darwinian, for comparison).",
    )
    reevaluate: int = Field(
        0, ge=0, description="Each generation, measure the best N of the population again on fresh episodes "
        "(seeds from (seed, id, generation); no learning), their fitness becoming the mean over every episode seen, "
        "so selection stops rewarding lucky episodes; target_fitness then counts only such confirmed fitness. For noisy fitness: control tasks (or a custom task honouring "
        "Job.learn); 0 = off.")
    seed: int = Field(0, description="Run seed; every individual's seed derives from (seed, id).")
    eval_steps: int = Field(0, ge=0, description="Training steps per evaluation; 0 = the task's default (epochs).")
    max_steps: int = Field(0, ge=0, description="Stop once this many training/environment steps are used; 0 = no limit.")
    max_samples: int = Field(0, ge=0, description="Stop once this many training sample-steps are used; 0 = no limit.")
    max_seconds: float = Field(0.0, ge=0, description="Stop after this much wall time; 0 = no limit.")
    target_fitness: float | None = Field(None, description="Stop once the best primary objective reaches this value.")
    test_top_k: int = Field(3, ge=0, description="Best individuals whose test metrics are measured at the end.")
    init: InitConfig = Field(default_factory=InitConfig, description="The initial population.")
    hyper: HyperConfig = Field(default_factory=HyperConfig, description="Training hyperparameters as genes (PBT).")
    halving: HalvingConfig = Field(default_factory=HalvingConfig, description="Successive halving of each generation.")
    prefilter: PrefilterConfig = Field(default_factory=PrefilterConfig,
                                       description="Many cheap children, the sparse sizes' ones trained.")

    @model_validator(mode="after")
    def _halving_has_steps(self) -> EvolutionConfig:
        halving = self.halving
        if 0 < self.eval_steps < halving.min_steps:  # eval_steps 0: the task's default, checked when known
            raise ValueError(f"halving: {halving.rungs} rungs with eta {halving.eta} need eval_steps >= "
                             f"{halving.min_steps} (got {self.eval_steps})")
        return self


OperatorSpec = dict[str, Any]


def check_run_name(name: str) -> str:
    """``name`` if it can name a run directory under runs/: one plain folder name, so a run cannot land (and
    write its Optuna mirror) outside the runs directory."""
    if not name.strip() or name in (".", "..") or os.path.basename(name) != name or "\\" in name:
        raise ConfigError(f"must be a plain folder name, without '/' or '..' (got {name!r})")
    return name


class EvoConfig(BaseModel):
    """A whole run: ``task``, ``evolution``, ``plasticity``, ``operators``, ``backend``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Run name (directory under runs/); default: config name + time.")
    task: TaskConfig = Field(
        default_factory=lambda: TypeAdapter(TaskConfig).validate_python({"kind": "supervised"}),
        description="The problem, chosen by `kind`: supervised (a dataset), control (a gymnasium environment), xor, "
        "continual (a stream of tasks) or custom (a task class from your own Python file).",
    )
    evolution: EvolutionConfig = Field(default_factory=EvolutionConfig, description="The evolutionary loop.")
    plasticity: PlasticityConfig = Field(default_factory=PlasticityConfig, description="Training within a lifetime.")
    operators: list[OperatorSpec] | None = Field(
        None,
        description="Operators with their probabilities, e.g. [{op: widen, prob: 0.3, k: 8, init: split}]; "
        "null = defaults for the task kind (see `evo ops`).",
    )
    backend: BackendConfig = Field(default_factory=BackendConfig, description="Where evaluations run.")

    @model_validator(mode="after")
    def _trained_task(self) -> EvoConfig:
        """Hyperparameter genes and halving need a task that trains with the plasticity section and continues
        from the genome it gets (a custom task is trusted to)."""
        evo = self.evolution
        if (evo.hyper.genes or evo.halving.rungs > 1) and self.task.kind not in ("supervised", "custom"):
            field = "hyper.genes" if evo.hyper.genes else "halving.rungs"
            raise ValueError(f"evolution.{field}: needs a supervised or custom task, not {self.task.kind!r}")
        return self

    @model_validator(mode="after")
    def _check_distill(self) -> EvoConfig:
        """Distillation needs a parent whose trained function the child started from, and a task that trains
        with the plastic trainer."""
        if self.plasticity.distill.alpha > 0:
            if self.task.kind != "supervised":
                raise ValueError(f"plasticity.distill: needs a supervised task, not {self.task.kind!r}")
            if not self.evolution.lamarckian:
                raise ValueError("plasticity.distill: needs evolution.lamarckian: true (a re-initialised child "
                                 "has no parent function to relearn)")
        return self

    @model_validator(mode="after")
    def _check_carry_optimizer(self) -> EvoConfig:
        """Carried optimiser state belongs to inherited weights, trained by the plastic trainer."""
        if self.plasticity.carry_optimizer:
            if self.task.kind not in ("supervised", "custom"):
                raise ValueError("plasticity.carry_optimizer: needs a supervised or custom task, "
                                 f"not {self.task.kind!r}")
            if not self.evolution.lamarckian:
                raise ValueError("plasticity.carry_optimizer: needs evolution.lamarckian: true (a re-initialised "
                                 "child has no optimiser state to inherit)")
        return self

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str | None) -> str | None:
        return None if name is None else check_run_name(name)

    @model_validator(mode="after")
    def _check_reevaluate(self) -> EvoConfig:
        if self.evolution.reevaluate and self.task.kind not in ("control", "custom"):
            raise ValueError(f"evolution.reevaluate needs a noisy task measured without learning (control, custom), "
                             f"not {self.task.kind}")
        return self

    @field_validator("operators")
    @classmethod
    def _check_operators(cls, specs: list[OperatorSpec] | None) -> list[OperatorSpec] | None:
        if specs is not None:
            from evo.operators.registry import make_operator

            for spec in specs:
                make_operator({k: v for k, v in spec.items() if k != "prob"})
                prob = spec.get("prob", 1.0)
                if not isinstance(prob, int | float) or prob < 0:
                    raise ValueError(f"operator {spec.get('op')!r}: prob must be a number >= 0, got {prob!r}")
        return specs


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=3", "c=[1, 2]"]`` → ``{"a.b": 3, "c": [1, 2]}``; values are parsed as YAML scalars/lists."""
    values: dict[str, Any] = {}
    for item in items:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"override {item!r} must look like section.field=value")
        try:
            values[path.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({err.problem})") from err
    return values


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def _validate(data: Mapping[str, Any], source: str) -> EvoConfig:
    try:
        return EvoConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_describe(err)}") from None


def _describe(err: ValidationError) -> str:
    """The first validation problem as 'field.path: what is wrong (what is allowed)'."""
    first = err.errors()[0]
    loc = ".".join(str(part) for part in first["loc"] if not str(part).startswith(("function-", "tagged-union")))
    if first["type"] == "extra_forbidden":
        parts = [str(part) for part in first["loc"]]
        close = difflib.get_close_matches(parts[-1], [n for n in _field_names(parts[:-1]) if n != parts[-1]], n=1)
        return f"{loc}: unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    msg = first["msg"]
    if first.get("ctx", {}).get("error") is not None:
        msg = str(first["ctx"]["error"])
    value = first.get("input")
    if loc and "input" in first and not isinstance(value, Mapping):  # a section's own check: the section says it
        return f"{loc}: {msg} (got {value!r})"
    return f"{loc or 'config'}: {msg}"


def _field_names(path: Sequence[str]) -> list[str]:
    """The fields allowed at ``path`` (a validation error's location): every model that can stand there."""
    models: list[type[BaseModel]] = [EvoConfig]
    for part in path:
        inner = [_models(m.model_fields[part].annotation) for m in models if part in m.model_fields]
        if inner:
            models = [m for found in inner for m in found]
        else:  # a union's tag (task.supervised...): the member whose kind it names
            models = [m for m in models if "kind" in m.model_fields and m.model_fields["kind"].default == part] or models
    return sorted({name for m in models for name in m.model_fields})


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation names, through unions, ``Annotated`` and containers."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def load_config(path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> EvoConfig:
    """Read a YAML config (or only defaults when ``path`` is None), apply dotted overrides, validate.

    Raises:
        ConfigError: one line naming the file, the field and what is wrong.
    """
    source = str(path) if path is not None else "defaults"
    data = _read_yaml(Path(path), ConfigError) if path is not None else {}
    for key, value in parse_overrides(overrides).items():
        _set_path(data, key, value)
    return _validate(data, source + (" with overrides" if overrides else ""))


def load_run_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> EvoConfig:
    """A run directory's ``config.yaml`` (as :func:`dump_config` wrote it), with dotted overrides.

    Stricter than :func:`load_config`: the file must hold every section, since a section missing from
    a file cut short would otherwise come back as defaults and continue the run as another one.

    Raises:
        DamagedRunError: the file is missing, empty, cut short or invalid (one line naming it).
        ConfigError: an override is invalid.
    """
    file = Path(path)
    data = _read_yaml(file, DamagedRunError)
    missing = [name for name in EvoConfig.model_fields if name not in data]
    if missing or not file.read_bytes().endswith(b"\n"):
        what = f"the {missing[0]!r} section is missing" if missing else "its last line is cut"
        raise DamagedRunError(f"{file}: incomplete run config ({what}); the run directory is damaged")
    try:
        config = _validate(data, str(file))
    except ConfigError as err:
        raise DamagedRunError(f"{err} (the run directory is damaged)") from None
    return load_config(file, overrides) if overrides else config


def _read_yaml(file: Path, error: type[EvoError]) -> dict[str, Any]:
    """The top-level mapping of a YAML file; ``error`` (naming the file) when there is none."""
    if file.is_dir():
        hint = f"; continue that run with `evo resume {file}`" if (file / RUN_CONFIG).is_file() else ""
        raise error(f"{file}: a directory, not a config file{hint}")
    if not file.is_file():
        raise error(f"{file}: config file not found")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{file}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise error(f"{file}: the top level must be a mapping of sections")
    return data


def apply_overrides(cfg: EvoConfig, values: Mapping[str, Any]) -> EvoConfig:
    """A copy of ``cfg`` with dotted-path values set (e.g. from an Optuna trial), re-validated."""
    data = cfg.model_dump(mode="json")
    for key, value in values.items():
        _set_path(data, key, value)
    return _validate(data, "overrides")


def config_diff(old: EvoConfig, new: EvoConfig) -> list[str]:
    """Dotted paths whose values differ between two configs."""
    def flat(d: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(d, dict):
            out: dict[str, Any] = {}
            for k, v in d.items():
                out.update(flat(v, f"{prefix}{k}."))
            return out
        return {prefix[:-1]: d}

    a, b = flat(old.model_dump(mode="json")), flat(new.model_dump(mode="json"))
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def dump_config(cfg: EvoConfig) -> str:
    """The resolved config as YAML (every default spelled out), as stored in a run directory."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
