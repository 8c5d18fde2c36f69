"""The Optuna mirror of a run: every evaluated individual becomes a trial, so optuna-dashboard can browse a run.

One study per run (``run:<run name>``), one trial per evaluated individual, added with
``study.add_trial``-style storage calls in the driver process (workers never touch the storage):

- params: the architecture summary (``depth``, ``width.<layer>``, ``num_params``, ``skips``), how many
  times each operator made it (``op.<name>``), its hyperparameter genes (``hparams.<name>``, see
  :mod:`evo.hyper`), and the plasticity settings that differ from the defaults (``plasticity.*``);
- values: the task's objectives (a failed individual is a FAIL trial);
- user attributes: generation, individual id, parents, lineage, operators, architecture, run dir, metrics;
- an artifact: the architecture diagram (SVG, changes against its parent highlighted).

Example:
    >>> from evo.tasks import Objective
    >>> mirror = OptunaMirror("sqlite:///:memory:", "demo", [Objective("fitness")])  # doctest: +SKIP
    >>> run_evolution(config, reporters=[mirror])  # doctest: +SKIP
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import StorageInternalError
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from evo.errors import StorageError
from evo.genome import Genome
from evo.hyper import GENES
from evo.records import Individual, Reporter
from evo.tasks import Objective

__all__ = ["OptunaMirror", "architecture_params", "changed_settings", "run_study_name", "setting_params"]

#: where architecture diagrams go unless told otherwise (beside the default SQLite storage).
DEFAULT_ARTIFACTS = Path("runs/artifacts")


def run_study_name(run_name: str) -> str:
    """The mirror study of the run called ``run_name``."""
    return f"run:{run_name}"


def _param(value: Any) -> tuple[Any, BaseDistribution]:
    """A value with a distribution that holds it; numbers keep their kind so the dashboard can plot them."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value, CategoricalDistribution([value])
    if isinstance(value, int):
        return value, IntDistribution(min(value, 0), max(value, 1))
    if isinstance(value, float) and math.isfinite(value):
        return value, FloatDistribution(min(value, 0.0), max(value, 1.0))
    return str(value), CategoricalDistribution([str(value)])


def _hparam(name: str, value: Any) -> tuple[Any, BaseDistribution]:
    """A hyperparameter gene's value; a choice gene with all its choices (a study's trials must agree on them)."""
    gene = GENES.get(name)
    return (value, CategoricalDistribution(gene.choices)) if gene is not None and gene.choices else _param(value)


def architecture_params(genome: Genome, operators: Sequence[str]) -> dict[str, Any]:
    """The architecture summary and operator counts an individual is mirrored with."""
    params: dict[str, Any] = {
        "depth": len(genome.hidden_layers),
        "num_params": genome.num_params(),
        "skips": len(genome.skips),
    }
    for i in genome.hidden_layers:
        params[f"width.{i}"] = genome.layers[i].width
    for description in operators:
        name = "op." + description.partition("(")[0]
        params[name] = params.get(name, 0) + 1
    return params


def changed_settings(model: BaseModel, prefix: str) -> dict[str, Any]:
    """``setting_params`` of the fields of a config section that differ from its defaults.

    Those are the settings a user or a search chose; the rest would only add constant columns
    (and storage writes) to every mirrored trial.
    """
    current = setting_params(model.model_dump(mode="json"), prefix)
    default = setting_params(type(model)().model_dump(mode="json"), prefix)
    return {name: value for name, value in current.items() if default.get(name, object()) != value}


