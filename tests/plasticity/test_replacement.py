"""Continual backprop: utility, which units are replaced, and how (fresh fan-in, zero fan-out)."""

from __future__ import annotations

import torch
from torch import Tensor

from evo.genome import Genome
from evo.plasticity import PlasticityConfig, ReplacementConfig, train
from evo.plasticity.replacement import Replacer, fan_out_magnitude, reinitialise, update_utility
from evo.plasticity.state import PlasticNet, UnitChange

Data = tuple[Tensor, Tensor]


def test_utility_is_a_running_mean_of_activity_times_fan_out() -> None:
    u = torch.zeros(3)
    for _ in range(200):
        u = update_utility(u, torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.5, 1.0, 9.0]), 0.99)
    assert torch.allclose(u, torch.tensor([0.5, 2.0, 0.0]) * (1 - 0.99**200), atol=1e-5)


def test_fan_out_magnitude_sums_the_next_layers_columns(mlp: Genome) -> None:
    expected = mlp.weights["layers.1.weight"].abs().sum(0)
    assert torch.allclose(fan_out_magnitude(mlp.weights, mlp, 0), expected)


def test_replacer_picks_lowest_utility_mature_units_at_the_accumulated_rate() -> None:
    r = Replacer(ReplacementConfig(strategy="cbp", rate=0.1, interval=1, maturity=5))
    utility = torch.tensor([0.5, 0.1, 0.3, 0.0, 0.2])
    age = torch.tensor([9.0, 9, 9, 1, 9])  # unit 3 is immature: never picked despite utility 0
    picks = [r.select(0, utility, age).tolist() for _ in range(5)]
    # 4 mature units × 0.1 per step: one replacement every 2.5 steps (fractions accumulate)
    assert picks == [[], [], [1], [], [1]]


def test_reinitialise_gives_fresh_fan_in_and_zero_fan_out(digits: Data, mlp: Genome) -> None:
    units = torch.tensor([2, 7])
    new = reinitialise(mlp, 0, units, torch.Generator().manual_seed(0))
    w0, w1 = new.weights["layers.0.weight"], new.weights["layers.1.weight"]
    assert torch.all(w1[:, units] == 0) and not torch.equal(w0[units], mlp.weights["layers.0.weight"][units])
    assert w0[units].abs().max() <= 1 / 8  # PyTorch's default bound 1/√fan_in
    others = [j for j in range(12) if j not in units.tolist()]
    assert torch.equal(w0[others], mlp.weights["layers.0.weight"][others])
    # the replaced units' output is not used yet: the net computes what the old one did without them
    silenced = dict(mlp.weights)
    silenced["layers.1.weight"] = w1.clone()
    with torch.no_grad():
        assert torch.allclose(new.to_module()(digits[0]), mlp.with_weights(silenced).to_module()(digits[0]))


def test_cbp_in_training_replaces_the_dead_units_first(digits: Data, mlp: Genome) -> None:
    """Units 0 and 3 of this net are dead ReLUs on the data (utility 0): CBP replaces exactly them."""
    w0 = mlp.weights["layers.0.weight"]
    h = torch.relu(digits[0] @ w0.T + mlp.weights["layers.0.bias"])
    assert (h.amax(0) == 0).nonzero().flatten().tolist() == [0, 3]
    plain = train(mlp, *digits, PlasticityConfig(), steps=21)
    assert torch.equal(plain.genome.weights["layers.0.weight"][[0, 3]], w0[[0, 3]])  # dead units never learn
    cfg = PlasticityConfig(replacement={"strategy": "cbp", "rate": 1 / 12 / 10, "interval": 10, "maturity": 5})
    result = train(mlp, *digits, cfg, steps=21)
    assert result.events == ("step 10: cbp replaced 1 units of layer 0", "step 20: cbp replaced 1 units of layer 0")
    fresh = result.genome.weights["layers.0.weight"]
    assert not torch.equal(fresh[0], w0[0]) and not torch.equal(fresh[3], w0[3])


def test_cbp_state_resets_age_and_utility(mlp: Genome) -> None:
    state = PlasticNet(mlp, PlasticityConfig(), "cpu", torch.Generator().manual_seed(0))
    for _ in range(50):
        state.tick()
    state.utility[0][:] = 1.0
    index = torch.arange(12)
    index[[3, 8]] = -1
    state.apply(UnitChange(0, reinitialise(mlp, 0, torch.tensor([3, 8]), torch.Generator()), index))
    assert state.age(0)[[3, 8]].tolist() == [0, 0] and state.utility[0][[3, 8]].tolist() == [0, 0]
    assert int((state.age(0) == 50).sum()) == 10
