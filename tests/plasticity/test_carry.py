"""plasticity.carry_optimizer: a child's optimiser starts from its parent's state, mapped through the operator."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from evo.backends import SerialBackend
from evo.config import ConfigError, load_config
from evo.evolution import Evolution
from evo.export import ExportFormat, export_genome
from evo.genome import Genome
from evo.operators.apoptosis import prune_neurons, remove_layer
from evo.operators.dropin import add_skip, deepen, widen
from evo.operators.registry import make_operator
from evo.plasticity import PlasticityConfig, train
from evo.plasticity.state import PlasticNet
from evo.store import RunStore
from evo.surgery import to_rows
from evo.tasks.supervised import SupervisedTask

Data = tuple[Tensor, Tensor]
State = dict[str, dict[str, Tensor]]
CARRY = PlasticityConfig(carry_optimizer=True, lr=0.01)


@pytest.fixture
def parent(digits: Data) -> Genome:
    """Two hidden layers (12, 8), trained 5 Adam steps with the switch on."""
    return train(Genome.mlp((64,), hidden=(12, 8), output_size=10, seed=0), *digits, CARRY, steps=5).genome


def first_state(child: Genome, config: PlasticityConfig = CARRY) -> State:
    """The child's optimiser state at its first step, as :func:`train` starts it."""
    net = PlasticNet(child, config, "cpu", torch.Generator().manual_seed(0))
    return {name: dict(net.optimizer.state[p]) for name, p in net.params.items() if p in net.optimizer.state}


