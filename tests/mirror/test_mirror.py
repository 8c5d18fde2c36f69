"""The Optuna mirror of a run: one trial per individual, with params, objectives, lineage and a diagram."""

from __future__ import annotations

import threading
from collections.abc import Callable

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna.trial import TrialState
from sqlalchemy import event

import evo.mirror.reporter
from evo.config import EvoConfig, apply_overrides
from evo.genome import Genome
from evo.mirror import OptunaMirror, changed_settings, open_storage, run_study_name
from evo.plasticity import PlasticityConfig
from evo.records import GenerationRecord, Individual
from evo.runner import run_evolution
from evo.tasks import Budget, Direction, Evaluation, Objective

OBJECTIVES = [Objective("acc"), Objective("params", Direction.MINIMIZE)]


def _individual(i: int, hidden: tuple[int, ...], parents: tuple[int, ...] = (), error: str | None = None) -> Individual:
    genome = Genome.mlp((4,), hidden=hidden, output_size=2, seed=i)
    objectives = {"acc": 0.5 + i / 10, "params": float(genome.num_params())}
    ops = ("init",) if not parents else ("widen(layer=0, k=2, init=split)",)
    return Individual(i, genome, parents, ops, len(parents), Evaluation(i, objectives, genome, {"loss": 0.3}, error=error))


def _generation_end(mirror: OptunaMirror, best_id: int, pareto: tuple[int, ...] = ()) -> None:
    mirror.on_generation_end(GenerationRecord(0, (), (), best_id, {}, Budget(), 0.1, extra={"pareto": list(pareto)}))
    mirror.flush()


