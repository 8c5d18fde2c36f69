"""RunStore: the run directory, the only thing resume reads.

Layout of ``runs/<name>/``::

    config.yaml                 the resolved config (every default spelled out)
    preprocessing.json          what the task does to raw inputs and its class labels (exports carry it)
    .lock                       held (OS lock) by the one process running, resuming or extending the run
    events.jsonl                append-only log of what happened, one JSON object per line
    individuals.jsonl           append-only: every evaluated individual's record (architecture, parents,
                                operators, evaluation, sha256 of its genome file), one line each, written
                                once when its generation ends
    checkpoints/gen_0003.json   state after generation 3: population, history, budget and how many
                                lines of individuals.jsonl it covers; the newest two are kept
    individuals/gen_0003.pt     the trained genomes (architecture + weights) of the individuals evaluated in
                                generation 3, one file per generation (a file per individual cost more than an
                                XOR-sized evaluation): a JSON index and one flat tensor per dtype; each record
                                names its file and that file's sha256
    best.json, best.pt          the best individual so far, with the generation it was born in (and test metrics
                                at the end)

A checkpoint counts records instead of holding them, so writing one costs the same
in generation 1000 as in generation 1. Every other file but the events log
(appended, torn last lines skipped) is written atomically (temporary file, fsync,
rename); a generation's genome file is written before its records, and its records
are appended and synced before its checkpoint. So a run killed at any moment —
SIGKILL included — leaves complete checkpoints behind, and at most records (or half
a line) past the newest one's count, which resume cuts off (all of them when no
checkpoint exists yet): it continues from the newest complete checkpoint and redoes
the generation that was in flight, which gives the same result — the same genome
files, byte for byte — because every random choice derives from (run seed,
individual id, generation).

Reading back checks everything (:mod:`evo.runfiles`, genome checksums): a damaged
file is one :class:`~evo.errors.DamagedRunError` naming it, and a damaged newest
checkpoint is passed over for the one before it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

from evo.errors import DamagedRunError, DamagedRunWarning, RunExistsError, RunLockedError
from evo.files import append_synced, atomic_write_text, naming_path
from evo.genome import Genome, load_tensors, save_tensors
from evo.paths import RUN_CONFIG
from evo.preprocessing import PREPROCESSING_JSON, Preprocessing
from evo.records import GenerationRecord, Individual
from evo.runfiles import check_records, check_state
from evo.types import Budget, Evaluation

__all__ = ["Checkpoint", "RunStore", "atomic_write_text", "individual_from_record", "individual_to_record"]

#: Checkpoints kept on disk: the newest, and the one before it in case the newest is damaged.
KEEP_CHECKPOINTS = 2

#: The append-only log of individual records (see the module docstring).
INDIVIDUALS_LOG = "individuals.jsonl"

#: The file a process holds an OS lock on while it runs, resumes or extends the run.
LOCK_FILE = ".lock"
#: The append-only event log (run start, resumes, the end).
EVENTS_LOG = "events.jsonl"
#: what a new run writes before its first generation (see :meth:`RunStore.discard_unstarted`)
_STARTUP_FILES = frozenset({RUN_CONFIG, PREPROCESSING_JSON, EVENTS_LOG, LOCK_FILE})


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint that passed every check, with the records it covers (see :meth:`RunStore.load_checkpoint`).

    Attributes:
        state: the checkpoint's content.
        records: the individual records it covers, in log order.
        history: its generations.
        individuals: every individual it covers, as a weightless skeleton.
        path: its file.
        skipped: one line for each newer checkpoint that was damaged and passed over.
    """

    state: dict[str, Any]
    records: list[dict[str, Any]]
    history: list[GenerationRecord]
    individuals: dict[int, Individual]
    path: Path
    skipped: list[str] = field(default_factory=list)


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
            "budget_used": _shallow(ev.budget_used),
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


