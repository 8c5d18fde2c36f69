"""RunStore: atomic files, one run per directory, newest complete checkpoint, torn event lines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evo.genome import Genome
from evo.records import Individual
from evo.store import RunStore, atomic_write_text, individual_from_record, individual_to_record
from evo.tasks import Budget, Evaluation


def test_create_refuses_an_existing_run(tmp_path: Path) -> None:
    RunStore.create(tmp_path / "r", "a: 1\n")
    with pytest.raises(ValueError, match="a run already exists here"):
        RunStore.create(tmp_path / "r", "a: 2\n")
    assert (tmp_path / "r" / "config.yaml").read_text() == "a: 1\n"


def test_open_requires_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an evo run directory"):
        RunStore.open(tmp_path)


def test_latest_checkpoint_is_the_newest(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", "")
    assert store.latest_checkpoint() is None
    for g in range(3):
        store.save_checkpoint(g, {"generation": g, "best": float("-inf")})
    assert store.latest_checkpoint() == {"generation": 2, "best": float("-inf")}
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == ["gen_0001.json", "gen_0002.json"]


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "f.txt", "one")
    atomic_write_text(tmp_path / "f.txt", "two")
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    assert (tmp_path / "f.txt").read_text() == "two"


def test_torn_event_lines_are_skipped(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", "")
    store.log("a", x=1)
    with open(store.root / "events.jsonl", "a") as f:
        f.write('{"event": "b", "x"')  # a process killed mid-write
    assert [e["event"] for e in store.events()] == ["a"]


def test_individual_records_round_trip(tmp_path: Path) -> None:
    genome = Genome.mlp((4,), (3,), 2, seed=1)
    ev = Evaluation(5, {"acc": 0.5}, genome, {"loss": 1.0}, Budget(steps=3, samples=96))
    ind = Individual(5, genome, (1,), ("widen(k=1)",), 2, ev)
    record = individual_to_record(ind)
    skeleton = individual_from_record(record)
    assert skeleton.genome.to_dict() == genome.to_dict() and not skeleton.genome.weights
    assert skeleton.evaluation is not None and skeleton.evaluation.budget_used == Budget(steps=3, samples=96)
    store = RunStore.create(tmp_path / "r", "")
    store.save_genome(5, genome)
    full = individual_from_record(record, store.load_genome(5))
    x = torch.randn(3, 4)
    assert torch.equal(full.genome.to_module()(x), genome.to_module()(x))


def _records(ids: range) -> list[dict[str, object]]:
    return [{"id": i, "x": float(i)} for i in ids]


def test_records_log_is_read_up_to_the_checkpoints_count(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", "")
    store.append_records(_records(range(3)))
    store.append_records(_records(range(3, 5)))
    assert store.records({"generation": 1, "individuals_logged": 3}) == _records(range(3))
    assert store.records({"generation": 1, "individuals_logged": 0}) == []
    with pytest.raises(ValueError, match="holds 5 complete records but the checkpoint of generation 4 counts 6"):
        store.records({"generation": 4, "individuals_logged": 6})


def test_resume_cuts_what_a_crashed_generation_appended(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", "")
    store.append_records(_records(range(3)))
    store.append_records(_records(range(3, 5)))  # the generation in flight reached the log, not its checkpoint
    with open(store.root / "individuals.jsonl", "a") as f:
        f.write('{"id": 5, "x"')  # and was killed mid-line
    assert store.resume_records({"generation": 0, "individuals_logged": 3}) == _records(range(3))
    store.append_records(_records(range(3, 6)))  # the redone generation
    assert store.records({"generation": 1, "individuals_logged": 6}) == _records(range(6))


def test_resume_from_a_checkpoint_that_holds_its_records(tmp_path: Path) -> None:
    """Runs made before the records log: their checkpoints list every record; resuming writes the log."""
    store = RunStore.create(tmp_path / "r", "")
    old = {"generation": 1, "individuals": _records(range(4))}
    assert store.resume_records(old) == _records(range(4))
    assert store.records({"generation": 1, "individuals_logged": 4}) == _records(range(4))
