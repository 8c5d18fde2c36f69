"""Read a run directory back for inspection (``evo show``, notebooks): records only, weights on demand."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evo.records import GenerationRecord, Individual
from evo.selection import make_selector
from evo.store import RunStore, individual_from_record, record_from_dict
from evo.tasks import Direction, Objective

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

    def ranked(self) -> list[Individual]:
        """Evaluated individuals, best first (primary objective, then the others)."""
        key = make_selector("aging", self.objectives).key
        return sorted((i for i in self.individuals.values() if i.evaluation), key=key, reverse=True)


def load_run(run_dir: str | Path) -> RunView:
    """The newest checkpoint of a run directory as a :class:`RunView`."""
    store = RunStore.open(run_dir)
    state = store.latest_checkpoint()
    if state is None:
        raise ValueError(f"{run_dir}: no generation has completed yet")
    objectives = tuple(Objective(name, Direction(direction)) for name, direction in state["objectives"])
    individuals = {r["id"]: individual_from_record(r) for r in store.records(state)}
    best_file = store.root / "best.json"
    test = json.loads(best_file.read_text()).get("test", {}) if best_file.exists() else {}
    return RunView(store, objectives, individuals, state["population"], [record_from_dict(r) for r in state["history"]], test)
