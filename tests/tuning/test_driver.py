"""The search loop end to end on XOR: parallel trials, pruning, resume after a kill, several objectives, export."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import evo
from evo.config import EvoConfig, apply_overrides, load_config
from evo.mirror import open_storage
from evo.records import Reporter
from evo.runner import run_evolution
from evo.tuning import apply_params, export_best, open_study, parse_space, run_search
from evo.tuning.driver import BASE_ATTR
from evo.tuning.study import WORKER_ATTR, make_sampler

SPACE = {"parameters": {
    "operators.mutate_weights.sigma": {"type": "float", "low": 0.05, "high": 1.0, "log": True},
    "evolution.lamarckian": {"type": "categorical", "choices": [True, False]},
}}


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_tiny_parallel_search(tmp_path, xor_config: EvoConfig) -> None:
    result = run_search(xor_config, parse_space(SPACE), trials=3, jobs=2, storage=f"sqlite:///{tmp_path}/evo.db",
                        runs_dir=tmp_path / "runs", artifacts=tmp_path / "art", pruner="none")
    done = result.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 3
    for trial in done:
        run_dir = Path(trial.user_attrs["run_dir"])
        assert (run_dir / "checkpoints" / "gen_0002.json").is_file()
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["evolution"]["lamarckian"] == trial.params["evolution.lamarckian"]
        assert trial.user_attrs["architecture"].startswith("2→")
        assert trial.intermediate_values == {}  # pruning off: nothing reported
    assert result.best_trial is not None and result.best_trial.value == max(t.value for t in done)
    assert result.best_config.evolution.lamarckian == result.best_params["evolution.lamarckian"]
    mirrored = [s.study_name for s in optuna.get_all_study_summaries(open_storage(f"sqlite:///{tmp_path}/evo.db"))]
    assert sorted(mirrored)[:3] == [f"run:search:xor/trial_000{i}" for i in range(3)]
    assert len(result.trials) == 3 and {row["state"] for row in result.trials} == {"COMPLETE"}


def test_pruned_trial_stops_after_a_checkpoint(tmp_path, xor_config: EvoConfig) -> None:
    result = run_search(xor_config, parse_space(SPACE), trials=2, storage=f"sqlite:///{tmp_path}/evo.db",
                        runs_dir=tmp_path / "runs", mirror=False, pruner=AlwaysPrune())
    trials = result.study.trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for trial in trials:
        assert list(trial.intermediate_values) == [0]  # reported generation 0, then stopped
        checkpoints = sorted(p.name for p in (Path(trial.user_attrs["run_dir"]) / "checkpoints").iterdir())
        assert checkpoints == ["gen_0000.json"]



def test_first_trial_runs_the_base_config_once(tmp_path, xor_config: EvoConfig) -> None:
    url, space = f"sqlite:///{tmp_path}/evo.db", parse_space(SPACE)
    base = {"operators.mutate_weights.sigma": 0.2, "evolution.lamarckian": False}
    config = apply_params(xor_config, base)
    run_search(config, space, trials=2, storage=url, runs_dir=tmp_path / "runs", mirror=False, pruner="none")
    result = run_search(config, space, trials=3, storage=url, runs_dir=tmp_path / "runs", mirror=False, pruner="none")
    first, *others = result.study.trials  # resumed with a third trial: the base config is not queued again
    assert first.params == base and first.user_attrs[BASE_ATTR] is True
    assert len(others) == 2 and all(BASE_ATTR not in t.user_attrs and t.params != base for t in others)
    assert yaml.safe_load((Path(first.user_attrs["run_dir"]) / "config.yaml").read_text())["evolution"]["lamarckian"] is False


def test_base_first_off_leaves_the_first_trial_to_the_sampler(tmp_path, xor_config: EvoConfig) -> None:
    config = apply_params(xor_config, {"operators.mutate_weights.sigma": 0.2, "evolution.lamarckian": False})
    result = run_search(config, parse_space(SPACE), trials=1, storage=f"sqlite:///{tmp_path}/evo.db",
                        runs_dir=tmp_path / "runs", mirror=False, pruner="none", base_first=False)
    assert BASE_ATTR not in result.study.trials[0].user_attrs
    assert result.study.trials[0].params["operators.mutate_weights.sigma"] != 0.2


class _Killed(Exception):
    """Stands in for SIGKILL after generation 0 was checkpointed."""


class _KillAfterFirstGeneration(Reporter):
    def on_generation_end(self, record) -> None:
        raise _Killed


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_interrupted_search_resumes(tmp_path, xor_config: EvoConfig) -> None:
    url, space = f"sqlite:///{tmp_path}/evo.db", parse_space(SPACE)
    study = open_study(open_storage(url), "search:xor", ["maximize"], make_sampler("random", 0))
    # A trial whose process died mid-run: RUNNING in the storage, half a run directory on disk.
    orphan = study.ask()
    values = space.sample(orphan)
    run_dir = tmp_path / "runs" / "killed"
    orphan.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{_dead_pid()}")
    orphan.set_user_attr("run_dir", str(run_dir))
    with pytest.raises(_Killed):
        run_evolution(apply_params(xor_config, values), run_dir=run_dir, reporters=[_KillAfterFirstGeneration()])

    result = run_search(xor_config, space, trials=2, storage=url, runs_dir=tmp_path / "runs", mirror=False, pruner="none")
    states = [t.state for t in result.study.trials]
    assert states[orphan.number] == TrialState.FAIL
    assert states.count(TrialState.COMPLETE) == 2
    retried = next(t for t in result.study.trials if t.system_attrs.get("failed_trial") == orphan.number)
    assert retried.state == TrialState.COMPLETE and retried.params == orphan.params
    assert retried.user_attrs["run_dir"] == str(run_dir)  # resumed the dead trial's run directory
    events = [line for line in (run_dir / "events.jsonl").read_text().splitlines() if '"resume"' in line]
    assert len(events) == 1 and (run_dir / "checkpoints" / "gen_0002.json").is_file()

    again = run_search(xor_config, space, trials=2, storage=url, runs_dir=tmp_path / "runs", mirror=False)
    assert len(again.study.trials) == len(result.study.trials)  # already done: the same command does nothing


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_several_objectives_make_a_pareto_study(tmp_path) -> None:
    config = load_config(None, ["task.dataset=iris", "task.objectives=[val_accuracy, params]", "task.max_train_samples=40",
                                "plasticity.epochs=1", "evolution.generations=1", "evolution.population_size=2",
                                "backend.kind=serial", "name=iris"])
    space = parse_space({"parameters": {"plasticity.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}})
    result = run_search(config, space, trials=2, storage=f"sqlite:///{tmp_path}/evo.db", runs_dir=tmp_path / "runs",
                        mirror=False)
    assert [d.name for d in result.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert isinstance(result.study.sampler, optuna.samplers.NSGAIISampler)
    assert result.pareto and all(len(t.values) == 2 for t in result.pareto)
    assert all(t.intermediate_values == {} for t in result.study.trials)  # no pruning with several objectives


def test_export_best(tmp_path, xor_config: EvoConfig) -> None:
    result = run_search(xor_config, parse_space(SPACE), trials=1, storage=f"sqlite:///{tmp_path}/evo.db",
                        runs_dir=tmp_path / "runs", mirror=False)
    path = export_best(result, tmp_path / "best.yaml")
    exported = load_config(path)
    assert exported == result.best_config
    assert exported.evolution.lamarckian == result.best_params["evolution.lamarckian"]


def test_export_best_runs_as_long_as_the_base_config(tmp_path, xor_config: EvoConfig) -> None:
    short = apply_overrides(xor_config, {"evolution.generations": 1, "evolution.max_seconds": 75})
    result = run_search(short, parse_space(SPACE), trials=1, storage=f"sqlite:///{tmp_path}/evo.db",
                        runs_dir=tmp_path / "runs", mirror=False)
    exported = load_config(export_best(result, tmp_path / "best.yaml", base=xor_config))
    assert exported.evolution.generations == xor_config.evolution.generations == 2
    assert exported.evolution.max_seconds == xor_config.evolution.max_seconds
    assert exported.evolution.lamarckian == result.best_params["evolution.lamarckian"]


def test_api_search_names_the_study_as_the_cli_does_and_prints_each_trial(tmp_path, capsys) -> None:
    config = tmp_path / "xor.yaml"
    config.write_text("task: {kind: xor}\nevolution: {generations: 1, population_size: 2}\nbackend: {kind: serial}\n")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    result = evo.search(config, space, trials=2, storage=f"sqlite:///{tmp_path}/evo.db", runs_dir=tmp_path / "runs",
                        mirror=False, pruner="none", progress=True)
    assert result.study.study_name == "search:xor:space"
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [["trial", "0", "complete"], ["trial", "1", "complete"]]
    assert "best: trial" in lines[-1]


def test_bad_arguments(tmp_path, xor_config: EvoConfig) -> None:
    with pytest.raises(ValueError, match="search: trials must be >= 1, got 0"):
        run_search(xor_config, parse_space(SPACE), trials=0, storage=f"sqlite:///{tmp_path}/evo.db")
    bad = parse_space({"parameters": {"evolution.population_size": {"type": "int", "low": 1, "high": 3}}}, "s.yaml")
    with pytest.raises(ValueError, match="s.yaml: parameter 'evolution.population_size'"):
        run_search(xor_config, bad, trials=1, storage=f"sqlite:///{tmp_path}/evo.db")
    config = apply_overrides(xor_config, {})
    with pytest.raises(ValueError, match="sampler 'cmaes' optimises one objective"):
        multi = load_config(None, ["task.dataset=iris", "task.objectives=[val_accuracy, params]"])
        run_search(multi, parse_space(SPACE), trials=1, sampler="cmaes", storage=f"sqlite:///{tmp_path}/evo.db")
    assert config == xor_config


def test_cli_search(tmp_path) -> None:
    config = tmp_path / "xor.yaml"
    config.write_text("task: {kind: xor}\nevolution: {generations: 1, population_size: 2}\nbackend: {kind: serial}\n")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    cmd = [sys.executable, "-m", "evo", "search", str(config), "--space", str(space), "--trials", "2", "--jobs", "2",
           "--storage", f"sqlite:///{tmp_path}/evo.db", "--export-best", str(tmp_path / "best.yaml"),
           "--runs-dir", str(tmp_path / "runs"), "--sampler", "random"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "search:xor:space" in done.stdout and "2 complete" in done.stdout
    assert load_config(tmp_path / "best.yaml").task.kind == "xor"
    from typer.testing import CliRunner

    from evo.cli import app

    bad = CliRunner().invoke(app, ["search", str(config), "--space", str(tmp_path / "missing.yaml")])
    assert bad.exit_code == 2 and "missing.yaml: search space file not found" in bad.output
