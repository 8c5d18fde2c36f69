from __future__ import annotations

import pytest
import torch

from evo.genome import Genome
from evo.operators.importance import CRITERIA, capture_outputs, layer_outputs, unit_importance
from tests.operators._helpers import inputs, make_mlp


def _data(genome: Genome, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    return inputs(genome, n), torch.randint(0, genome.output_size, (n,), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("criterion", CRITERIA)
def test_scores_have_layer_width_and_are_non_negative(genome: Genome, criterion: str) -> None:
    for layer in genome.hidden_layers:
        scores = unit_importance(genome, layer, criterion, _data(genome))
        assert scores.shape == (genome.layers[layer].width,)
        assert scores.dtype == torch.float32 and bool((scores >= 0).all())


def test_l1_and_l2_are_norms_of_fan_in_and_fan_out() -> None:
    g = Genome.mlp((3,), hidden=(4,), output_size=2, seed=1)
    w_in, w_out = g.weights["layers.0.weight"], g.weights["layers.1.weight"]
    assert torch.allclose(unit_importance(g, 0, "l1"), w_in.abs().sum(1) + w_out.abs().sum(0))
    assert torch.allclose(unit_importance(g, 0, "l2"), (w_in.pow(2).sum(1) + w_out.pow(2).sum(0)).sqrt())


def test_l1_counts_every_flattened_position_of_a_conv_channel() -> None:
    g = Genome.cnn((1, 4, 4), channels=(3,), hidden=(), output_size=2, pool=2)
    w_out = g.weights["layers.1.weight"].reshape(2, 3, 4)  # 2×2 positions per channel
    expected = g.weights["layers.0.weight"].abs().flatten(1).sum(1) + w_out.abs().sum(dim=(0, 2))
    assert torch.allclose(unit_importance(g, 0, "l1"), expected)


def test_activation_is_mean_absolute_output_and_zero_for_dead_units() -> None:
    g = make_mlp()
    w = dict(g.weights)
    w["layers.0.weight"] = w["layers.0.weight"].clone()
    w["layers.0.bias"] = w["layers.0.bias"].clone()
    w["layers.0.weight"][2] = 0
    w["layers.0.bias"][2] = -1.0
    g = g.with_weights(w)
    data = _data(g)
    scores = unit_importance(g, 0, "activation", data)
    assert scores[2] == 0
    assert torch.allclose(scores, layer_outputs(g, data[0], [0])[0].abs().mean(0))


def test_taylor_is_normalised_and_matches_autograd() -> None:
    g = make_mlp()
    x, y = _data(g)
    scores = unit_importance(g, 1, "taylor", (x, y))
    assert torch.isclose(scores.norm(), torch.tensor(1.0))
    net = g.to_module().eval()
    out, h = capture_outputs(net, x, [1], keep_grad=True)
    torch.nn.functional.cross_entropy(out, y).backward()
    theta = (h[1].grad * h[1]).mean(0).abs()
    assert torch.allclose(scores, theta / theta.norm(), atol=1e-6)


def test_taylor_uses_mse_for_float_targets() -> None:
    g = make_mlp()
    x = inputs(g)
    y = torch.randn(len(x), g.output_size, generator=torch.Generator().manual_seed(0))
    scores = unit_importance(g, 0, "taylor", (x, y))
    assert scores.shape == (6,) and torch.isfinite(scores).all()


def test_data_criteria_need_valid_data() -> None:
    g = make_mlp()
    with pytest.raises(ValueError, match="needs data"):
        unit_importance(g, 0, "taylor")
    with pytest.raises(ValueError, match="data x must have shape"):
        unit_importance(g, 0, "activation", (torch.zeros(4, 3), torch.zeros(4)))
    with pytest.raises(ValueError, match="pair of tensors"):
        unit_importance(g, 0, "activation", torch.zeros(4, 7))  # type: ignore[arg-type]


def test_bad_criterion_and_layer() -> None:
    with pytest.raises(ValueError, match="criterion must be one of"):
        unit_importance(make_mlp(), 0, "random")
    with pytest.raises(ValueError, match="hidden layer"):
        unit_importance(make_mlp(), 3, "l1")


def test_capture_outputs_takes_hidden_layers_only() -> None:
    """The output layer's Identity is not called in the forward pass (a hook on it would never fire)."""
    net = make_mlp().to_module()
    x = inputs(make_mlp(), 4)
    with pytest.raises(ValueError, match="must be hidden layers"):
        capture_outputs(net, x, [len(net.layers) - 1])


def test_capture_outputs_sees_hidden_identity_layers() -> None:
    g = Genome.mlp((5,), (6, 4), 3, activation="identity")
    x = torch.randn(8, 5)
    out, captured = capture_outputs(g.to_module(), x, [0, 1])
    w = g.weights
    h0 = x @ w["layers.0.weight"].T + w["layers.0.bias"]
    h1 = h0 @ w["layers.1.weight"].T + w["layers.1.bias"]
    assert torch.allclose(captured[0], h0, atol=1e-6) and torch.allclose(captured[1], h1, atol=1e-6)
    assert torch.allclose(out, h1 @ w["layers.2.weight"].T + w["layers.2.bias"], atol=1e-6)
