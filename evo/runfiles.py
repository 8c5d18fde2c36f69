"""What a run's checkpoint and individual records must hold, checked when they are read back.

A run directory outlives the process that wrote it: a disk error, a hand edit or a copy cut short can
damage any file. Resume, ``evo show`` and ``evo export`` read through these checks, so a damaged run
ends in one :class:`~evo.errors.DamagedRunError` naming the file and what is wrong, instead of a
``KeyError`` deep in the loop or — worse — a resumed run built on wrong data.

Example:
    >>> check_state({"generation": 0}, "gen_0000.json")
    Traceback (most recent call last):
    ...
    evo.errors.DamagedRunError: gen_0000.json: missing field 'next_id'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evo.errors import DamagedRunError

__all__ = ["check_records", "check_state"]

#: The checkpoint's fields and their JSON types (``individuals`` instead of ``individuals_logged`` in runs
#: made before the records log existed).
_STATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "generation": int, "next_id": int, "population": list, "history": list, "objectives": list,
}
_HISTORY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "generation": int, "evaluated": list, "population": list, "best_id": int, "best_objectives": dict,
    "budget_used": dict, "seconds": (int, float), "failures": int,
}
_RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": int, "parents": list, "operators": list, "generation": int, "genome": dict,
    "evaluation": (dict, type(None)),
}
_EVALUATION_FIELDS: dict[str, type | tuple[type, ...]] = {
    "objectives": dict, "metrics": dict, "budget_used": dict, "error": (str, type(None)),
}


def _fields(data: Any, fields: dict[str, type | tuple[type, ...]], where: str) -> None:
    if not isinstance(data, dict):
        raise DamagedRunError(f"{where}: expected a JSON object, found {type(data).__name__}")
    for name, kind in fields.items():
        if name not in data:
            raise DamagedRunError(f"{where}: missing field {name!r}")
        value = data[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise DamagedRunError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")


def _ints(values: Sequence[Any], where: str) -> None:
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise DamagedRunError(f"{where}: expected a list of individual ids")


def check_state(state: Any, source: str) -> dict[str, Any]:
    """``state`` if it is a complete checkpoint, consistent in itself (one history entry per generation,
    the population the last generation left, the record count its generations evaluated)."""
    _fields(state, _STATE_FIELDS, source)
    if "individuals_logged" not in state and "individuals" not in state:
        raise DamagedRunError(f"{source}: missing field 'individuals_logged'")
    history = state["history"]
    if len(history) != state["generation"] + 1:
        raise DamagedRunError(f"{source}: {len(history)} history entries for generation {state['generation']}")
    for i, entry in enumerate(history):
        _fields(entry, _HISTORY_FIELDS, f"{source}: history[{i}]")
        if entry["generation"] != i:
            raise DamagedRunError(f"{source}: history[{i}] is generation {entry['generation']}")
        _ints(entry["evaluated"], f"{source}: history[{i}].evaluated")
        _ints(entry["population"], f"{source}: history[{i}].population")
    _ints(state["population"], f"{source}: population")
    if state["population"] != history[-1]["population"]:
        raise DamagedRunError(f"{source}: population differs from the last generation's")
    logged = sum(len(entry["evaluated"]) for entry in history)
    if state.get("individuals_logged", logged) != logged:
        raise DamagedRunError(f"{source}: individuals_logged is {state['individuals_logged']} but its "
                              f"generations evaluated {logged}")
    if not all(isinstance(o, list) and len(o) == 2 and o[1] in ("maximize", "minimize") for o in state["objectives"]):
        raise DamagedRunError(f"{source}: objectives must be [name, maximize|minimize] pairs")
    return state  # type: ignore[no-any-return]


def check_records(state: dict[str, Any], records: list[Any], source: str, log: str) -> None:
    """Each record complete, each id once, and every id the checkpoint (``source``) names among the
    records of ``log`` — with the generation that evaluated it."""
    born: dict[int, int] = {}
    for line, record in enumerate(records, 1):
        where = f"{log}: line {line}"
        _fields(record, _RECORD_FIELDS, where)
        if record["evaluation"] is not None:
            _fields(record["evaluation"], _EVALUATION_FIELDS, f"{where}: evaluation")
        if record["id"] in born:
            raise DamagedRunError(f"{where}: individual {record['id']} is recorded twice")
        born[record["id"]] = record["generation"]
    if born and max(born) >= state["next_id"]:
        raise DamagedRunError(f"{source}: next_id {state['next_id']} but {log} holds individual {max(born)}")
    for entry in state["history"]:
        for i in entry["evaluated"]:
            if born.get(i, -1) != entry["generation"]:
                raise DamagedRunError(f"{source}: generation {entry['generation']} evaluated individual {i}, "
                                      f"which {log} does not record as born in it")
        for i in [*entry["population"], entry["best_id"]]:
            if i not in born:
                raise DamagedRunError(f"{source}: generation {entry['generation']} names individual {i}, "
                                      f"which {log} does not hold")
