"""The Python API end to end on a tiny serial run: evo.run, evo.resume, evo.search, result records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import evo
from evo.api import history_records, to_config
from evo.config import ConfigError, EvoConfig
from evo.evolution import RunResult

TINY = {
    "task": {"kind": "supervised", "dataset": "digits", "max_train_samples": 200},
    "evolution": {"generations": 1, "population_size": 3, "eval_steps": 10, "init": {"hidden": [8]}},
    "backend": {"kind": "serial"},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult]:
    run_dir = tmp_path_factory.mktemp("api") / "tiny"
    return run_dir, evo.run(TINY, run_dir=run_dir)


def test_run_returns_population_pareto_best_and_records(finished: tuple[Path, RunResult]) -> None:
    run_dir, result = finished
    assert (run_dir / "config.yaml").is_file()
    assert len(result.population) == 3 and len(result.history) == 2  # initial generation + 1
    assert result.best.id in {ind.id for ind in result.pareto}
    rows = result.records()
    assert len(rows) == len(result.individuals) == 6
    assert {"id", "generation", "architecture", "params", "val_accuracy"} <= set(rows[0])
    assert max(r["val_accuracy"] for r in rows) == result.best.objectives["val_accuracy"]
    history = history_records(result)
    assert [h["generation"] for h in history] == [0, 1]
    assert history[-1]["best_id"] == result.best.id
    assert history[-1]["best_val_accuracy"] == result.best.objectives["val_accuracy"]
    assert history[-1]["samples"] > history[0]["samples"] > 0


def test_the_pareto_front_carries_its_weights(tmp_path: Path) -> None:
    """Front members that left the population (their weights left memory) are read back from the run."""
    config = {**TINY, "task": {**TINY["task"], "objectives": ["val_accuracy", "params"]},
              "evolution": {**TINY["evolution"], "generations": 3, "test_top_k": 1, "seed": 1}}
    result = evo.run(config, run_dir=tmp_path / "front")
    population = {ind.id for ind in result.population}
    assert any(ind.id not in population for ind in result.pareto)  # the case this test is about
    for ind in result.pareto:
        assert set(ind.genome.weights) >= {"layers.0.weight"}
        assert ind.genome.to_module()(torch.zeros(1, 64)).shape == (1, 10)


def test_resume_extends_a_finished_run(finished: tuple[Path, RunResult]) -> None:
    run_dir, first = finished
    longer = evo.resume(run_dir, {"evolution.generations": 2})
    assert len(longer.history) == 3
    assert set(first.individuals) < set(longer.individuals)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["evolution"]["generations"] == 2


def test_run_refuses_an_existing_run_dir(finished: tuple[Path, RunResult]) -> None:
    with pytest.raises(ValueError, match="a run already exists here"):
        evo.run(TINY, run_dir=finished[0])


def test_resume_refuses_a_frozen_field(finished: tuple[Path, RunResult]) -> None:
    with pytest.raises(ConfigError, match="cannot change in a resumed run"):
        evo.resume(finished[0], ["task.dataset=iris"])


def test_configs_from_a_model_a_dict_and_yaml_agree(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    overrides = {"evolution.generations": 4, "task.dataset": "iris"}
    from_yaml = to_config(path, overrides)
    from_dict = to_config(TINY, overrides)
    from_model = to_config(EvoConfig.model_validate(TINY), [f"{k}={v}" for k, v in overrides.items()])
    assert from_yaml == from_dict == from_model
    assert from_dict.evolution.generations == 4 and from_dict.task.dataset == "iris"


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ({"evolution": {"generatoins": 3}}, (), "evolution.generatoins: unknown field"),
        (TINY, {"evolution.population_size": 1}, "population_size"),
        (TINY, "evolution.generations=3", "overrides must be a list"),
        (42, (), "config must be an EvoConfig, a dict or a YAML path"),
        ("no/such/file.yaml", (), "config file not found"),
    ],
)
def test_bad_configs_raise_one_line_value_errors(config: object, overrides: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        to_config(config, overrides)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_search_is_callable_as_evo_search_even_after_importing_the_subpackage(tmp_path: Path) -> None:
    import evo.tuning.space

    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  plasticity.lr: {type: float, low: 0.001, high: 0.01, log: true}\n")
    tiny = {**TINY, "evolution": {**TINY["evolution"], "generations": 0, "population_size": 2}}
    result = evo.search(tiny, space, trials=1, storage=f"sqlite:///{tmp_path / 'evo.db'}",
                        runs_dir=tmp_path / "runs", mirror=False)
    assert result.best_trial is not None and "plasticity.lr" in result.best_params
    assert 0.001 <= result.best_config.plasticity.lr <= 0.01
    assert callable(evo.search) and evo.search is evo.api.search


def test_import_evo_stays_light_until_the_api_is_used() -> None:
    code = (
        "import sys, evo\n"
        "before = sorted(m for m in ('evo.evolution', 'evo.api', 'optuna', 'ray') if m in sys.modules)\n"
        "evo.run\n"
        "after = sorted(m for m in ('evo.evolution', 'evo.api', 'optuna', 'ray') if m in sys.modules)\n"
        "print(__import__('json').dumps([before, after]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, after = json.loads(out.strip().splitlines()[-1])
    assert before == [] and after == ["evo.api", "evo.evolution"]