def _shallow(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, not copied: what is dumped to JSON at once needs no ``asdict`` deep copy
    (which cost an XOR-sized run more than its evaluations, every checkpoint holding the whole history)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def record_to_dict(record: GenerationRecord) -> dict[str, Any]:
    """A generation's record as JSON-ready data (sharing ``extra`` and ``best_objectives``: dump it, don't edit it)."""
    data = _shallow(record)
    data["evaluated"], data["population"] = list(record.evaluated), list(record.population)
    data["budget_used"] = _shallow(record.budget_used)
    return data


def record_from_dict(data: dict[str, Any]) -> GenerationRecord:
    data = dict(data)
    data["evaluated"], data["population"] = tuple(data["evaluated"]), tuple(data["population"])
    data["budget_used"] = Budget(**data["budget_used"])
    return GenerationRecord(**data)


def _genome_file_content(genomes: Mapping[int, Genome]) -> dict[str, Any]:
    """A generation's genome file content: one JSON index (each genome's architecture, and where each of its tensors
    lies) and one flat tensor per dtype.

    Few objects, because ``torch.save`` pickles each through a Python hook: fifty XOR genomes held as tensor dicts
    were 4,000 objects, and pickling them cost an XOR run a third of its time. Built the same from the same
    genomes however they were made (pickle's memo would not be: a resumed run shares other objects), so equal
    genomes give the same bytes and checksum.
    """
    import torch

    chunks: dict[str, list[Any]] = {}
    sizes: dict[str, int] = {}

    def place(tensor: Any) -> list[Any]:
        group = str(tensor.dtype).removeprefix("torch.")
        flat = tensor.detach().reshape(-1)
        offset = sizes.get(group, 0)
        chunks.setdefault(group, []).append(flat)
        sizes[group] = offset + flat.numel()
        return [group, list(tensor.shape), offset]

    index = []
    for i, genome in genomes.items():
        # lists, not objects: the index is dumped with sorted keys, and a genome's weight order is its own
        entry: dict[str, Any] = {"id": i, "genome": genome.to_dict(),
                                 "weights": [[k, *place(v)] for k, v in genome.weights.items()]}
        if genome.optim_state:
            entry["optim_state"] = [[name, [[k, *place(v)] for k, v in state.items()]]
                                    for name, state in genome.optim_state.items()]
        index.append(entry)
    return {"index": json.dumps(index, sort_keys=True), "tensors": {g: torch.cat(c) for g, c in chunks.items()}}


def _genome_loaders(content: Any, path: Path) -> dict[int, Callable[[], Genome]]:
    """A generation's genome file as ``{id: loader}``, each loader building that individual's genome (and raising
    ``ValueError`` for a damaged entry); files of the first layout (``genomes``: each genome's content, before the
    index) too.

    Raises:
        ValueError: the file is not a generation's genome file.
    """
    if isinstance(content, dict) and isinstance(content.get("genomes"), dict):
        return {i: partial(Genome.from_content, c, str(path)) for i, c in content["genomes"].items()}
    if not isinstance(content, dict) or not isinstance(content.get("index"), str) or not isinstance(content.get("tensors"), dict):
        raise ValueError(f"{path}: not an evo genome file")
    try:
        return {int(spec["id"]): partial(_indexed_genome, spec, content["tensors"], path)
                for spec in json.loads(content["index"])}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: not an evo genome file (unreadable index)") from None


def _indexed_genome(spec: Any, tensors: Mapping[str, Any], path: Path) -> Genome:
    """The genome one entry of a generation file's index describes, its tensors copied out of the flat ones (a
    genome owns its weights: training writes to them)."""

    def take(placed: list[Any]) -> dict[str, Any]:
        out = {}
        for name, group, shape, offset in placed:
            flat = tensors[group]
            size = math.prod(shape)
            if offset + size > flat.numel():
                raise ValueError(f"tensor {name} lies past its data")
            out[name] = flat[offset:offset + size].reshape(shape).clone()
        return out

    try:
        content = {"genome": spec["genome"], "weights": take(spec["weights"])}
        if "optim_state" in spec:
            content["optim_state"] = {name: take(state) for name, state in spec["optim_state"]}
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not an evo genome file ({err})") from None
    return Genome.from_content(content, str(path))


def _readable_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of an appended log, one per line; a line a killed process left torn is skipped."""
    out = []
    for line in path.read_bytes().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
    return out


class RunStore:
    """Reads and writes one run directory (see module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._pending: dict[int, Genome] = {}  # genomes to save, until their generation's records are appended
        # the genome file read last, by (path, checksum): a run's individuals are read in runs
        self._last_read: tuple[tuple[Path, str | None], dict[int, Callable[[], Genome]]] | None = None
        self._best_saved: int | None = None  # the individual best.pt holds, once this store wrote it
        self._best_text: str | None = None  # what best.json holds, once this store wrote it

    @classmethod
    def create(cls, root: str | os.PathLike[str], config_yaml: str) -> RunStore:
        """A new run directory; refuses to reuse one that already holds a run."""
        store = cls(root)
        cls.refuse_existing(store.root)
        atomic_write_text(store.root / RUN_CONFIG, config_yaml)
        return store

    @staticmethod
    def exists(root: str | os.PathLike[str]) -> bool:
        """Whether ``root`` holds a run (its config is the first file a run writes)."""
        return (Path(root) / RUN_CONFIG).exists()

    @classmethod
    def refuse_existing(cls, root: str | os.PathLike[str]) -> None:
        """Raise :class:`RunExistsError` if ``root`` holds a run: a new run never reuses a run directory."""
        if cls.exists(root):
            raise RunExistsError(f"{root}: a run already exists here (continue it with `evo resume {root}` or "
                                 "evo.resume(), or choose another name)")

    def discard_unstarted(self) -> bool:
        """Remove this new run's directory if it holds only what a run writes before its first generation
        (config, preprocessing, the start event, the lock): a run stopped there by bad input (e.g. halving's rungs
        against the task's lifetime) has nothing to resume, and its directory would block the name it was
        given. Anything more (a record, a genome, a checkpoint) keeps the directory as it is."""
        if any(path.name not in _STARTUP_FILES for path in self.root.iterdir()):
            return False
        shutil.rmtree(self.root)
        return True

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> RunStore:
        """An existing run directory."""
        store = cls(root)
        if not (store.root / RUN_CONFIG).is_file():
            raise DamagedRunError(f"{store.root}: not an evo run directory (no config.yaml)")
        return store

    @property
    def config_path(self) -> Path:
        return self.root / RUN_CONFIG

    @contextmanager
    def lock(self) -> Iterator[RunStore]:
        """Hold the run directory for one process (run, resume, extend) until the block ends.

        An OS lock (``flock``) on ``.lock``: the OS drops it when the process dies, SIGKILL included, so a
        crashed run never leaves a stale lock behind; a second process gets :class:`RunLockedError`.
        """
        import fcntl

        path = self.root / LOCK_FILE
        with naming_path(path):
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise RunLockedError(f"{self.root}: another evo process (pid {holder}) is running, resuming or "
                                     "extending this run; wait for it to end") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield self
        finally:
            os.close(fd)  # releases the lock

    def log(self, event: str, **data: Any) -> None:
        """Append one event to events.jsonl (a torn last line is ignored by :meth:`events`)."""
        line = json.dumps({"time": time.time(), "event": event, **data}, default=str)
        append_synced(self.root / EVENTS_LOG, line + "\n", sync=False)

    def events(self) -> list[dict[str, Any]]:
        return _readable_lines(self.root / EVENTS_LOG)

    # ------------------------------------------------------------- individuals
    def genome_path(self, individual_id: int, record: Mapping[str, Any] | None = None) -> Path:
        """The file holding an individual's genome: its generation's (named by ``record``), or in a run written
        before generations shared one, ``individuals/<id>.pt``."""
        if record is not None and "genome_file" in record:
            return self.root / record["genome_file"]
        return self.root / "individuals" / f"{individual_id}.pt"

    def save_genome(self, individual_id: int, genome: Genome) -> None:
        """Keep an individual's genome until :meth:`append_records` writes its generation's (one file for all)."""
        self._pending[individual_id] = genome

    def load_genome(self, individual_id: int, record: Mapping[str, Any] | None = None) -> Genome:
        """An individual's saved genome, checked against the checksum in ``record`` (its record in the log, which
        is read when not given)."""
        record = self._record(individual_id) if record is None else record
        path = self.genome_path(individual_id, record)
        if not path.exists():
            raise DamagedRunError(f"{path}: missing (no saved weights for individual {individual_id})")
        try:
            if "genome_file" not in record:
                return Genome.load(path, record.get("sha256"))
            genomes = self._read_pack(path, record.get("sha256"))
            if individual_id not in genomes:
                raise ValueError(f"{path}: holds no genome of individual {individual_id}")
            return genomes[individual_id]()
        except ValueError as err:
            raise DamagedRunError(str(err)) from None

    def _read_pack(self, path: Path, sha256: str | None) -> dict[int, Callable[[], Genome]]:
        """A generation's genome file as :func:`_genome_loaders` (the last one read is kept, as individuals are
        read in id order and a generation's ids are consecutive)."""
        if self._last_read is None or self._last_read[0] != (path, sha256) or sha256 is None:
            content = load_tensors(path, sha256, "evo genome file")
            self._last_read = ((path, sha256), _genome_loaders(content, path))
        return self._last_read[1]

    def _record(self, individual_id: int) -> dict[str, Any]:
        """An individual's record as the log holds it (an unknown id has an empty one)."""
        return next((r for r in _readable_lines(self.root / INDIVIDUALS_LOG) if r.get("id") == individual_id), {})

    # ------------------------------------------------------------- individual records
    def append_records(self, records: list[dict[str, Any]], generation: int | None = None) -> None:
        """Append individual records to the log, synced to disk (a checkpoint counting them follows). The
        genomes :meth:`save_genome` holds for them are written first, into ``generation``'s genome file, and
        each of those records names the file and carries its checksum."""
        held = {record["id"]: self._pending.pop(record["id"]) for record in records if record["id"] in self._pending}
        located: dict[str, Any] = {}
        if held:
            if generation is None:
                raise ValueError("append_records: genomes to save need their generation")
            name = f"individuals/gen_{generation:04d}.pt"
            located = {"genome_file": name, "sha256": save_tensors(self.root / name, _genome_file_content(held))}
        lines = [json.dumps({**record, **located} if record["id"] in held else record, allow_nan=True)
                 for record in records]
        append_synced(self.root / INDIVIDUALS_LOG, "".join(line + "\n" for line in lines))

    def records(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """The individual records a checkpoint covers: the first ``individuals_logged`` lines of the log
        (or, in a checkpoint of a run made before the log existed, its own ``individuals`` list)."""
        if "individuals" in state:
            return list(state["individuals"])
        path = self.root / INDIVIDUALS_LOG
        out = []
        for number, line in enumerate(self._covered_lines(state), 1):
            try:
                out.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise DamagedRunError(f"{path}: line {number} is not JSON") from None
        return out

    def resume_records(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """:meth:`records`, then :meth:`cut_records` to them."""
        records = self.records(state)
        self.cut_records(state)
        return records

    def cut_records(self, state: dict[str, Any] | None) -> None:
        """Leave the log holding exactly the records ``state`` covers (none without a checkpoint): what a
        generation that never reached its checkpoint appended (a crash) is cut off, to be appended again
        when that generation is redone; a checkpoint made before the log existed has its records written."""
        path = self.root / INDIVIDUALS_LOG
        if state is not None and "individuals" in state:
            path.unlink(missing_ok=True)
            self.append_records(state["individuals"])  # their genomes have their own files
        elif path.exists():
            with naming_path(path):
                os.truncate(path, 0 if state is None else sum(len(line) for line in self._covered_lines(state)))

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
            raise DamagedRunError(f"{path}: holds {len(lines)} complete records but the checkpoint of "
                                  f"generation {state['generation']} counts {count}; the run is damaged")
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
        for old in self._checkpoint_files()[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)

    def _checkpoint_files(self) -> list[Path]:
        folder = self.root / "checkpoints"
        return sorted(folder.glob("gen_*.json")) if folder.exists() else []

    def latest_checkpoint(self) -> dict[str, Any] | None:
        """The newest checkpoint file as written (unchecked), or None when no generation has finished;
        resume and inspection read through :meth:`load_checkpoint` instead."""
        files = self._checkpoint_files()
        return self.read_json(files[-1]) if files else None  # type: ignore[no-any-return]

    def load_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint that passes every check (:mod:`evo.runfiles`) with the records it covers, or
        None when no generation has finished. A damaged newest one is passed over for the one before (with
        a :class:`DamagedRunWarning`); when none is intact, the newest one's problem is raised.

        Raises:
            DamagedRunError: one line naming the damaged file and what is wrong.
        """
        skipped: list[str] = []
        for path in reversed(self._checkpoint_files()):
            try:
                state = check_state(self.read_json(path), str(path))
                records = self.records(state)
                check_records(state, records, str(path), str(self.root / INDIVIDUALS_LOG))
                history, individuals = self._parse(state, records, path)
            except DamagedRunError as err:
                skipped.append(str(err))
                continue
            for line in skipped:
                warnings.warn(f"{line}; using {path.name} instead", DamagedRunWarning, stacklevel=2)
            return Checkpoint(state, records, history, individuals, path, skipped)
        if skipped:
            raise DamagedRunError(skipped[0])
        return None

    def _parse(self, state: dict[str, Any], records: list[dict[str, Any]],
               path: Path) -> tuple[list[GenerationRecord], dict[int, Individual]]:
        """The checked checkpoint's generations and individuals; a value that does not parse is damage too."""
        try:
            history = [record_from_dict(entry) for entry in state["history"]]
        except (KeyError, TypeError, ValueError) as err:
            raise DamagedRunError(f"{path}: history: {type(err).__name__}: {err}") from None
        individuals = {}
        for record in records:
            try:
                individuals[record["id"]] = individual_from_record(record)
            except (KeyError, TypeError, ValueError) as err:
                raise DamagedRunError(f"{self.root / INDIVIDUALS_LOG}: individual {record['id']}: "
                                      f"{type(err).__name__}: {err}") from None
        return history, individuals

    @staticmethod
    def read_json(path: Path) -> Any:
        """A JSON run file's content; :class:`DamagedRunError` naming it when it does not parse."""
        try:
            return json.loads(path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DamagedRunError(f"{path}: not valid JSON ({getattr(err, 'msg', err)})") from None

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
        """Write best.json when its content changed since this store last wrote it (a synced write per generation
        was a tenth of an XOR run), and best.pt when the best individual changed (its weights)."""
        text = json.dumps(summary, indent=2, allow_nan=True, default=str)
        if text != self._best_text:
            atomic_write_text(self.root / "best.json", text)
            self._best_text = text
        if genome is not None and genome.weights and self._best_saved != summary["id"]:
            genome.save(self.root / "best.pt")
            self._best_saved = summary["id"]
