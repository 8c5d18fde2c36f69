"""RunStore: the run directory, the only thing resume reads.

Layout of ``runs/<name>/``::

    config.yaml                 the resolved config (every default spelled out)
    events.jsonl                append-only log of what happened, one JSON object per line
    checkpoints/gen_0003.json   state after generation 3: population, every individual's record
                                (architecture, parents, operators, evaluation), history, budget;
                                the newest two are kept (each holds everything the older ones did)
    individuals/17.pt           individual 17's trained genome (architecture + weights), written once
    best.json, best.pt          the best individual so far (and test metrics at the end)

Every file is written atomically (temporary file + rename), so a run killed at
any moment — SIGKILL included — leaves only complete files behind; resume
continues from the newest complete checkpoint and redoes the generation that
was in flight, which gives the same result because every random choice derives
from (run seed, individual id, generation).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from evo.genome import Genome
from evo.records import GenerationRecord, Individual
from evo.tasks import Budget, Evaluation

__all__ = ["RunStore", "atomic_write_text", "individual_from_record", "individual_to_record"]

#: Checkpoints kept on disk; older ones hold nothing the newest does not (it carries the whole history).
KEEP_CHECKPOINTS = 2


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

    # ------------------------------------------------------------- checkpoints
    def save_checkpoint(self, generation: int, state: dict[str, Any]) -> None:
        """Write the state after ``generation`` (JSON-ready data, weights saved separately).

        Each checkpoint holds every individual so far, so keeping them all would cost disk
        quadratic in the generations; once the new one is complete, all but the newest
        ``KEEP_CHECKPOINTS`` are removed.
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

    def save_best(self, summary: dict[str, Any], genome: Genome | None) -> None:
        atomic_write_text(self.root / "best.json", json.dumps(summary, indent=2, allow_nan=True, default=str))
        if genome is not None and genome.weights:
            genome.save(self.root / "best.pt")

