"""Read a run directory back for inspection (``evo show``, notebooks): records only, weights on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evo.errors import DamagedRunError
from evo.genome import Genome
from evo.records import GenerationRecord, Individual
from evo.selection import make_selector
from evo.store import RunStore
from evo.types import Direction, Objective

__all__ = ["RunView", "load_run"]


@dataclass
class RunView:
    """A run as stored: every individual (weightless skeletons), history, objectives and test metrics."""

    store: RunStore
    objectives: tuple[Objective, ...]
    individuals: dict[int, Individual]
    population: list[int]
    history: list[GenerationRecord]
    test: dict[str, Any] = field(default_factory=dict)
    records: dict[int, dict[str, Any]] = field(default_factory=dict)

    def load_genome(self, individual_id: int) -> Genome:
        """An individual's trained genome from the run directory, checked against its record's checksum."""
        return self.store.load_genome(individual_id, self.records.get(individual_id, {}))

    def ranked(self) -> list[Individual]:
        """Evaluated individuals, best first (primary objective, then the others)."""
        key = make_selector("aging", self.objectives).key
        return sorted((i for i in self.individuals.values() if i.evaluation), key=key, reverse=True)


def load_run(run_dir: str | Path) -> RunView:
    """The newest intact checkpoint of a run directory as a :class:`RunView` (checked as resume checks it).

    Raises:
        DamagedRunError: not a run directory, no generation finished yet, or a run file is damaged.
    """
    store = RunStore.open(run_dir)
    checkpoint = store.load_checkpoint()
    if checkpoint is None:
        raise DamagedRunError(f"{run_dir}: no generation has completed yet")
    state = checkpoint.state
    objectives = tuple(Objective(name, Direction(direction)) for name, direction in state["objectives"])
    best_file = store.root / "best.json"
    best = RunStore.read_json(best_file) if best_file.exists() else {}
    test = best.get("test", {}) if isinstance(best, dict) else {}
    records = {r["id"]: r for r in checkpoint.records}
    return RunView(store, objectives, checkpoint.individuals, state["population"], checkpoint.history, test, records)
