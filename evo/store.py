"""RunStore: the run directory, the only thing resume reads.

Layout of ``runs/<name>/``::

    config.yaml                 the resolved config (every default spelled out)
    preprocessing.json          what the task does to raw inputs and its class labels (exports carry it)
    events.jsonl                append-only log of what happened, one JSON object per line
    individuals.jsonl           append-only: every evaluated individual's record (architecture, parents,
                                operators, evaluation), one line each, written once when its generation ends
    checkpoints/gen_0003.json   state after generation 3: population, history, budget and how many
                                lines of individuals.jsonl it covers; the newest two are kept
    individuals/17.pt           individual 17's trained genome (architecture + weights), written once
    best.json, best.pt          the best individual so far (and test metrics at the end)

A checkpoint counts records instead of holding them, so writing one costs the same
in generation 1000 as in generation 1. Every other file but the events log
(appended, torn last lines skipped) is written atomically (temporary file +
rename); a generation's records are appended and synced before its checkpoint is
written. So a run killed at any moment — SIGKILL included — leaves complete
checkpoints behind, and at most records (or half a line) past the newest one's
count, which resume cuts off: it continues from the newest complete checkpoint and
redoes the generation that was in flight, which gives the same result because
every random choice derives from (run seed, individual id, generation).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from evo.errors import DamagedRunError
from evo.genome import Genome
from evo.preprocessing import PREPROCESSING_JSON, Preprocessing
from evo.records import GenerationRecord, Individual
from evo.tasks import Budget, Evaluation

__all__ = ["RunStore", "atomic_write_text", "individual_from_record", "individual_to_record"]

#: Checkpoints kept on disk; older ones hold nothing the newest does not (it carries the whole history).
KEEP_CHECKPOINTS = 2

#: The append-only log of individual records (see the module docstring).
INDIVIDUALS_LOG = "individuals.jsonl"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def individual_to_record(ind: Individual) -> dict[str, Any]:
    """An individual without its weights, as JSON-ready data."""
    ev = ind.evaluation
    return {
        "id": ind.id,
        "parents": list(ind.parents),
        "operators": list(ind.operators),
        "generation": ind.generation,
        "genome": ind.genome.to_dict(),
        "architecture": str(ind.genome),
        "params": ind.genome.num_params(),
        "evaluation": None
        if ev is None
        else {
            "objectives": ev.objectives,
            "metrics": ev.metrics,
            "budget_used": asdict(ev.budget_used),
            "error": ev.error,
        },
    }


def individual_from_record(record: dict[str, Any], genome: Genome | None = None) -> Individual:
    """Inverse of :func:`individual_to_record`; without ``genome`` the individual is a weightless skeleton."""
    skeleton = Genome.from_dict(record["genome"], weights={}) if genome is None else genome
    ev = record["evaluation"]
    evaluation = None
    if ev is not None:
        evaluation = Evaluation(
            record["id"],
            ev["objectives"],
            genome if ev["error"] is None else None,
            ev["metrics"],
            Budget(**ev["budget_used"]),
            ev["error"],
        )
    return Individual(
        record["id"], skeleton, tuple(record["parents"]), tuple(record["operators"]), record["generation"], evaluation
    )


def record_to_dict(record: GenerationRecord) -> dict[str, Any]:
    data = asdict(record)
    data["evaluated"], data["population"] = list(record.evaluated), list(record.population)
    return data


def record_from_dict(data: dict[str, Any]) -> GenerationRecord:
    data = dict(data)
    data["evaluated"], data["population"] = tuple(data["evaluated"]), tuple(data["population"])
    data["budget_used"] = Budget(**data["budget_used"])
    return GenerationRecord(**data)


class RunStore:
    """Reads and writes one run directory (see module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @classmethod
    def create(cls, root: str | os.PathLike[str], config_yaml: str) -> RunStore:
        """A new run directory; refuses to reuse one that already holds a run."""
        store = cls(root)
        if (store.root / "config.yaml").exists():
            raise ValueError(f"{store.root}: a run already exists here (use `evo resume {store.root}` or another --name)")
        store.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(store.root / "config.yaml", config_yaml)
        return store

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> RunStore:
        """An existing run directory."""
        store = cls(root)
        if not (store.root / "config.yaml").is_file():
            raise ValueError(f"{store.root}: not an evo run directory (no config.yaml)")
        return store

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    def log(self, event: str, **data: Any) -> None:
        """Append one event to events.jsonl (a torn last line is ignored by :meth:`events`)."""
        line = json.dumps({"time": time.time(), "event": event, **data}, default=str)
        with open(self.root / "events.jsonl", "a") as f:
            f.write(line + "\n")

    def events(self) -> list[dict[str, Any]]:
        path = self.root / "events.jsonl"
        out = []
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the process died mid-line
        return out

    # ------------------------------------------------------------- individuals
    def genome_path(self, individual_id: int) -> Path:
        return self.root / "individuals" / f"{individual_id}.pt"

    def save_genome(self, individual_id: int, genome: Genome) -> None:
        genome.save(self.genome_path(individual_id))

    def load_genome(self, individual_id: int) -> Genome:
        path = self.genome_path(individual_id)
        if not path.exists():
            raise ValueError(f"{self.root}: no saved weights for individual {individual_id}")
        return Genome.load(path)

    # ------------------------------------------------------------- individual records
    def append_records(self, records: list[dict[str, Any]]) -> None:
        """Append individual records to the log, synced to disk (a checkpoint counting them follows)."""
        with open(self.root / INDIVIDUALS_LOG, "a") as f:
            f.write("".join(json.dumps(r, allow_nan=True) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())

    def records(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """The individual records a checkpoint covers: the first ``individuals_logged`` lines of the log
        (or, in a checkpoint of a run made before the log existed, its own ``individuals`` list)."""
        if "individuals" in state:
            return list(state["individuals"])
        return [json.loads(line) for line in self._covered_lines(state)]

    def resume_records(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """:meth:`records`, leaving the log holding exactly them: what a generation that never reached its
        checkpoint appended (a crash) is cut off, to be appended again when that generation is redone; a
        checkpoint made before the log existed has its records written to it."""
        path = self.root / INDIVIDUALS_LOG
        if "individuals" in state:
            path.unlink(missing_ok=True)
            self.append_records(state["individuals"])
            return list(state["individuals"])
        lines = self._covered_lines(state)
        if path.exists():
            os.truncate(path, sum(len(line) for line in lines))
        return [json.loads(line) for line in lines]

    def _covered_lines(self, state: dict[str, Any]) -> list[bytes]:
        """The first ``individuals_logged`` complete lines of the log (a torn last line is not one); a log
        holding fewer is a damaged run."""
        count = state["individuals_logged"]
        path = self.root / INDIVIDUALS_LOG
        lines: list[bytes] = []
        if count and path.exists():
            with open(path, "rb") as f:
                for line in f:
                    if len(lines) == count or not line.endswith(b"\n"):
                        break
                    lines.append(line)
        if len(lines) < count:
            raise ValueError(f"{self.root}: {INDIVIDUALS_LOG} holds {len(lines)} complete records but the "
                             f"checkpoint of generation {state['generation']} counts {count}; the run is damaged")
        return lines

    # ------------------------------------------------------------- checkpoints
    def save_checkpoint(self, generation: int, state: dict[str, Any]) -> None:
        """Write the state after ``generation`` (JSON-ready data, weights and records saved separately).

        Each checkpoint holds the whole history (one entry per generation), so once the new one
        is complete all but the newest ``KEEP_CHECKPOINTS`` are removed.
        """
        text = json.dumps(state, allow_nan=True)
        folder = self.root / "checkpoints"
        atomic_write_text(folder / f"gen_{generation:04d}.json", text)
        for old in sorted(folder.glob("gen_*.json"))[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)

    def latest_checkpoint(self) -> dict[str, Any] | None:
        """The newest complete checkpoint, or None when no generation has finished."""
        folder = self.root / "checkpoints"
        files = sorted(folder.glob("gen_*.json")) if folder.exists() else []
        return json.loads(files[-1].read_text()) if files else None

    # ------------------------------------------------------------- preprocessing
    def save_preprocessing(self, preprocessing: Preprocessing) -> None:
        """Record the task's input steps and labels, so exports work from the run directory alone."""
        atomic_write_text(self.root / PREPROCESSING_JSON, preprocessing.to_json())

    def load_preprocessing(self) -> Preprocessing | None:
        """The recorded preprocessing; ``None`` for a run made before it was recorded."""
        path = self.root / PREPROCESSING_JSON
        if not path.is_file():
            return None
        try:
            return Preprocessing.from_json(path.read_bytes(), str(path))
        except ValueError as err:
            raise DamagedRunError(str(err)) from None

    def save_best(self, summary: dict[str, Any], genome: Genome | None) -> None:
        atomic_write_text(self.root / "best.json", json.dumps(summary, indent=2, allow_nan=True, default=str))
        if genome is not None and genome.weights:
            genome.save(self.root / "best.pt")

