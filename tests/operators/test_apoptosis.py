from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits

from evo.genome import Genome, LayerKind, LayerSpec
from evo.operators.apoptosis import prune_neurons, removable_layers, remove_layer, set_dropout
from tests.operators._helpers import inputs, make_cnn, make_mlp, max_delta, outputs, randomise_skips, rng

TOL = 1e-5


def _data(genome: Genome, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return inputs(genome, n, seed=1), torch.randint(0, genome.output_size, (n,), generator=torch.Generator().manual_seed(1))


def _silence(genome: Genome, layer: int, unit: int, fan_in: bool) -> Genome:
    """Zero the fan-out (and optionally the fan-in weights) of one unit."""
    w = dict(genome.weights)
    w[f"layers.{layer + 1}.weight"] = w[f"layers.{layer + 1}.weight"].clone()
    block = genome.flatten_block(layer + 1)
    w[f"layers.{layer + 1}.weight"][:, unit * block : (unit + 1) * block] = 0
    for s, d in genome.skips:
        if s == layer:
            w[f"skips.{s}_{d}.weight"] = w[f"skips.{s}_{d}.weight"].clone()
            w[f"skips.{s}_{d}.weight"][:, unit] = 0
        if d == layer and fan_in:
            w[f"skips.{s}_{d}.weight"] = w[f"skips.{s}_{d}.weight"].clone()
            w[f"skips.{s}_{d}.weight"][unit] = 0
    if fan_in:
        w[f"layers.{layer}.weight"] = w[f"layers.{layer}.weight"].clone()
        w[f"layers.{layer}.weight"][unit] = 0
    return genome.with_weights(w)


@pytest.mark.parametrize("compensate", [False, True])
def test_pruning_a_unit_without_fan_out_changes_nothing(genome: Genome, compensate: bool) -> None:
    x = inputs(genome)
    for layer in genome.hidden_layers:
        silent = _silence(genome, layer, unit=1, fan_in=True)  # l1-least important: all its weights are 0
        pruned = prune_neurons(silent, rng(), layer=layer, amount=1, compensate=compensate, data=_data(genome))
        assert pruned.layers[layer].width == genome.layers[layer].width - 1
        assert max_delta(silent, pruned, x) <= TOL


def test_prunes_exactly_the_lowest_importance_units() -> None:
    g = Genome.mlp((3,), hidden=(5,), output_size=2, seed=0)
    w = dict(g.weights)
    scale = torch.tensor([3.0, 0.1, 2.0, 0.2, 1.0])  # units 1 and 3 are the weakest
    w["layers.0.weight"] = torch.ones(5, 3) * scale[:, None]
    w["layers.1.weight"] = torch.ones(2, 5) * scale
    pruned = prune_neurons(g.with_weights(w), rng(), layer=0, amount=2, importance="l1")
    assert torch.equal(pruned.weights["layers.0.weight"][:, 0], scale[[0, 2, 4]])
    assert torch.equal(pruned.weights["layers.0.bias"], g.weights["layers.0.bias"][[0, 2, 4]])


def test_activation_importance_prunes_dead_units() -> None:
    g = make_mlp()
    w = dict(g.weights)
    w["layers.1.bias"] = w["layers.1.bias"].clone()
    w["layers.1.weight"] = w["layers.1.weight"].clone()
    w["layers.1.weight"][[0, 3]] = 0
    w["layers.1.bias"][[0, 3]] = -1.0  # relu(-1) = 0 on every input
    for s, d in g.skips:
        if d == 1:
            w[f"skips.{s}_{d}.weight"][[0, 3]] = 0
    dead = g.with_weights(w)
    pruned = prune_neurons(dead, rng(), layer=1, amount=2, importance="activation", data=_data(g))
    assert max_delta(dead, pruned, inputs(g)) <= TOL


def test_compensation_keeps_the_mean_output_exactly(genome: Genome) -> None:
    """Before an identity output layer the compensated pruning keeps E[output] on the calibration batch."""
    layer = genome.num_layers - 2  # feeds only the identity output layer
    data = _data(genome, 128)
    pruned = prune_neurons(genome, rng(), layer=layer, amount=0.5, compensate=True, data=data)
    assert torch.allclose(outputs(genome, data[0]).mean(0), outputs(pruned, data[0]).mean(0), atol=TOL)


def test_compensation_across_flatten_is_exact_in_the_mean() -> None:
    layers = [LayerSpec(LayerKind.CONV, 5, pool=2), LayerSpec(LayerKind.LINEAR, 3, "identity")]
    g = Genome.random((2, 6, 6), layers, seed=3)
    data = _data(g, 128)
    pruned = prune_neurons(g, rng(), layer=0, amount=3, importance="l2", data=data)
    assert torch.allclose(outputs(g, data[0]).mean(0), outputs(pruned, data[0]).mean(0), atol=TOL)


def _trained_digits_mlp() -> tuple[Genome, torch.Tensor]:
    digits = load_digits()
    x = torch.tensor(digits.data[:600], dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target[:600])
    g = Genome.mlp((64,), hidden=(32, 32), output_size=10, seed=0)
    net = g.to_module()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return g.from_module(net), x


@pytest.mark.parametrize("layer", [0, 1])
def test_bias_compensation_reduces_output_error_on_a_trained_network(layer: int) -> None:
    g, x = _trained_digits_mlp()
    data = (x, torch.zeros(len(x), dtype=torch.long))
    ref = outputs(g, x)
    errors = {}
    for compensate in (False, True):
        pruned = prune_neurons(g, rng(), layer=layer, amount=0.5, importance="l1", compensate=compensate, data=data)
        errors[compensate] = float((outputs(pruned, x) - ref).pow(2).mean())
    assert errors[True] < errors[False]


def test_compensation_without_data_is_skipped() -> None:
    g = make_mlp()
    assert max_delta(
        prune_neurons(g, rng(), layer=0, amount=2, compensate=True),
        prune_neurons(g, rng(), layer=0, amount=2, compensate=False),
        inputs(g),
    ) == 0.0


@pytest.mark.parametrize(("amount", "match"), [(6, "1..5"), (0.0, r"\(0, 1\)"), (1.5, r"\(0, 1\)"), (0, "1..5")])
def test_pruning_too_much_is_refused(amount: float, match: str) -> None:
    with pytest.raises(ValueError, match=f"prune_neurons: amount.*{match}"):
        prune_neurons(make_mlp(), rng(), layer=0, amount=amount)


def test_prune_fraction_and_layer_choice() -> None:
    g = make_mlp()
    pruned = prune_neurons(g, rng(2), amount=0.5)
    assert sum(p.width for p in pruned.layers) < sum(p.width for p in g.layers)
    with pytest.raises(ValueError, match="prune_neurons: layer"):
        prune_neurons(g, rng(), layer=3)
    with pytest.raises(ValueError, match="needs data"):
        prune_neurons(g, rng(), layer=0, importance="taylor")


def test_remove_identity_linear_layer_is_exact_and_folds_the_skip() -> None:
    layers = [LayerSpec(LayerKind.LINEAR, 6), LayerSpec(LayerKind.LINEAR, 5, "identity"), LayerSpec(LayerKind.LINEAR, 3, "identity")]
    g = randomise_skips(Genome.random((4,), layers, skips=[(0, 2)], seed=5))
    removed = remove_layer(g, rng(), layer=1)
    assert removed.num_layers == 2 and removed.skips == ()
    assert max_delta(g, removed, inputs(g)) <= TOL


def test_remove_layer_remaps_skips_and_refuses_bad_layers() -> None:
    g = make_mlp()  # 7→6→5→4→3, skips (0, 2), (1, 3)
    removed = remove_layer(g, rng(), layer=0)
    assert [s.width for s in removed.layers] == [5, 4, 3] and removed.skips == ((0, 2),)
    assert removed.weights["layers.0.weight"].shape == (5, 7)
    with pytest.raises(ValueError, match="remove_layer: layer"):
        remove_layer(g, rng(), layer=3)  # the output layer
    single = Genome.mlp((3,), hidden=(4,), output_size=2)
    assert removable_layers(single) == []
    with pytest.raises(ValueError, match="remove_layer"):
        remove_layer(single, rng())


def test_remove_conv_layer_only_when_shape_neutral() -> None:
    g = make_cnn()  # conv 2→4 (no pool), 4→3 (pool), 3→5, 5→4 (1×1), linear, out
    assert removable_layers(g) == [4]
    layers = [LayerSpec(LayerKind.CONV, 2), LayerSpec(LayerKind.CONV, 2, pool=2), LayerSpec(LayerKind.LINEAR, 3, "identity")]
    square = Genome.random((2, 4, 4), layers, seed=0)
    assert removable_layers(square) == [0]
    removed = remove_layer(square, rng())
    assert removed.num_layers == 2 and outputs(removed, inputs(square)).shape == (16, 3)


def test_set_dropout_changes_only_training_behaviour(genome: Genome) -> None:
    dropped = set_dropout(genome, rng(), layer=0, p=0.5)
    assert dropped.layers[0].dropout == 0.5
    assert max_delta(genome, dropped, inputs(genome)) == 0.0
    with pytest.raises(ValueError, match="set_dropout: p"):
        set_dropout(genome, rng(), p=1.0)