def test_individuals_become_trials(tmp_path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/evo.db")
    mirror = OptunaMirror(storage, "r", OBJECTIVES, {"plasticity.lr": 0.1}, tmp_path / "run", tmp_path / "art")
    mirror.on_evaluated(_individual(0, (8,)))
    mirror.on_evaluated(_individual(1, (10,), parents=(0,)))
    mirror.on_evaluated(_individual(2, (12, 4), parents=(1,), error="diverged"))
    _generation_end(mirror, best_id=1, pareto=(0, 1))

    study = optuna.load_study(study_name=run_study_name("r"), storage=storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    first, child, failed = study.trials
    assert first.state == child.state == TrialState.COMPLETE and failed.state == TrialState.FAIL
    assert child.values == [0.6, float(Genome.mlp((4,), hidden=(10,), output_size=2).num_params())]
    assert child.params["width.0"] == 10 and child.params["depth"] == 1 and child.params["op.widen"] == 1
    assert child.params["plasticity.lr"] == 0.1
    assert failed.params["depth"] == 2 and failed.user_attrs["error"] == "diverged"
    assert child.user_attrs["parents"] == [0] and failed.user_attrs["lineage"] == [0, 1]
    assert child.user_attrs["architecture"] == "4→10→relu→2" and child.user_attrs["run_dir"] == str(tmp_path / "run")
    assert child.user_attrs["metrics"] == {"loss": 0.3}

    store = FileSystemArtifactStore(str(tmp_path / "art"))
    (meta,) = get_all_artifact_meta(child, storage=storage)
    assert meta.mimetype == "image/svg+xml" and meta.filename == "individual_1.svg"
    download_artifact(artifact_store=store, file_path=str(tmp_path / "d.svg"), artifact_id=meta.artifact_id)
    assert (tmp_path / "d.svg").read_text().lstrip().startswith(("<svg", "<?xml"))


def test_resumed_run_is_not_mirrored_twice(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/evo.db"
    first = OptunaMirror(url, "r", OBJECTIVES, artifacts=None)
    first.on_evaluated(_individual(0, (8,)))
    _generation_end(first, best_id=0)
    again = OptunaMirror(url, "r", OBJECTIVES, artifacts=None)
    again.on_evaluated(_individual(0, (8,)))
    again.on_evaluated(_individual(1, (8,), parents=(0,)))
    _generation_end(again, best_id=1)
    assert [t.user_attrs["individual_id"] for t in again.study.trials] == [0, 1]


def test_a_generation_is_one_transaction_with_diagrams_of_the_best_and_the_front(tmp_path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/evo.db")
    mirror = OptunaMirror(storage, "r", OBJECTIVES, artifacts=tmp_path / "art")
    commits: list[object] = []
    event.listen(storage.engine, "commit", commits.append)
    for i in range(6):
        mirror.on_evaluated(_individual(i, (4 + i,), parents=(i - 1,) if i else ()))
    assert not mirror.study.trials  # nothing written while the generation runs
    commits.clear()
    _generation_end(mirror, best_id=5, pareto=(0, 5))
    assert len(commits) == 1
    mirror.on_evaluated(_individual(6, (4,), parents=(5,)))  # a generation cut short (pruned, Ctrl-C)
    mirror.on_run_end()
    assert mirror.study.trials[-1].user_attrs["individual_id"] == 6
    trials = mirror.study.trials
    assert [t.number for t in trials] == list(range(7)) and [t.user_attrs["individual_id"] for t in trials] == list(range(7))
    drawn = [t.user_attrs["individual_id"] for t in trials if get_all_artifact_meta(t, storage=storage)]
    assert drawn == [0, 5]


def _three_generations(mirror: OptunaMirror, between: Callable[[], object]) -> None:
    """Three generations of three individuals each (bests 0, 4, 7; fronts (0,), (3, 4), (7,)); ``between`` after
    each generation's end."""
    ids = iter(range(9))
    for generation, (best, front) in enumerate([(0, (0,)), (4, (3, 4)), (7, (7,))]):
        for _ in range(3):
            i = next(ids)
            mirror.on_evaluated(_individual(i, (4 + i,), parents=(i - 1,) if i else ()))
        mirror.on_generation_end(GenerationRecord(generation, (), (), best, {}, Budget(), 0.1, extra={"pareto": list(front)}))
        between()


def test_generations_ending_while_the_writer_is_busy_are_written_together(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("evo.mirror.reporter.WRITE_EVERY_S", 3600.0)  # every generation ends well within it
    release = threading.Event()
    real_write = evo.mirror.reporter._write
    monkeypatch.setattr("evo.mirror.reporter._write", lambda *args: release.wait(60) and real_write(*args))
    storage = open_storage(f"sqlite:///{tmp_path}/evo.db")
    mirror = OptunaMirror(storage, "r", OBJECTIVES, artifacts=tmp_path / "art")
    commits: list[object] = []
    event.listen(storage.engine, "commit", commits.append)
    _three_generations(mirror, lambda: None)  # the first generation's write is in flight (held) meanwhile
    release.set()
    mirror._wait()
    assert len(commits) == 1 and len(mirror.study.trials) == 3  # the first generation alone
    commits.clear()
    mirror.on_run_end()  # the next two, together
    assert len(commits) == 1
    trials = mirror.study.trials
    assert [t.user_attrs["individual_id"] for t in trials] == list(range(9))
    assert [t.user_attrs["individual_id"] for t in trials if get_all_artifact_meta(t, storage=storage)] == [0, 3, 4, 7]


def test_an_idle_writer_gets_each_generation_as_it_ends(tmp_path, monkeypatch) -> None:
    """So the run's end waits for one generation's write at most, not for the interval's backlog."""
    monkeypatch.setattr("evo.mirror.reporter.WRITE_EVERY_S", 3600.0)
    storage = open_storage(f"sqlite:///{tmp_path}/evo.db")
    mirror = OptunaMirror(storage, "r", OBJECTIVES, artifacts=tmp_path / "art")
    written: list[int] = []
    _three_generations(mirror, lambda: mirror._wait() or written.append(len(mirror.study.trials)))
    assert written == [3, 6, 9]
    mirror.on_run_end()


def test_a_mirror_its_owner_closes_hands_the_last_batch_over_and_close_waits_for_it(tmp_path, monkeypatch) -> None:
    """With ``wait_at_run_end`` off (the runner's own mirror), the run's end does not wait for the writer: what
    the runner does next (testing the best, the CLI's plots) overlaps the last write, which close() waits for."""
    release = threading.Event()
    real_write = evo.mirror.reporter._write
    monkeypatch.setattr("evo.mirror.reporter._write", lambda *args: release.wait(60) and real_write(*args))
    storage = open_storage(f"sqlite:///{tmp_path}/evo.db")
    mirror = OptunaMirror(storage, "r", OBJECTIVES, artifacts=None, wait_at_run_end=False)
    for i in range(2):
        mirror.on_evaluated(_individual(i, (8,), parents=(i - 1,) if i else ()))
    mirror.on_run_end()  # returns while the write is held
    assert not mirror.study.trials
    release.set()
    mirror.close()
    assert [t.user_attrs["individual_id"] for t in mirror.study.trials] == [0, 1]


def test_changed_settings_only() -> None:
    settings = changed_settings(PlasticityConfig(lr=0.1, growth={"strategy": "gradmax"}), "plasticity")
    assert settings == {"plasticity.lr": 0.1, "plasticity.growth.strategy": "gradmax"}


def test_mirror_of_a_real_run(tmp_path, xor_config: EvoConfig) -> None:
    config = apply_overrides(xor_config, {"evolution.generations": 1})
    mirror = OptunaMirror(f"sqlite:///{tmp_path}/evo.db", "xor", [Objective("fitness")], run_dir=tmp_path / "run",
                          artifacts=tmp_path / "art")
    result = run_evolution(config, run_dir=tmp_path / "run", reporters=[mirror])
    trials = mirror.study.trials
    assert sorted(t.user_attrs["individual_id"] for t in trials) == sorted(result.individuals)
    best = max(trials, key=lambda t: t.value)
    assert best.value == result.best.objectives["fitness"]
    assert {t.user_attrs["generation"] for t in trials} == {0, 1}


def test_hyperparameter_genes_become_params(tmp_path) -> None:
    mirror = OptunaMirror(f"sqlite:///{tmp_path}/evo.db", "r", OBJECTIVES, artifacts=None)
    for i, schedule in enumerate(("constant", "cosine")):  # a choice gene keeps one distribution across trials
        ind = _individual(i, (8,))
        genome = ind.genome.replace(hparams={"lr": 0.01 * (i + 1), "batch_size": 16, "lr_schedule": schedule})
        mirror.on_evaluated(Individual(i, genome, (), ("init",), 0, ind.evaluation))
        _generation_end(mirror, best_id=i)
    first, second = mirror.study.trials
    assert first.params["hparams.lr"] == 0.01 and second.params["hparams.lr"] == 0.02
    assert first.params["hparams.batch_size"] == 16 and second.params["hparams.lr_schedule"] == "cosine"


def test_a_full_database_is_one_storage_error(tmp_path) -> None:
    """SQLite's "database or disk is full" (here: a page limit) stops the run with one line naming the storage."""
    import pytest
    from sqlalchemy import event

    from evo.errors import StorageError

    url = f"sqlite:///{tmp_path}/evo.db"
    storage = open_storage(url)  # written from a thread here, through this engine
    mirror = OptunaMirror(storage, "r", OBJECTIVES, artifacts=None)
    mirror.on_evaluated(_individual(0, (8,)))
    _generation_end(mirror, best_id=0)
    engine = storage.engine
    pages = engine.connect().exec_driver_sql("PRAGMA page_count").scalar()
    event.listen(engine, "connect", lambda conn, _: conn.execute(f"PRAGMA max_page_count={pages}"))
    engine.dispose()
    with pytest.raises(StorageError, match=f"^{url}: cannot write the Optuna mirror \\(database or disk is full\\)"):
        for i in range(1, 50):
            mirror.on_evaluated(_individual(i, (8,)))
            _generation_end(mirror, best_id=i)  # the writer's error comes out when the driver waits for it


def test_a_trial_a_killed_run_left_open_is_finished_when_its_individual_is_redone(tmp_path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/evo.db")
    killed = OptunaMirror(storage, "r", OBJECTIVES, artifacts=None)
    # an earlier evo opened each trial, then finished it: SIGKILL in between left this one open
    killed.study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={"individual_id": 0}))
    resumed = OptunaMirror(storage, "r", OBJECTIVES, artifacts=None)
    resumed.on_evaluated(_individual(0, (8,)))
    _generation_end(resumed, best_id=0)
    trials = optuna.load_study(study_name=run_study_name("r"), storage=storage).trials
    assert [(t.state, t.user_attrs["individual_id"]) for t in trials] == [(TrialState.COMPLETE, 0)]


def test_a_resumed_run_mirrors_what_a_kill_kept_from_the_mirror(tmp_path, xor_config: EvoConfig) -> None:
    """The mirror writes after the checkpoint: a kill between the two left checkpointed individuals unmirrored,
    and resume never redoes them (found by benchmarks/reliability.py)."""
    from evo.runner import resume_evolution

    run_dir = tmp_path / "run"
    run_evolution(apply_overrides(xor_config, {"evolution.generations": 1}), run_dir=run_dir)  # the mirror missed it
    mirror = OptunaMirror(f"sqlite:///{tmp_path}/evo.db", "xor", [Objective("fitness")], run_dir=run_dir, artifacts=None)
    result = resume_evolution(run_dir, ["evolution.generations=2"], reporters=[mirror])
    ids = [t.user_attrs["individual_id"] for t in mirror.study.trials]
    assert sorted(ids) == sorted(result.individuals) and len(set(ids)) == len(ids)
    assert {t.user_attrs["generation"] for t in mirror.study.trials} == {0, 1, 2}
