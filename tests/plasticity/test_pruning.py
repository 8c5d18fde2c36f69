"""Apoptosis during training: least important mature units go, newborns are protected, widths bounded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from evo.genome import Genome
from evo.plasticity import PlasticityConfig, PruningConfig, train
from evo.plasticity.pruning import prune_mature, select_victims

Data = tuple[Tensor, Tensor]


def test_select_victims_takes_the_least_important_mature_units() -> None:
    scores = torch.tensor([0.1, 0.9, 0.2, 0.05, 0.8, 0.3])
    age = torch.tensor([10.0, 10, 10, 2, 10, 10])  # unit 3 is newborn: least important but protected
    victims = select_victims(scores, age, PruningConfig(fraction=0.4, maturity=5), max_remove=5)
    assert victims.tolist() == [0, 2]


def test_select_victims_respects_threshold_bound_and_no_mature_units() -> None:
    scores = torch.tensor([0.1, 1.0, 0.5, 0.05])
    age = torch.full((4,), 10.0)
    cfg = PruningConfig(fraction=1.0, maturity=5, threshold=0.2)
    assert select_victims(scores, age, cfg, max_remove=4).tolist() == [0, 3]
    assert select_victims(scores, age, cfg, max_remove=1).tolist() == [3]
    assert select_victims(scores, torch.zeros(4), cfg, max_remove=4).numel() == 0


def test_prune_mature_compensates_the_bias(digits: Data, mlp: Genome) -> None:
    cfg = PruningConfig(fraction=0.25, maturity=0, criterion="activation")
    pruned, keep = prune_mature(mlp, mlp, 0, torch.full((12,), 9.0), cfg, 1, digits)  # type: ignore[misc]
    assert pruned.layers[0].width == len(keep) == 9
    h = torch.relu(digits[0] @ mlp.weights["layers.0.weight"].T + mlp.weights["layers.0.bias"])
    gone = torch.tensor([j for j in range(12) if j not in keep.tolist()])
    expected = mlp.weights["layers.1.bias"] + mlp.weights["layers.1.weight"][:, gone] @ h[:, gone].mean(0)
    assert torch.allclose(pruned.weights["layers.1.bias"], expected, atol=1e-5)
    assert torch.equal(pruned.weights["layers.0.weight"], mlp.weights["layers.0.weight"][keep])


def test_maturity_protects_newborn_units_in_training(digits: Data, mlp: Genome) -> None:
    """Grown units (zero fan-in, l1-smallest) would be pruned first if they were not protected."""
    cfg = PlasticityConfig(
        growth={"strategy": "gradmax", "interval": 10, "amount": 3},
        pruning={"strategy": "importance", "interval": 12, "fraction": 0.5, "maturity": 8, "criterion": "l1"},
    )
    result = train(mlp, *digits, cfg, steps=13)
    # step 10: 12→15; step 12: the 12 originals are mature (age 12), the 3 newborns (age 2) are not
    assert [e.split(": ")[1] for e in result.events] == [
        "gradmax grew layer 0 by 3 (12→15)",
        "pruned 6 units of layer 0 by l1 (15→9)",
    ]
    fan_in_l1 = result.genome.weights["layers.0.weight"].abs().sum(1)
    assert int((fan_in_l1 < 1.0).sum()) == 3  # the newborns (zero fan-in three steps ago) survived


@pytest.mark.parametrize("criterion", ["l1", "l2", "activation", "taylor"])
def test_pruning_stops_at_min_width(digits: Data, mlp: Genome, criterion: str) -> None:
    cfg = PlasticityConfig(
        min_width=9,
        pruning={"strategy": "importance", "interval": 2, "fraction": 0.5, "maturity": 0, "criterion": criterion},
    )
    result = train(mlp, *digits, cfg, steps=12)
    assert result.genome.layers[0].width == 9 and result.metrics["pruned"] == 3


def test_pruned_training_is_deterministic(digits: Data, mlp: Genome) -> None:
    cfg = PlasticityConfig(pruning={"strategy": "importance", "interval": 5, "maturity": 0, "criterion": "taylor"})
    a, b = (train(mlp, *digits, cfg, steps=16, seed=1) for _ in range(2))
    assert a.events == b.events and np.isclose(a.final_loss, b.final_loss)
