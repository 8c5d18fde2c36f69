"""Search spaces: parsing, validation errors (one per class), conditional and define-by-run sampling."""

from __future__ import annotations

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.tuning.space import FunctionSpace, YamlSpace, load_space, parse_space


def _trial(seed: int = 0) -> optuna.Trial:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed)).ask()


SPACE = """
parameters:
  plasticity.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
  plasticity.batch_size: {type: int, low: 16, high: 128, step: 16}
  plasticity.growth.strategy: {type: categorical, choices: [none, gradmax]}
  plasticity.growth.amount: {type: int, low: 1, high: 8, when: {plasticity.growth.strategy: gradmax}}
  plasticity.growth.interval: {type: int, low: 10, high: 100, when: {plasticity.growth.amount: [1, 2, 3]}}
  evolution.init.hidden: {type: categorical, choices: [[16], [32, 32]]}
"""


def test_yaml_space_samples_within_ranges(write) -> None:
    space = load_space(write("s.yaml", SPACE))
    assert isinstance(space, YamlSpace)
    for seed in range(20):
        values = space.sample(_trial(seed))
        assert 1e-4 <= values["plasticity.lr"] <= 0.1
        assert values["plasticity.batch_size"] in range(16, 129, 16)
        assert values["evolution.init.hidden"] in ([16], [32, 32])  # list choices come back as lists


def test_conditional_parameters_exist_only_when_their_condition_holds(write) -> None:
    space = load_space(write("s.yaml", SPACE))
    seen = {"with": 0, "without": 0, "chained": 0}
    for seed in range(40):
        values = space.sample(_trial(seed))
        growing = values["plasticity.growth.strategy"] == "gradmax"
        assert ("plasticity.growth.amount" in values) == growing
        chained = growing and values["plasticity.growth.amount"] <= 3
        assert ("plasticity.growth.interval" in values) == chained
        seen["with" if growing else "without"] += 1
        seen["chained"] += chained
    assert all(seen.values()), seen  # every branch was exercised


@settings(max_examples=25, deadline=None)
@given(low=st.integers(-50, 50), span=st.integers(1, 100), seed=st.integers(0, 2**16))
def test_int_samples_respect_bounds(low: int, span: int, seed: int) -> None:
    space = parse_space({"parameters": {"a.b": {"type": "int", "low": low, "high": low + span}}})
    assert low <= space.sample(_trial(seed))["a.b"] <= low + span


def test_function_space_from_python_file(write) -> None:
    path = write("my_space.py", "def space(trial):\n    return {'plasticity.lr': trial.suggest_float('lr', 0.01, 0.02)}\n")
    space = load_space(f"{path}:space")
    assert isinstance(space, FunctionSpace)
    assert 0.01 <= space.sample(_trial())["plasticity.lr"] <= 0.02


def test_function_space_errors(write) -> None:
    path = write("bad.py", "def space(trial):\n    return ['not a mapping']\n")
    with pytest.raises(ValueError, match="no function 'missing'"):
        load_space(f"{path}:missing")
    with pytest.raises(ValueError, match="must return a mapping of dotted config paths"):
        load_space(f"{path}:space").sample(_trial())


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("{type: float, low: 1, high: 0.1}", "parameter 'plasticity.lr': low must be < high"),
        ("{type: float, low: 0, high: 1, log: true}", "parameter 'plasticity.lr': log needs low > 0"),
        ("{type: float, low: 0.1, high: 1, log: true, step: 0.1}", "log and step cannot be combined"),
        ("{type: int, low: 1, high: 9, step: 0}", "parameter 'plasticity.lr': step: Input should be greater than or equal to 1"),
        ("{type: floot, low: 1, high: 2}", "parameter 'plasticity.lr': type must be float, int or categorical, got 'floot'"),
        ("{low: 1, high: 2}", "parameter 'plasticity.lr': missing 'type'"),
        ("{type: float, low: 1, hihg: 2}", "parameter 'plasticity.lr': unknown key 'hihg'"),
        ("{type: float, low: 1}", "parameter 'plasticity.lr': missing 'high'"),
        ("{type: float, low: abc, high: 2}", "parameter 'plasticity.lr': low: Input should be a valid number"),
        ("{type: categorical, choices: []}", "parameter 'plasticity.lr': choices"),
        ("{type: categorical, choices: [a, a]}", "parameter 'plasticity.lr': choices must be distinct"),
        ("{type: int, low: 1, high: 2, when: {plasticity.other: x}}", "when names 'plasticity.other', which is not a parameter defined above it"),
    ],
)
def test_malformed_parameter_names_file_and_parameter(write, param: str, message: str) -> None:
    path = write("x.yaml", f"parameters:\n  plasticity.lr: {param}\n")
    with pytest.raises(ValueError) as err:
        load_space(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("parameters: [1, 2", "not valid YAML at line"),
        ("- 1\n- 2\n", "the top level must be a mapping"),
        ("params: {}\n", "unknown key 'params'"),
        ("parameters: {}\n", "parameters: Dictionary should have at least 1 item"),
        ("parameters:\n  'bad path!': {type: int, low: 1, high: 2}\n", "parameter 'bad path!': must be a dotted config path"),
        ("parameters:\n  a.b: {type: categorical, choices: [x, y]}\n  a.c: {type: int, low: 1, high: 2, when: {a.b: z}}\n",
         "parameter 'a.c': when a.b='z' is not one of its choices ['x', 'y']"),
    ],
)
def test_malformed_space_files(write, text: str, message: str) -> None:
    path = write("x.yaml", text)
    with pytest.raises(ValueError, match=r"^" + str(path).replace(".", r"\.")) as err:
        load_space(path)
    assert message in str(err.value)