def setting_params(settings: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Scalar leaves of a nested settings mapping as ``prefix.a.b`` params (lists as text)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            out.update(setting_params(value, f"{prefix}.{key}"))
        else:
            out[f"{prefix}.{key}"] = value if isinstance(value, bool | int | float | str) or value is None else str(value)
    return out


class OptunaMirror(Reporter):
    """A :class:`Reporter` that adds one trial per evaluated individual to the run's study.

    Args:
        storage: an Optuna storage or its URL (see :func:`evo.search.study.open_storage`).
        run_name: the run's name; the study is ``run:<run_name>``.
        objectives: the task's objectives, in order (they set the study's directions).
        settings: flat ``name → value`` params every trial carries (e.g. :func:`setting_params` of the plasticity config).
        run_dir: recorded on each trial, to find the weights.
        artifacts: folder of the artifact store for architecture diagrams; None = no diagrams.
    """

    def __init__(
        self,
        storage: str | BaseStorage,
        run_name: str,
        objectives: Sequence[Objective],
        settings: Mapping[str, Any] | None = None,
        run_dir: str | Path | None = None,
        artifacts: str | Path | None = DEFAULT_ARTIFACTS,
    ) -> None:
        self.where = storage if isinstance(storage, str) else type(storage).__name__
        if isinstance(storage, str):
            from evo.search.study import open_storage

            storage = open_storage(storage)
        self.storage = storage
        self.objectives = list(objectives)
        self.study = optuna.create_study(storage=storage, study_name=run_study_name(run_name), load_if_exists=True,
                                         directions=[o.direction.value for o in self.objectives])
        self.settings = dict(settings or {})
        self.run_dir = str(run_dir) if run_dir is not None else None
        self.artifact_store = None
        if artifacts is not None:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            self.artifact_store = FileSystemArtifactStore(str(artifacts))
        self._genomes: dict[int, Genome] = {}
        self._lineage: dict[int, list[int]] = {}
        trials = self.study.get_trials(deepcopy=False)
        self._mirrored = {t.user_attrs.get("individual_id") for t in trials if t.state.is_finished()}
        # trials a killed process opened but never finished: finished when their individual is redone
        self._unfinished = {t.user_attrs.get("individual_id"): t._trial_id
                            for t in trials if t.state == TrialState.RUNNING}

    def on_evaluated(self, individual: Individual) -> None:
        if individual.id in self._mirrored:
            return  # a resumed run redoes the generation that was in flight
        try:
            self._mirror(individual)
        except (StorageInternalError, SQLAlchemyError) as err:  # e.g. SQLite's "database or disk is full"
            cause = err.__cause__ if isinstance(err.__cause__, SQLAlchemyError) else err
            reason = getattr(cause, "orig", None) or cause
            raise StorageError(f"{self.where}: cannot write the Optuna mirror ({str(reason).splitlines()[0]}); "
                               "the run stopped at its last checkpoint (resume it once fixed, or with --no-mirror)"
                               ) from err

    def _mirror(self, individual: Individual) -> None:
        parent_id = individual.parents[0] if individual.parents else None
        ancestors = [*self._lineage.get(parent_id, []), parent_id] if parent_id is not None else []
        self._lineage[individual.id] = ancestors  # oldest first, through first parents
        parent = self._genomes.get(parent_id) if parent_id is not None else None
        self._genomes[individual.id] = individual.genome.replace(weights={})
        # Open the trial, attach the diagram, then finish it: Optuna accepts artifacts only on unfinished trials.
        trial_id = self._unfinished.pop(individual.id, None)
        if trial_id is None:
            trial_id = self._open_trial(individual)
        if self.artifact_store is not None:
            self._upload_diagram(trial_id, individual, parent)
        values = self._values(individual)
        self.storage.set_trial_state_values(trial_id, TrialState.COMPLETE if values is not None else TrialState.FAIL, values)
        self._mirrored.add(individual.id)

    def _open_trial(self, individual: Individual) -> int:
        params = {**architecture_params(individual.genome, individual.operators), **self.settings}
        pairs = {name: _param(value) for name, value in params.items()}
        pairs.update({f"hparams.{name}": _hparam(name, value) for name, value in individual.genome.hparams.items()})
        frozen = optuna.trial.create_trial(
            state=TrialState.RUNNING,
            params={name: value for name, (value, _) in pairs.items()},
            distributions={name: dist for name, (_, dist) in pairs.items()},
            user_attrs=self._attrs(individual),
        )
        return self.storage.create_new_trial(self.study._study_id, template_trial=frozen)

    def _values(self, individual: Individual) -> list[float] | None:
        """The objectives in order, or None when the individual failed (or any value is not finite)."""
        ev = individual.evaluation
        if ev is None or not ev.ok:
            return None
        values = [ev.objectives.get(o.name, math.nan) for o in self.objectives]
        return values if all(math.isfinite(v) for v in values) else None

    def _attrs(self, individual: Individual) -> dict[str, Any]:
        ev = individual.evaluation
        attrs: dict[str, Any] = {
            "individual_id": individual.id,
            "generation": individual.generation,
            "parents": list(individual.parents),
            "lineage": self._lineage[individual.id],
            "operators": list(individual.operators),
            "architecture": str(individual.genome),
        }
        if self.run_dir is not None:
            attrs["run_dir"] = self.run_dir
        if ev is not None:
            attrs["metrics"] = {k: v for k, v in ev.metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
            if ev.error is not None:
                attrs["error"] = ev.error
        return attrs

    def _upload_diagram(self, trial_id: int, individual: Individual, parent: Genome | None) -> None:
        from evo.viz import architecture_svg

        assert self.artifact_store is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"individual_{individual.id}.svg"
            path.write_text(architecture_svg(individual.genome, parent))
            upload_artifact(artifact_store=self.artifact_store, file_path=str(path), mimetype="image/svg+xml",
                            study_or_trial=self.storage.get_trial(trial_id), storage=self.storage)
