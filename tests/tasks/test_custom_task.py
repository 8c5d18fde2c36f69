"""Task kind 'custom': a Task subclass from a Python file — loading, errors, pickling to a fresh process."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from pydantic import TypeAdapter

from evo.config import ConfigError, load_config
from evo.genome import Genome
from evo.plasticity import PlasticityConfig
from evo.task_kinds import TaskConfig, build_task
from evo.tasks import Budget
from evo.tasks.custom import CustomTask, CustomTaskConfig, load_task_class

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_task.py"

CONSTANT = '''
from evo.tasks import Budget, Evaluation, Objective, Task


class Constant(Task):
    """Fitness = `value` (an option) for every genome; remembers whether it got the plasticity section."""

    objectives = (Objective("score"),)

    def __init__(self, value: float = 1.0, width: int = 3, plasticity=None):
        if value < 0:
            raise ValueError("value must be >= 0")
        self.value, self.width, self.got_plasticity = value, width, plasticity is not None

    @property
    def input_shape(self):
        return (self.width,)

    @property
    def output_size(self):
        return 2

    def evaluate(self, genome, budget, device, seed):
        return Evaluation(-1, {"score": self.value}, genome)

    def test(self, genome):
        return {"test_score": self.value}


class NotATask:
    pass
'''


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "constant.py"
    path.write_text(CONSTANT)
    return path


def test_a_custom_section_builds_the_class_with_its_options(task_file: Path) -> None:
    cfg = TypeAdapter(TaskConfig).validate_python({"kind": "custom", "path": str(task_file), "name": "Constant",
                                                   "options": {"value": 0.5, "width": 4}})
    task = build_task(cfg, PlasticityConfig())
    assert isinstance(task, CustomTask) and task.task.got_plasticity
    assert task.input_shape == (4,) and task.output_size == 2 and [o.name for o in task.objectives] == ["score"]
    genome = Genome.mlp((4,), (3,), 2)
    assert task.evaluate(genome, Budget(), "cpu", 0).objectives == {"score": 0.5}
    assert task.test(genome) == {"test_score": 0.5}  # the user's extra methods show through


def test_relative_paths_resolve_against_the_current_directory(task_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(task_file.parent)
    cfg = CustomTaskConfig(path="constant.py", name="Constant")
    assert cfg.path == str(task_file.resolve())


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("Missing", {}, r"constant.py: no class 'Missing' \(Task subclasses there: Constant\)"),
        ("NotATask", {}, r"constant.py: NotATask is not a subclass of evo.tasks.Task"),
        ("Constant", {"value": -1}, r"constant.py: Constant\(\*\*options\) failed: ValueError: value must be >= 0"),
        ("Constant", {"colour": 1}, r"constant.py: Constant\(\*\*options\) failed: TypeError: .*colour"),
    ],
)
def test_a_bad_class_or_options_raise_one_line_naming_the_file(task_file: Path, name: str, options: dict,
                                                             message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        CustomTask(task_file, name, options)
    assert "\n" not in str(info.value)


def test_a_missing_file_fails_at_config_time_and_a_broken_one_at_import(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"task.custom.path: task file nowhere.py not found"):
        load_config(None, ["task.kind=custom", "task.path=nowhere.py"])
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    with pytest.raises(ValueError, match=r"broken.py: importing it failed: ModuleNotFoundError"):
        load_task_class(broken, "Anything")


def test_an_edited_file_is_imported_again(task_file: Path) -> None:
    first = load_task_class(task_file, "Constant")
    assert load_task_class(task_file, "Constant") is first
    task_file.write_text(CONSTANT.replace('Objective("score")', 'Objective("points")'))
    import os

    os.utime(task_file, ns=(0, task_file.stat().st_mtime_ns + 10**9))
    assert load_task_class(task_file, "Constant").objectives[0].name == "points"


def test_the_task_pickles_as_its_recipe_and_rebuilds_in_a_fresh_process(task_file: Path, tmp_path: Path) -> None:
    task = CustomTask(task_file, "Constant", {"value": 0.25})
    blob = pickle.dumps(task)
    assert b"constant.py" in blob and len(blob) < 2000
    pickled = tmp_path / "task.pkl"
    pickled.write_bytes(blob)
    code = textwrap.dedent(f"""
        import pickle
        from evo.genome import Genome
        from evo.tasks import Budget
        task = pickle.loads(open({str(pickled)!r}, "rb").read())
        print(task.evaluate(Genome.mlp((3,), (2,), 2), Budget(), "cpu", 0).objectives["score"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "0.25"


def test_the_worked_example_evaluates_and_trains() -> None:
    task = CustomTask(EXAMPLE, "MyTask", {"n_points": 100})
    genome = Genome.mlp((2,), (8,), 2)
    evaluation = task.evaluate(genome, Budget(steps=5), "cpu", seed=0)
    assert evaluation.ok and evaluation.budget_used.steps == 5
    assert evaluation.objectives["params"] == genome.num_params()
    assert 0.0 <= evaluation.objectives["val_accuracy"] <= 1.0
    assert evaluation.genome is not None
    assert any(not torch.equal(w, genome.weights[k]) for k, w in evaluation.genome.weights.items())  # trained
    x, y = task.calibration_batch(16, seed=0)
    assert x.shape == (16, 2) and y.shape == (16,)
    with pytest.raises(ValueError, match="n_points must be >= 10"):
        CustomTask(EXAMPLE, "MyTask", {"n_points": 3})


def test_the_cli_prints_a_bad_task_in_one_line_and_exits_2(task_file: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from evo.cli import app

    config = tmp_path / "custom.yaml"
    config.write_text(f"task: {{kind: custom, path: {task_file}, name: Missing}}\nbackend: {{kind: serial}}\n")
    result = CliRunner().invoke(app, ["run", str(config), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "constant.py: no class 'Missing'" in result.output and "--storage" not in result.output
    assert not list((tmp_path / "runs").glob("custom*/config.yaml"))  # failed before any run directory
