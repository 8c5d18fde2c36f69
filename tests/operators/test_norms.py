"""add_norm / remove_norm: BatchNorm inserted as an identity morphism, folded out exactly; norms follow their units."""

from __future__ import annotations

import pytest
import torch

from evo.genome import Genome, LayerSpec
from evo.operators import add_norm, prune_neurons, remove_layer, remove_norm, widen
from tests.operators._helpers import CONV, LINEAR, inputs, make_cnn1d, max_delta, rng


def calibration(genome: Genome, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return inputs(genome, n, seed=1), torch.arange(n) % genome.output_size


@pytest.mark.parametrize("with_data", [True, False])
def test_batch_norm_is_inserted_as_the_identity_in_eval_mode(genome: Genome, with_data: bool) -> None:
    x, data = inputs(genome), calibration(genome) if with_data else None
    free = [i for i in genome.hidden_layers if genome.layers[i].norm is None]
    for layer in free:
        normed = add_norm(genome, rng(), layer=layer, kind="batch", data=data)
        assert normed.layers[layer].norm == "batch"
        assert max_delta(genome, normed, x) < 1e-5, layer
    assert free


def test_batch_norm_statistics_come_from_the_calibration_batch() -> None:
    genome = Genome.random((2, 10), [LayerSpec(CONV, 3), LayerSpec(LINEAR, 2, "identity")], seed=0)
    data = calibration(genome)
    normed = add_norm(genome, rng(), layer=0, kind="batch", data=data)
    z = genome.to_module().layers[0](data[0]).detach()  # the conv's output: what the norm sees
    mean, var = z.mean(dim=(0, 2)), z.var(dim=(0, 2), unbiased=False)
    assert torch.allclose(normed.weights["norms.0.running_mean"], mean, atol=1e-6)
    assert torch.allclose(normed.weights["norms.0.running_var"], var, atol=1e-6)
    assert torch.allclose(normed.weights["norms.0.weight"], torch.sqrt(var + 1e-5))
    net = normed.to_module().train()  # training mode normalises with the batch's own statistics: the same ones
    with torch.no_grad():
        assert torch.allclose(net(data[0]), genome.to_module()(data[0]), atol=1e-5)


def test_layer_norm_fit_is_closer_than_a_fresh_one(genome: Genome) -> None:
    x, data = inputs(genome), calibration(genome, 128)
    layer = next(i for i in genome.hidden_layers if genome.layers[i].norm is None)
    fitted = add_norm(genome, rng(), layer=layer, kind="layer", data=data)
    fresh = add_norm(genome, rng(), layer=layer, kind="layer")
    assert fitted.layers[layer].norm == "layer" and set(fitted.weights) == set(fresh.weights)
    assert max_delta(genome, fitted, x) < max_delta(genome, fresh, x)


def test_remove_norm_folds_a_batch_norm_exactly() -> None:
    genome = make_cnn1d()  # batch norms with non-trivial statistics, a skip into a normed layer
    x = inputs(genome)
    for layer in (0, 2, 3):
        removed = remove_norm(genome, rng(), layer=layer)
        assert removed.layers[layer].norm is None and not any(k.startswith(f"norms.{layer}.") for k in removed.weights)
        assert max_delta(genome, removed, x) < 1e-5, layer


def test_norm_entries_follow_their_units_through_widen_and_prune() -> None:
    genome = make_cnn1d()
    grown = widen(genome, rng(3), layer=0, k=3, init="split")
    stats = {name: grown.weights[f"norms.0.{name}"] for name in ("weight", "bias", "running_mean", "running_var")}
    for name, values in stats.items():
        assert len(values) == 7 and torch.equal(values[:4], genome.weights[f"norms.0.{name}"])
        assert all(any(torch.equal(v, old) for old in values[:4]) for v in values[4:])  # copies of their sources
    pruned = prune_neurons(genome, rng(), layer=3, amount=2)
    kept = [i for i in range(5) if any(torch.equal(pruned.weights["layers.3.weight"][j], genome.weights["layers.3.weight"][i]) for j in range(3))]
    assert torch.equal(pruned.weights["norms.3.running_var"], genome.weights["norms.3.running_var"][kept])


def test_remove_layer_folds_the_removed_layers_batch_norm() -> None:
    layers = [LayerSpec(LINEAR, 5), LayerSpec(LINEAR, 4, "identity", norm="batch"), LayerSpec(LINEAR, 3, "identity")]
    genome = Genome.random((6,), layers, seed=0)
    genome = genome.with_weights({k: v + 0.3 if k.startswith("norms.") else v for k, v in genome.weights.items()})
    assert max_delta(genome, remove_layer(genome, rng(), layer=1), inputs(genome)) < 1e-5


def test_norm_operators_refuse_what_they_cannot_do() -> None:
    genome = make_cnn1d()
    with pytest.raises(ValueError, match=r"add_norm: layer must be one of \[1\]"):
        add_norm(genome, rng(), layer=0)
    with pytest.raises(ValueError, match="add_norm: kind must be one of"):
        add_norm(genome, rng(), kind="instance")
    with pytest.raises(ValueError, match="remove_norm: genome .* has no layer"):
        remove_norm(Genome.mlp((3,), (4,), 2), rng())