def same(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_trained_genome_carries_its_optimizer_state_only_with_the_switch(digits: Data, mlp: Genome) -> None:
    carried = train(mlp, *digits, CARRY, steps=5).genome.optim_state
    assert set(carried) == set(mlp.weights)
    assert all(set(s) == {"exp_avg", "exp_avg_sq", "step"} and s["step"].item() == 5 for s in carried.values())
    assert all(s["exp_avg_sq"].abs().sum() > 0 for s in carried.values())
    assert not train(mlp, *digits, PlasticityConfig(lr=0.01), steps=5).genome.optim_state


def test_unchanged_tensors_start_with_their_parents_state_exactly(parent: Genome) -> None:
    child = add_skip(parent, np.random.default_rng(0), src=0, dst=2)
    state = first_state(child)
    assert set(state) == set(parent.weights)  # the new skip starts at zero (no state)
    assert all(same(state[name], dict(parent.optim_state[name])) for name in parent.weights)


def test_widened_layer_keeps_old_units_moments_and_zeroes_new_ones(parent: Genome) -> None:
    child = widen(parent, np.random.default_rng(0), layer=0, k=3, init="split")
    state = first_state(child)
    for name, dim in (("layers.0.weight", 0), ("layers.0.bias", 0), ("layers.1.weight", 1)):
        old, new = parent.optim_state[name], state[name]
        assert torch.equal(new["step"], old["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            rows = to_rows(new[key], dim, 15)
            assert torch.equal(rows[:12], to_rows(old[key], dim, 12)) and not rows[12:].any()
    assert same(state["layers.2.weight"], dict(parent.optim_state["layers.2.weight"]))


def test_pruned_layer_keeps_the_survivors_moments(parent: Genome, digits: Data) -> None:
    child = prune_neurons(parent, np.random.default_rng(0), layer=0, amount=4, data=digits)
    w, moments = parent.weights["layers.0.weight"], parent.optim_state["layers.0.weight"]["exp_avg"]
    keep = [next(j for j in range(12) if torch.equal(w[j], row)) for row in child.weights["layers.0.weight"]]
    state = first_state(child)
    assert len(keep) == 8 and torch.equal(state["layers.0.weight"]["exp_avg"], moments[keep])
    fan_out = parent.optim_state["layers.1.weight"]["exp_avg_sq"]
    assert torch.equal(state["layers.1.weight"]["exp_avg_sq"], fan_out[:, keep])


def test_a_new_layer_starts_at_zero_and_later_layers_keep_theirs(parent: Genome) -> None:
    deeper = first_state(deepen(parent, np.random.default_rng(0), position=1))
    assert "layers.1.weight" not in deeper and "layers.1.bias" not in deeper
    assert same(deeper["layers.2.weight"], dict(parent.optim_state["layers.1.weight"]))
    assert same(deeper["layers.3.bias"], dict(parent.optim_state["layers.2.bias"]))
    shallower = first_state(remove_layer(parent, np.random.default_rng(0), layer=0))
    assert "layers.0.weight" not in shallower  # folded W1·W0: no unit map, a fresh start
    assert same(shallower["layers.1.weight"], dict(parent.optim_state["layers.2.weight"]))


def test_the_childs_training_continues_the_carried_state(parent: Genome, digits: Data) -> None:
    child = widen(parent, np.random.default_rng(0), layer=1, k=2)
    carried = train(child, *digits, CARRY, steps=2).genome
    assert all(s["step"].item() == 7 for s in carried.optim_state.values())


def test_sgd_carries_its_momentum_and_starts_fresh_from_adams_state(parent: Genome, digits: Data) -> None:
    sgd = PlasticityConfig(carry_optimizer=True, lr=0.01, optimizer="sgd")
    assert not first_state(parent, sgd)  # Adam's moments are no momentum buffer
    trained = train(parent, *digits, sgd, steps=2).genome
    assert all(set(s) == {"momentum_buffer"} for s in trained.optim_state.values())
    assert same(first_state(trained, sgd)["layers.2.bias"], dict(trained.optim_state["layers.2.bias"]))


def test_with_the_switch_off_a_carried_state_changes_nothing(parent: Genome, digits: Data) -> None:
    plain = parent.replace(optim_state={})
    config = PlasticityConfig(lr=0.01)
    a, b = train(parent, *digits, config, steps=4, seed=3).genome, train(plain, *digits, config, steps=4, seed=3).genome
    assert not a.optim_state and all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not first_state(parent, config)


def test_the_state_survives_pickle_and_save_but_not_export(parent: Genome, tmp_path: Path) -> None:
    parent.save(tmp_path / "g.pt")
    for copy in (pickle.loads(pickle.dumps(parent)), Genome.load(tmp_path / "g.pt")):
        assert copy.optim_state.keys() == parent.optim_state.keys()
        assert all(same(dict(copy.optim_state[k]), dict(parent.optim_state[k])) for k in parent.optim_state)
    torch.save({"genome": parent.to_dict(), "weights": dict(parent.weights)}, tmp_path / "old.pt")
    assert not Genome.load(tmp_path / "old.pt").optim_state  # written before genomes carried state
    exported = torch.load(export_genome(parent, ExportFormat.STATE_DICT, tmp_path / "e.pt"), weights_only=True)
    assert set(exported) == {"genome", "weights", "preprocessing"}


def test_a_resumed_run_carrying_state_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    ops = [(make_operator({"op": "widen", "k": 2}), 0.5), (make_operator({"op": "prune_neurons", "amount": 1}), 0.5)]

    def iris(generations: int, store: RunStore | None = None) -> Evolution:
        cfg = load_config(None, ["task.dataset=iris", "evolution.population_size=3", "evolution.init.hidden=[6]",
                                 "evolution.eval_steps=3", "evolution.seed=1", "plasticity.carry_optimizer=true",
                                 f"evolution.generations={generations}"])
        return Evolution(cfg, SupervisedTask(cfg.task, cfg.plasticity), SerialBackend(), ops, store)

    straight = iris(3).run()
    store = RunStore.create(tmp_path / "run", "")
    iris(1, store).run()
    resumed = iris(3, store)
    resumed.restore(store.latest_checkpoint(), store)
    result = resumed.run()
    assert {i: ind.objectives for i, ind in result.individuals.items()} == {
        i: ind.objectives for i, ind in straight.individuals.items()}
    for i, ind in result.individuals.items():  # every child's training continued its parent's (3 + 3 steps or more)
        if ind.generation > 0:
            assert min(s["step"].item() for s in store.load_genome(i).optim_state.values()) >= 6
    best = store.load_genome(result.best.id)
    assert all(same(dict(best.optim_state[k]), dict(straight.best.genome.optim_state[k])) for k in best.weights)


def test_the_switch_needs_a_trained_lamarckian_task() -> None:
    with pytest.raises(ConfigError, match="plasticity.carry_optimizer: needs a supervised or custom task, not 'xor'"):
        load_config(None, ["task.kind=xor", "plasticity.carry_optimizer=true"])
    with pytest.raises(ConfigError, match="needs evolution.lamarckian: true"):
        load_config(None, ["evolution.lamarckian=false", "plasticity.carry_optimizer=true"])
