"""RunStore: atomic files, one run per directory, newest complete checkpoint, torn event lines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evo.genome import Genome, save_tensors
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
    store.append_records([record], generation=2)
    full = individual_from_record(record, store.load_genome(5))
    x = torch.randn(3, 4)
    assert torch.equal(full.genome.to_module()(x), genome.to_module()(x))


def test_best_json_is_written_only_when_it_changes(tmp_path: Path) -> None:
    """A run calls save_best every generation; a synced rewrite of the same text each time cost XOR-sized runs a
    tenth of their time. The same summary leaves the file alone (same inode); another one replaces it."""
    store = RunStore.create(tmp_path / "r", "")
    genome = Genome.mlp((4,), (3,), 2, seed=1)
    summary = {"id": 3, "architecture": str(genome), "objectives": {"fitness": 1.0}, "generation": 1}
    store.save_best(summary, genome)
    before = (tmp_path / "r" / "best.json").stat().st_ino
    store.save_best(dict(summary), genome)
    assert (tmp_path / "r" / "best.json").stat().st_ino == before
    store.save_best({**summary, "objectives": {"fitness": 2.0}}, genome)
    assert (tmp_path / "r" / "best.json").stat().st_ino != before
    assert json.loads((tmp_path / "r" / "best.json").read_text())["objectives"] == {"fitness": 2.0}


def test_equal_genomes_give_an_equal_genome_file_whatever_objects_they_share(tmp_path: Path) -> None:
    """A resumed run redoes a generation with genomes that share other objects (tensors, strings) than the run it
    resumes did; the bug: the same genomes, another genome file and checksum, so the run's records differed."""
    parent = Genome.mlp((4,), (3,), 2, seed=1)
    sharing = [parent, parent.with_weights(dict(parent.weights))]  # siblings holding the same tensors and names
    apart = [Genome.from_dict(json.loads(parent.to_json()), {str(k): v.clone() for k, v in parent.weights.items()})
             for _ in range(2)]
    checksums = []
    for name, genomes in (("sharing", sharing), ("apart", apart)):
        store = RunStore.create(tmp_path / name, "")
        for i, genome in enumerate(genomes):
            store.save_genome(i, genome)
        store.append_records([{"id": 0}, {"id": 1}], generation=0)
        checksums.append({r["sha256"] for r in map(json.loads, (store.root / "individuals.jsonl").read_text().splitlines())})
    assert checksums[0] == checksums[1] and len(checksums[0]) == 1


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


# ----------------------------------------------------------------- a whole run's directory, read back and resumed
import errno  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import evo.testing  # noqa: E402
from evo.config import load_config  # noqa: E402
from evo.errors import DamagedRunError, DamagedRunWarning, RunFailedError, RunLockedError  # noqa: E402
from evo.inspect import load_run  # noqa: E402
from evo.runner import resume_evolution, run_evolution  # noqa: E402


def toy_config(*overrides: str):
    return load_config(None, ["task.kind=custom", f"task.path={evo.testing.__file__}", "task.name=ToyTask",
                              "evolution.population_size=4", "evolution.generations=3", "evolution.seed=3",
                              "evolution.init.hidden=[4]", "backend.kind=serial", *overrides])


