"""What a mirrored individual becomes in the storage, and the writer that puts it there.

A :class:`TrialWriter` lives where the mirror's writes run — in the mirror's own process when it was given a
storage URL, on a thread of the driver when it was given a storage (see :class:`evo.mirror.OptunaMirror`) — and
holds all the mirror's Optuna state: the run's study, which individuals the storage holds already, the lineages
and the weight-free genomes that diagrams compare against their parent's.

Example:
    >>> from evo.mirror.storage import open_storage
    >>> from evo.types import Objective
    >>> writer = TrialWriter(open_storage("sqlite:///:memory:"), "memory", "run:demo", [Objective("fitness")])
    >>> writer.study.study_name
    'run:demo'
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import ArtifactMeta, FileSystemArtifactStore
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import StorageInternalError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from evo.errors import StorageError
from evo.genome import Genome
from evo.hyper import GENES
from evo.mirror.bulk import add_trials
from evo.records import Individual
from evo.types import Objective

__all__ = ["TrialWriter", "architecture_params"]


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


class TrialWriter:
    """Creates (or finds) the run's study, then writes batches of individuals into it, in the order given.

    Args:
        storage: the opened storage.
        where: how error messages name the storage (its URL).
        study_name: the run's study.
        objectives: the task's objectives, in order (they set the study's directions).
        settings: flat ``name → value`` params every trial carries.
        run_dir: recorded on each trial, to find the weights.
        artifacts: folder of the artifact store for architecture diagrams; None = no diagrams.

    Raises:
        StorageError: the storage refused to create or read the study (one line naming it).
    """

    def __init__(self, storage: BaseStorage, where: str, study_name: str, objectives: Sequence[Objective],
                 settings: Mapping[str, Any] | None = None, run_dir: str | None = None,
                 artifacts: str | Path | None = None) -> None:
        self.storage, self.where = storage, where
        self.objectives = list(objectives)
        self.settings = dict(settings or {})
        self.run_dir = run_dir
        with self._errors():
            self.study = optuna.create_study(storage=storage, study_name=study_name, load_if_exists=True,
                                             directions=[o.direction.value for o in self.objectives])
            trials = self.study.get_trials(deepcopy=False)
        self.artifact_store = None
        if artifacts is not None:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            self.artifact_store = FileSystemArtifactStore(str(artifacts))
        self._genomes: dict[int, Genome] = {}
        self._lineage: dict[int, list[int]] = {}
        self._mirrored = {t.user_attrs.get("individual_id") for t in trials if t.state.is_finished()}
        # trials an earlier evo left open when its process was killed: finished when their individual is redone
        self._unfinished = {t.user_attrs.get("individual_id"): t._trial_id
                            for t in trials if t.state == TrialState.RUNNING}

    def write(self, batch: Sequence[Individual], drawn: set[int]) -> None:
        """Add the evaluated individuals of ``batch`` the storage does not hold yet, in one transaction, with a
        diagram for those in ``drawn``; the others (a resumed run's, already mirrored) only lend their lineage.
        Parents come before their children.

        Raises:
            StorageError: the write failed (e.g. SQLite's "database or disk is full"); one line naming the storage.
        """
        new = []
        for ind in batch:
            self._remember(ind)
            if ind.evaluation is not None and ind.id not in self._mirrored:
                self._mirrored.add(ind.id)
                new.append(ind)
        leftover = {ind.id: self._unfinished.pop(ind.id) for ind in new if ind.id in self._unfinished}
        with self._errors():
            for ind in new:
                if ind.id in leftover:  # a killed process of an earlier evo left its trial open: finish it
                    values = self._values(ind)
                    self.storage.set_trial_state_values(leftover[ind.id], TrialState.COMPLETE if values is not None
                                                        else TrialState.FAIL, values)
            add_trials(self.storage, self.study._study_id,
                       [self._trial(ind, ind.id in drawn) for ind in new if ind.id not in leftover])

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The storage's errors as one :class:`StorageError` line (a message crosses back from the mirror's
        process where a database driver's exception might not)."""
        try:
            yield
        except (StorageInternalError, SQLAlchemyError) as err:
            cause = err.__cause__ if isinstance(err.__cause__, SQLAlchemyError) else err
            reason = getattr(cause, "orig", None) or cause
            raise StorageError(f"{self.where}: cannot write the Optuna mirror ({str(reason).splitlines()[0]}); "
                               "the run stopped at its last checkpoint (resume it once fixed, or with --no-mirror)"
                               ) from err

    def _remember(self, individual: Individual) -> None:
        """Its genome (for its children's diagrams) and its ancestors, oldest first, through first parents (its
        parent's must be known already)."""
        self._genomes[individual.id] = individual.genome
        parent_id = individual.parents[0] if individual.parents else None
        ancestors = [*self._lineage.get(parent_id, []), parent_id] if parent_id is not None else []
        self._lineage[individual.id] = ancestors

    def _trial(self, individual: Individual, diagram: bool) -> FrozenTrial:
        params = {**architecture_params(individual.genome, individual.operators), **self.settings}
        pairs = {name: _param(value) for name, value in params.items()}
        pairs.update({f"hparams.{name}": _hparam(name, value) for name, value in individual.genome.hparams.items()})
        values = self._values(individual)
        return optuna.trial.create_trial(
            state=TrialState.COMPLETE if values is not None else TrialState.FAIL,
            values=values,
            params={name: value for name, (value, _) in pairs.items()},
            distributions={name: dist for name, (_, dist) in pairs.items()},
            user_attrs=self._attrs(individual),
            system_attrs=self._diagram(individual) if diagram and self.artifact_store is not None else {},
        )

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

    def _diagram(self, individual: Individual) -> dict[str, str]:
        """Store the architecture diagram; returns the trial system attribute that links it (as Optuna's
        ``upload_artifact`` writes it, which only an unfinished trial accepts)."""
        from evo.viz import architecture_svg

        assert self.artifact_store is not None
        parent = self._genomes.get(individual.parents[0]) if individual.parents else None
        meta = ArtifactMeta(artifact_id=str(uuid.uuid4()), filename=f"individual_{individual.id}.svg",
                            mimetype="image/svg+xml", encoding=None)
        self.artifact_store.write(meta.artifact_id, io.BytesIO(architecture_svg(individual.genome, parent).encode()))
        return {f"artifacts:{meta.artifact_id}": json.dumps(dataclasses.asdict(meta))}
