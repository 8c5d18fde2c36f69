"""Optimiser state through shape changes: survivors keep their moments, new units start at zero, steps kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from evo.genome import Genome
from evo.operators.dropin import widen
from evo.operators.importance import task_loss
from evo.plasticity import PlasticityConfig
from evo.plasticity.optim import make_optimizer, remap_rows
from evo.plasticity.replacement import reinitialise
from evo.plasticity.state import PlasticNet, UnitChange
from evo.surgery import gather_units, to_rows

Data = tuple[Tensor, Tensor]


def trained_state(genome: Genome, data: Data, optimizer: str = "adam", steps: int = 3) -> PlasticNet:
    state = PlasticNet(genome, PlasticityConfig(optimizer=optimizer, lr=0.01), "cpu", torch.Generator().manual_seed(0))
    for _ in range(steps):
        state.optimizer.zero_grad()
        task_loss(state.net(data[0]), data[1]).backward()
        state.optimizer.step()
    return state


def moments(state: PlasticNet, name: str) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in state.optimizer.state[state.params[name]].items()}


def test_remap_rows_picks_and_fills() -> None:
    t = torch.arange(12.0).reshape(3, 4)  # units along dim 1 with a block of 1
    out = remap_rows(t, 0, 3, torch.tensor([2, -1, 0]), fill=7.0)
    assert out.tolist() == [[8, 9, 10, 11], [7, 7, 7, 7], [0, 1, 2, 3]]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_growth_keeps_survivor_moments_and_zeroes_new(digits: Data, mlp: Genome, optimizer: str) -> None:
    state = trained_state(mlp, digits, optimizer)
    before = {name: moments(state, name) for name in ("layers.0.weight", "layers.0.bias", "layers.1.weight")}
    grown = widen(state.current(), np.random.default_rng(0), layer=0, k=3)
    state.apply(UnitChange(0, grown, torch.cat([torch.arange(12), torch.full((3,), -1)])))
    for name, old in before.items():
        dim = 1 if name == "layers.1.weight" else 0
        new = moments(state, name)
        assert new.keys() == old.keys()
        for key, value in old.items():
            if value.dim() == 0:  # Adam's step count
                assert torch.equal(new[key], value)
                continue
            rows_new, rows_old = to_rows(new[key], dim, 15), to_rows(value, dim, 12)
            assert torch.equal(rows_new[:12], rows_old) and torch.all(rows_new[12:] == 0)


def test_pruning_moves_moments_with_their_units(digits: Data, mlp: Genome) -> None:
    state = trained_state(mlp, digits)
    old = moments(state, "layers.1.weight")["exp_avg_sq"]
    keep = torch.tensor([0, 3, 5, 11])
    state.apply(UnitChange(0, gather_units(state.current(), 0, keep), keep))
    assert torch.equal(moments(state, "layers.1.weight")["exp_avg_sq"], old[:, keep])
    assert torch.equal(moments(state, "layers.0.weight")["step"], torch.tensor(3.0))
    # the optimiser holds exactly the new module's parameters and keeps working
    assert {id(p) for g in state.optimizer.param_groups for p in g["params"]} == {id(p) for p in state.net.parameters()}
    task_loss(state.net(digits[0]), digits[1]).backward()
    state.optimizer.step()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_optimiser_steps_are_fused_where_torch_can(digits: Data, mlp: Genome, optimizer: str) -> None:
    cfg = PlasticityConfig(optimizer=optimizer)
    assert make_optimizer(dict(mlp.to_module().named_parameters()), cfg).defaults["fused"] is True
    state = trained_state(mlp, digits, optimizer)
    grown = widen(state.current(), np.random.default_rng(0), layer=0, k=3)
    state.apply(UnitChange(0, grown, torch.cat([torch.arange(12), torch.full((3,), -1)])))
    assert state.optimizer.defaults["fused"] is True  # the optimiser rebuilt after growth too
    meta = {"w": torch.nn.Parameter(torch.empty(2, 2, device="meta"))}  # a device without fused steps
    assert not make_optimizer(meta, cfg).defaults["fused"]


def test_unit_records_follow_their_units(mlp: Genome) -> None:
    cfg = PlasticityConfig(growth={"ramp_steps": 4})
    state = PlasticNet(mlp, cfg, "cpu", torch.Generator().manual_seed(0))
    state.steps, state.born[0] = 11, 11 - torch.arange(12.0)  # unit u has lived u steps
    index = torch.tensor([5, -1, 2])
    state.apply(UnitChange(0, gather_units(mlp, 0, [5, 0, 2]), index))
    assert state.age(0).tolist() == [5, 0, 2] and state.scale[0].tolist() == [1, 0, 1]


@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["grow", "prune", "reinit"]), st.integers(0, 1), st.integers(1, 3)),
        min_size=1,
        max_size=5,
    )
)
@settings(max_examples=15, deadline=None)
def test_any_change_sequence_keeps_state_consistent(ops: list[tuple[str, int, int]]) -> None:
    """Module, optimiser state, unit records and masks agree in shape after any sequence of changes."""
    genome = Genome.mlp((6,), hidden=(5, 4), output_size=3)
    x, y = torch.rand(16, 6, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3
    cfg = PlasticityConfig(growth={"ramp_steps": 3})
    state = PlasticNet(genome, cfg, "cpu", torch.Generator().manual_seed(0))
    state.masks = {"layers.1.weight": torch.rand(4, 5, generator=torch.Generator().manual_seed(1)) < 0.5}
    rng = np.random.default_rng(0)
    for op, layer, k in ops:
        task_loss(state.net(x), y).backward()
        state.optimizer.step()
        width = state.genome.layers[layer].width
        if op == "grow":
            index = torch.cat([torch.arange(width), torch.full((k,), -1)])
            new = widen(state.current(), rng, layer=layer, k=k)
        elif op == "prune" and width > k:
            index = torch.arange(k, width)
            new = gather_units(state.current(), layer, index)
        else:
            index = torch.arange(width)
            index[:1] = -1
            new = reinitialise(state.current(), layer, torch.tensor([0]), torch.Generator())
        state.apply(UnitChange(layer, new, index))
    for param in state.params.values():
        moments_ = state.optimizer.state.get(param, {})
        assert all(v.shape == param.shape for k, v in moments_.items() if k != "step")
    for i in state.genome.hidden_layers:
        width = state.genome.layers[i].width
        assert state.age(i).shape == state.utility[i].shape == state.scale[i].shape == (width,)
    assert state.masks["layers.1.weight"].shape == state.params["layers.1.weight"].shape
    assert torch.all(state.params["layers.1.weight"][~state.masks["layers.1.weight"]] == 0)
