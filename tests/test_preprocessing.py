"""Preprocessing: a checked JSON round trip, the RawInputs module, and its place in a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from evo.errors import DamagedRunError, DataError
from evo.preprocessing import PREPROCESSING_JSON, Preprocessing, RawInputs
from evo.store import RunStore

STANDARDISED = Preprocessing(scale=255.0, mean=(0.5, 0.25), std=(2.0, 1.0), classes=("cat", "dog", "emu"))


@pytest.mark.parametrize("prep", [Preprocessing(), STANDARDISED, Preprocessing(16.0, classes=(3, 5, 9))])
def test_json_round_trip(prep: Preprocessing) -> None:
    assert Preprocessing.from_json(prep.to_json(), "p.json") == prep


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "p.json: not a preprocessing description"),
        ({"scale": 1.0, "shift": 2}, "p.json: not a preprocessing description"),
        ({"mean": [1.0, 2.0], "std": [1.0]}, r"p.json: malformed.*mean and std must come together"),
        ({"mean": [0.0]}, r"p.json: malformed.*mean and std must come together"),
        ({"mean": "abc", "std": "abc"}, r"p.json: malformed.*could not convert"),
        ({"scale": 0}, r"p.json: malformed.*scale must be a positive number"),
        ({"classes": [True, False]}, r"p.json: malformed.*True is not an integer"),
        ({"classes": [[1]]}, r"p.json: malformed"),
    ],
)
def test_from_dict_names_what_is_wrong(data: Any, message: str) -> None:
    with pytest.raises(DataError, match=message):
        Preprocessing.from_dict(data, "p.json")


def test_wrap_is_the_network_itself_when_nothing_changes_the_inputs() -> None:
    net = nn.Linear(2, 3)
    assert Preprocessing(classes=(0, 1, 2)).wrap(net, (2,)) is net


def test_wrap_divides_then_standardises_per_element() -> None:
    wrapped = STANDARDISED.wrap(nn.Identity(), (2,))
    assert isinstance(wrapped, RawInputs)
    out = wrapped(torch.tensor([[255.0, 0.0]]))
    assert torch.equal(out, torch.tensor([[(1.0 - 0.5) / 2.0, -0.25]]))
    assert set(wrapped.state_dict()) == {"scale", "mean", "std"}  # buffers: they travel with every export
    with pytest.raises(DataError, match="2 means for an input of 3 elements"):
        STANDARDISED.wrap(nn.Identity(), (3,))


def test_labels_are_the_datas_own() -> None:
    assert STANDARDISED.labels(torch.tensor([2, 0])) == ["emu", "cat"]
    with pytest.raises(DataError, match="no class labels"):
        Preprocessing().labels(torch.tensor([0]))


def test_a_run_directory_records_it(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", "a: 1\n")
    assert store.load_preprocessing() is None  # a run from before it was recorded
    store.save_preprocessing(STANDARDISED)
    assert store.load_preprocessing() == STANDARDISED
    (store.root / PREPROCESSING_JSON).write_text('{"scale": ')
    with pytest.raises(DamagedRunError, match=r"preprocessing.json: preprocessing description is not JSON"):
        store.load_preprocessing()
