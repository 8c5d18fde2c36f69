"""The Optuna mirror of a run: every evaluated individual becomes a trial, so optuna-dashboard can browse a run.

One study per run (``run:<run name>``), one trial per evaluated individual, written by the driver process
(workers never touch the storage) at the end of a generation, at most every 2 s (:data:`WRITE_EVERY_S`: fast
generations are written several at a time), in one transaction (:func:`evo.mirror.bulk.add_trials`) on a thread
of its own while the next generation is evaluated:

- params: the architecture summary (``depth``, ``width.<layer>``, ``num_params``, ``skips``), how many
  times each operator made it (``op.<name>``), its hyperparameter genes (``hparams.<name>``, see
  :mod:`evo.hyper`), and the plasticity settings that differ from the defaults (``plasticity.*``);
- values: the task's objectives (a failed individual is a FAIL trial);
- user attributes: generation, individual id, parents, lineage, operators, architecture, run dir, metrics;
- an artifact, for the individuals that were the run's best or on its Pareto front when their generation
  ended: the architecture diagram (SVG, changes against its parent highlighted). Drawing every
  individual would cost more than evaluating a small one; ``evo show --lineage`` draws any other.

Example:
    >>> from evo.types import Objective
    >>> mirror = OptunaMirror("sqlite:///:memory:", "demo", [Objective("fitness")])  # doctest: +SKIP
    >>> Runner.new(config).run([mirror])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import ArtifactMeta, FileSystemArtifactStore
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import StorageInternalError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from evo.errors import StorageError
from evo.genome import Genome
from evo.hyper import GENES
from evo.mirror.bulk import add_trials
from evo.mirror.storage import open_storage
from evo.paths import DEFAULT_ARTIFACTS
from evo.records import GenerationRecord, Individual, Reporter
from evo.types import Objective

#: the mirror hands its pending individuals to the writer at most this often (seconds), and at the run's end
WRITE_EVERY_S = 2.0

__all__ = ["OptunaMirror", "architecture_params", "changed_settings", "run_study_name", "setting_params"]


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
        storage: an Optuna storage or its URL (see :func:`evo.mirror.open_storage`).
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
        self._pending: list[Individual] = []
        self._drawn: set[int] = set()  # pending individuals that get a diagram (best or on the front at their end)
        self._last_write = -math.inf
        # Writes run beside the evaluations (sqlite3 waits for the disk without the GIL); one generation at a time.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evo-mirror")
        self._written: Future[None] | None = None
        trials = self.study.get_trials(deepcopy=False)
        self._mirrored = {t.user_attrs.get("individual_id") for t in trials if t.state.is_finished()}
        # trials an earlier evo left open when its process was killed: finished when their individual is redone
        self._unfinished = {t.user_attrs.get("individual_id"): t._trial_id
                            for t in trials if t.state == TrialState.RUNNING}

    def on_evaluated(self, individual: Individual) -> None:
        if individual.id in self._mirrored:
            return  # a resumed run redoes the generation that was in flight
        self._remember_lineage(individual)
        self._genomes[individual.id] = individual.genome.replace(weights={})
        self._pending.append(individual)

    def on_restored(self, individuals: Sequence[Individual]) -> None:
        """Mirror what a killed process checkpointed but never wrote (the mirror writes after the checkpoint)."""
        for ind in sorted(individuals, key=lambda ind: ind.id):  # parents first, so lineages are whole
            if ind.evaluation is not None and ind.id not in self._mirrored:
                self.on_evaluated(ind)
            else:
                self._remember_lineage(ind)
        if self._pending:
            self._submit()

    def _remember_lineage(self, individual: Individual) -> None:
        """Its ancestors, oldest first, through first parents (its parent's must be known already)."""
        parent_id = individual.parents[0] if individual.parents else None
        ancestors = [*self._lineage.get(parent_id, []), parent_id] if parent_id is not None else []
        self._lineage[individual.id] = ancestors

    def on_generation_end(self, record: GenerationRecord) -> None:
        """Mark the generation's best and front for diagrams; hand what is pending to the writer thread, at most
        every :data:`WRITE_EVERY_S` seconds (one transaction per generation of a 0.1 s XOR generation was most of
        the mirror's cost)."""
        self._drawn.update({record.best_id, *record.extra.get("pareto", ())})
        if time.monotonic() - self._last_write >= WRITE_EVERY_S:
            self._submit()

    def on_run_end(self) -> None:
        """Write what is left and wait for the writer."""
        self.flush()

    def flush(self) -> None:
        """Write every individual evaluated so far and wait until all of them are in the storage.

        Raises:
            StorageError: the write failed (e.g. SQLite's "database or disk is full"); one line naming the storage.
        """
        if self._pending:
            self._submit()
        self._wait()

    def _wait(self) -> None:
        """Wait for the write in flight, if any (see :meth:`flush` for its error)."""
        written, self._written = self._written, None
        if written is None:
            return
        try:
            written.result()
        except (StorageInternalError, SQLAlchemyError) as err:
            cause = err.__cause__ if isinstance(err.__cause__, SQLAlchemyError) else err
            reason = getattr(cause, "orig", None) or cause
            raise StorageError(f"{self.where}: cannot write the Optuna mirror ({str(reason).splitlines()[0]}); "
                               "the run stopped at its last checkpoint (resume it once fixed, or with --no-mirror)"
                               ) from err

    def _submit(self) -> None:
        batch, self._pending = self._pending, []
        drawn, self._drawn = self._drawn, set()
        self._mirrored.update(ind.id for ind in batch)
        self._wait()  # at most one write in flight: the next one waits only if the writer falls behind
        self._last_write = time.monotonic()
        self._written = self._writer.submit(self._write, batch, drawn)

    def _write(self, batch: list[Individual], drawn: set[int]) -> None:
        leftover = {ind.id: self._unfinished.pop(ind.id) for ind in batch if ind.id in self._unfinished}
        for ind in batch:
            if ind.id in leftover:  # a killed process of an earlier evo left its trial open: finish it
                values = self._values(ind)
                self.storage.set_trial_state_values(leftover[ind.id], TrialState.COMPLETE if values is not None
                                                    else TrialState.FAIL, values)
        add_trials(self.storage, self.study._study_id,
                   [self._trial(ind, ind.id in drawn) for ind in batch if ind.id not in leftover])

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