def test_missing_file() -> None:
    with pytest.raises(ValueError, match="nope.yaml: search space file not found"):
        load_space("nope.yaml")


@pytest.mark.parametrize(("name", "config_name"), [
    ("plasticity.yaml", "digits_mlp.yaml"),
    ("architecture.yaml", "digits_mlp.yaml"),
    ("continual.yaml", "split_digits.yaml"),
    ("continual.yaml", "permuted_digits.yaml"),
])
def test_shipped_spaces_fit_the_config(name: str, config_name: str) -> None:
    from pathlib import Path

    from evo.config import load_config
    from evo.tuning import apply_params, check_space

    root = Path(__file__).parents[2]
    config = load_config(root / "configs" / config_name)
    space = load_space(root / "search_spaces" / name)
    check_space(space, config)  # every parameter names a real field and its whole range is valid
    for seed in range(5):
        apply_params(config, space.sample(_trial(seed)))


def test_fixed_takes_the_values_the_space_holds(write) -> None:
    space = load_space(write("s.yaml", SPACE))
    base = {"plasticity.lr": 0.003, "plasticity.batch_size": 48, "plasticity.growth.strategy": "gradmax",
            "plasticity.growth.amount": 2, "plasticity.growth.interval": 50, "evolution.init.hidden": [32, 32]}
    assert space.fixed(base.__getitem__) == {**base, "evolution.init.hidden": "[32, 32]"}  # a list as Optuna stores it


def test_fixed_leaves_out_what_the_space_cannot_take(write) -> None:
    space = load_space(write("s.yaml", SPACE))
    base = {"plasticity.lr": 0.5,  # above high
            "plasticity.batch_size": 40,  # off the step-16 grid
            "plasticity.growth.strategy": "none",  # growth.amount's condition is not met...
            "plasticity.growth.amount": 2, "plasticity.growth.interval": 50,  # ...nor, through it, interval's
            "evolution.init.hidden": [64]}  # not a choice
    assert space.fixed(base.__getitem__) == {"plasticity.growth.strategy": "none"}
    assert space.fixed({}.__getitem__) == {}  # nothing known: everything is sampled


def test_fixed_tells_booleans_from_numbers() -> None:
    space = parse_space({"parameters": {"a.flag": {"type": "categorical", "choices": [1, 0]},
                                        "a.n": {"type": "int", "low": 0, "high": 3},
                                        "a.x": {"type": "float", "low": 0, "high": 1}}})
    assert space.fixed({"a.flag": True, "a.n": True, "a.x": True}.__getitem__) == {}
    assert space.fixed({"a.flag": 1, "a.n": 2, "a.x": 1}.__getitem__) == {"a.flag": 1, "a.n": 2, "a.x": 1.0}


def test_define_by_run_space_fixes_nothing() -> None:
    assert FunctionSpace(lambda trial: {"plasticity.lr": trial.suggest_float("lr", 0.1, 1)}).fixed({"plasticity.lr": 0.5}.__getitem__) == {}