def outcome(run_dir: Path) -> dict[int, object]:
    """Every record of a run as the log holds it (each exactly once), without the genome-file checksums."""
    lines = (run_dir / "individuals.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len({r["id"] for r in records}) == len(records), "an individual is recorded twice"
    return {r["id"]: (r["architecture"], r["evaluation"]["objectives"]) for r in records}


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("toy") / "ref"
    run_evolution(toy_config(), run_dir=run_dir)
    return run_dir


@pytest.fixture
def copy(toy_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(toy_run, tmp_path / "copy"))


def test_a_second_process_cannot_take_a_held_run(tmp_path: Path) -> None:
    """The lock is the OS's: held by another live process it refuses, and the holder's death releases it."""
    store = RunStore.create(tmp_path / "r", "")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from evo.store import RunStore\n"
                               f"with RunStore({str(store.root)!r}).lock():\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(RunLockedError, match=f"another evo process \\(pid {holder.pid}\\) is running"):
            with store.lock():
                pass
    finally:
        holder.kill()
        holder.wait()
    with store.lock():  # killed: the OS released its lock
        pass


def test_a_kill_before_the_first_checkpoint_restarts_generation_0_cleanly(toy_run: Path, copy: Path) -> None:
    """Generation 0's records reached the log, its checkpoint did not: resume must not record them twice."""
    shutil.rmtree(copy / "checkpoints")
    with open(copy / "individuals.jsonl", "r+") as f:
        f.truncate(sum(len(line) for line in f.readlines()[:4]))  # generation 0's four records
    resume_evolution(copy)
    assert outcome(copy) == outcome(toy_run)
    resume_evolution(copy, ["evolution.generations=4"])  # and a later extension keeps every generation
    assert len(outcome(copy)) == 20 and load_run(copy).history[-1].generation == 4


def test_a_damaged_newest_checkpoint_gives_way_to_the_one_before(toy_run: Path, copy: Path) -> None:
    newest = copy / "checkpoints" / "gen_0003.json"
    newest.write_text(newest.read_text()[:100])
    with pytest.warns(DamagedRunWarning, match="gen_0003.json: not valid JSON.*using gen_0002.json instead"):
        assert load_run(copy).history[-1].generation == 2
    with pytest.warns(DamagedRunWarning):
        resume_evolution(copy)
    assert outcome(copy) == outcome(toy_run)
    assert any(e["event"] == "resume" and e["skipped"] for e in RunStore(copy).events())


def _edit_checkpoint(run_dir: Path, edit) -> None:
    for path in (run_dir / "checkpoints").glob("gen_*.json"):
        state = json.loads(path.read_text())
        edit(state)
        path.write_text(json.dumps(state))


def _alive(run_dir: Path) -> Path:
    """The genome file of a member of the run's population (resume reads it back): its generation's."""
    run = load_run(run_dir)
    i = run.population[-1]
    return RunStore(run_dir).genome_path(i, run.records[i])


def _cut(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _cut_lines(path: Path, keep: float) -> None:
    """Keep the first ``keep`` of the lines: a cut that stays valid YAML whatever the fields' lengths."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: int(len(lines) * keep)]))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "config.yaml").write_text(""), r"config.yaml: incomplete run config \(the 'name' section is missing\)"),
        (lambda d: _cut_lines(d / "config.yaml", 0.5), r"config.yaml: incomplete run config"),
        (lambda d: _edit_checkpoint(d, lambda s: s.pop("next_id")), r"gen_0003.json: missing field 'next_id'"),
        (lambda d: _edit_checkpoint(d, lambda s: s.update(population=[0, 1, 2, 99], history=s["history"][:-1]
                                                          + [{**s["history"][-1], "population": [0, 1, 2, 99]}])),
         r"gen_0003.json: generation 3 names individual 99, which .*individuals.jsonl does not hold"),
        (lambda d: _edit_checkpoint(d, lambda s: s.update(individuals_logged=17)),
         r"gen_0003.json: individuals_logged is 17 but its generations evaluated 16"),
        (lambda d: _cut(d / "individuals.jsonl", 0.5), r"individuals.jsonl: holds \d+ complete records but"),
        (lambda d: _alive(d).write_bytes(b"junk"), r"individuals/gen_\d{4}.pt: checksum mismatch"),
        (lambda d: _alive(d).unlink(), r"individuals/gen_\d{4}.pt: missing \(no saved weights for individual \d+\)"),
    ],
    ids=["empty-config", "cut-config", "checkpoint-field", "unknown-id", "count", "cut-records", "genome-checksum",
         "genome-missing"],
)
def test_a_damaged_run_is_one_line_naming_the_file_and_nothing_is_rewritten(copy: Path, damage, message: str) -> None:
    damage(copy)
    before = snapshot(copy)
    with pytest.raises(DamagedRunError, match=message) as err:
        resume_evolution(copy, ["evolution.generations=5"])
    assert "\n" not in str(err.value)
    assert snapshot(copy) == before


def test_show_and_export_read_through_the_same_checks(copy: Path) -> None:
    _edit_checkpoint(copy, lambda s: s["history"][1].pop("best_id"))
    with pytest.raises(DamagedRunError, match="gen_0003.json: history\\[1\\]: missing field 'best_id'"):
        load_run(copy)


def test_genome_files_carry_a_checksum_in_their_record(toy_run: Path) -> None:
    run = load_run(toy_run)
    assert {i: r["genome_file"] for i, r in run.records.items()} == {
        i: f"individuals/gen_{0 if i < 4 else (i - 4) // 4 + 1:04d}.pt" for i in range(16)}
    assert run.load_genome(run.ranked()[0].id).weights
    with pytest.raises(DamagedRunError, match="checksum mismatch"):
        RunStore(toy_run).load_genome(1, {**run.records[1], "sha256": run.records[5]["sha256"]})


def test_a_generation_writes_one_genome_file(toy_run: Path) -> None:
    """Four generations, four genome files (not one per individual), each holding exactly its generation's."""
    run = load_run(toy_run)
    files = sorted(p.name for p in (toy_run / "individuals").iterdir())
    assert files == [f"gen_{g:04d}.pt" for g in range(4)]
    for record in run.history:
        for i in record.evaluated:
            assert run.records[i]["genome_file"] == f"individuals/gen_{record.generation:04d}.pt"
    store = RunStore(toy_run)
    for i in range(16):  # without its record, an individual's genome is found through the log
        assert store.load_genome(i).to_dict() == run.load_genome(i).to_dict()


def test_a_run_written_with_a_genome_file_per_individual_still_resumes(toy_run: Path, copy: Path,
                                                                        tmp_path: Path) -> None:
    """Runs written before generations shared a file keep ``individuals/<id>.pt``: resume and export read them."""
    log = copy / "individuals.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    store = RunStore(copy)
    for record in records:
        genome = store.load_genome(record["id"], record)
        record.pop("genome_file")
        record["sha256"] = genome.save(copy / "individuals" / f"{record['id']}.pt")
    for pack in (copy / "individuals").glob("gen_*.pt"):
        pack.unlink()
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert load_run(copy).load_genome(7).weights
    reference = Path(shutil.copytree(toy_run, tmp_path / "reference"))
    resume_evolution(copy, ["evolution.generations=5"])
    resume_evolution(reference, ["evolution.generations=5"])
    assert outcome(copy) == outcome(reference)


def test_a_run_written_with_the_first_generation_file_layout_still_resumes(toy_run: Path, copy: Path,
                                                                           tmp_path: Path) -> None:
    """Generation files first held each genome's content under ``genomes`` (before the index and flat tensors):
    such runs still resume, show and export."""
    log = copy / "individuals.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    store = RunStore(copy)
    files: dict[str, dict[int, object]] = {}
    for record in records:
        files.setdefault(record["genome_file"], {})[record["id"]] = store.load_genome(record["id"], record).content()
    sums = {name: save_tensors(copy / name, {"genomes": genomes}) for name, genomes in files.items()}
    log.write_text("".join(json.dumps({**r, "sha256": sums[r["genome_file"]]}) + "\n" for r in records))
    assert load_run(copy).load_genome(7).to_dict() == load_run(toy_run).load_genome(7).to_dict()
    reference = Path(shutil.copytree(toy_run, tmp_path / "reference"))
    resume_evolution(copy, ["evolution.generations=5"])
    resume_evolution(reference, ["evolution.generations=5"])
    assert outcome(copy) == outcome(reference)


def test_a_generation_file_is_an_index_and_a_tensor_per_dtype_keeping_each_genome_whole(tmp_path: Path) -> None:
    """Few objects to pickle (the point of the layout), and what comes back is the genome as it was: weights in
    their order, optimiser state with them, each genome owning its tensors."""
    wide = Genome.mlp((12,), (11, 10), 2, seed=1)  # layers.10 would sort before layers.2 by name
    names = list(wide.weights)
    reordered = wide.with_weights({k: wide.weights[k] for k in reversed(names)})
    moments = {"layers.0.weight": {"exp_avg": torch.ones(11, 12), "step": torch.tensor(3.0)}}
    genomes = {4: reordered.replace(optim_state=moments), 5: Genome.mlp((3,), (2,), 1, seed=2)}
    store = RunStore.create(tmp_path / "r", "")
    for i, genome in genomes.items():
        store.save_genome(i, genome)
    store.append_records([{"id": 4}, {"id": 5}], generation=0)
    content = torch.load(tmp_path / "r" / "individuals" / "gen_0000.pt", weights_only=True)
    assert sorted(content) == ["index", "tensors"] and list(content["tensors"]) == ["float32"]
    for i, genome in genomes.items():
        back = RunStore(tmp_path / "r").load_genome(i)
        assert list(back.weights) == list(genome.weights)
        assert all(torch.equal(back.weights[k], w) for k, w in genome.weights.items())
        assert {n: dict(e) for n, e in back.optim_state.items()}.keys() == genome.optim_state.keys()
    back = RunStore(tmp_path / "r").load_genome(4)
    assert torch.equal(back.optim_state["layers.0.weight"]["step"], torch.tensor(3.0))
    assert back.weights["layers.0.bias"].untyped_storage().nbytes() == 11 * 4  # its own, not the file's


def test_a_generation_file_whose_index_points_past_its_data_is_damaged(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", "")
    store.save_genome(0, Genome.mlp((3,), (2,), 1, seed=2))
    store.append_records([{"id": 0}], generation=0)
    path = tmp_path / "r" / "individuals" / "gen_0000.pt"
    content = torch.load(path, weights_only=True)
    content["tensors"]["float32"] = content["tensors"]["float32"][:3]
    sha = save_tensors(path, content)
    with pytest.raises(DamagedRunError, match=r"gen_0000.pt: not an evo genome file \(tensor layers.0.weight lies past"):
        RunStore(tmp_path / "r").load_genome(0, {"id": 0, "genome_file": "individuals/gen_0000.pt", "sha256": sha})


def test_a_full_disk_is_an_os_error_naming_the_file_and_loses_nothing(toy_run: Path, copy: Path, monkeypatch) -> None:
    """ENOSPC while extending: the error names the file; the run stays as it was and resumes later."""
    import evo.files

    real_fsync = evo.files.os.fsync

    def fsync(fd: int) -> None:  # generation 4's genome file is the first one written: the disk is full
        if Path(os.readlink(f"/proc/self/fd/{fd}")).parent.name == "individuals":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(evo.files.os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left on device") as err:
        resume_evolution(copy, ["evolution.generations=4"])
    assert err.value.filename and Path(err.value.filename).parent.parent == copy
    assert not list(copy.rglob("*.tmp")), "a failed atomic write leaves no temporary file"
    assert load_run(copy).history[-1].generation == 3
    monkeypatch.setattr(evo.files.os, "fsync", real_fsync)
    resume_evolution(copy)
    assert len(outcome(copy)) == 20 and load_run(copy).history[-1].generation == 4


def test_torch_save_into_a_full_disk_raises_the_os_error(tmp_path: Path, monkeypatch) -> None:
    """``torch.save`` straight into a full file says ``unexpected pos``; the genome's save says ENOSPC, with the path."""
    import evo.files

    def fail(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(evo.files.os, "fsync", fail)
    with pytest.raises(OSError) as err:
        Genome.mlp((4,), (3,), 2, seed=1).save(tmp_path / "g.pt")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "g.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_run_whose_every_evaluation_fails_raises(tmp_path: Path) -> None:
    import numpy as np

    rows = np.random.default_rng(0).normal(size=(40, 3))
    rows[5, 1], rows[:, 2] = np.nan, rows[:, 0] > 0
    np.savetxt(tmp_path / "nan.csv", rows, delimiter=",", header="a,b,y", comments="")
    cfg = load_config(None, ["task.dataset=csv", f"task.path={tmp_path / 'nan.csv'}", "evolution.generations=1",
                             "evolution.population_size=2", "backend.kind=serial", "evolution.eval_steps=2"])
    with pytest.raises(RunFailedError, match=r"run: all 4 evaluations failed; the first \(individual 0\): Diverged"):
        run_evolution(cfg, run_dir=tmp_path / "run")
    assert [e["event"] for e in RunStore(tmp_path / "run").events()][-1] == "run_failed"


def test_discard_unstarted_removes_only_a_directory_holding_start_up_files(tmp_path: Path) -> None:
    """A new run stopped by bad input before its first generation leaves nothing; one with any record stays."""
    for name, extra in (("bare", None), ("started", "individuals.jsonl")):
        store = RunStore.create(tmp_path / name, "task: {kind: xor}\n")
        store.log("run_start", name=name)
        if extra:
            (store.root / extra).write_text("{}\n")
        with store.lock():
            discarded = store.discard_unstarted()
        assert discarded is (extra is None) and store.root.exists() is (extra is not None)
    assert (tmp_path / "started" / "config.yaml").read_text() == "task: {kind: xor}\n"
