"""GradMax growth, the widen fallbacks and gradual DropIn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from evo.genome import Genome
from evo.operators.importance import task_loss
from evo.plasticity import PlasticityConfig, train
from evo.plasticity.growth import RELU_BIAS, gradmax_fan_out, gradmax_matrix, grow
from evo.plasticity.state import PlasticNet, UnitChange

Data = tuple[Tensor, Tensor]
K = 3


def loss_and_new_fan_in_grad(genome: Genome, data: Data, width: int) -> tuple[float, float]:
    """Loss of ``genome`` and the gradient norm of its new units' fan-in (rows ``width:`` of layer 0)."""
    net = genome.to_module()
    loss = task_loss(net(data[0]), data[1])
    loss.backward()
    grad = net.layers[0].weight.grad
    assert grad is not None
    return float(loss.detach()), float(grad[width:].norm())


def test_gradmax_fan_out_is_the_top_left_singular_vectors() -> None:
    m = torch.randn(10, 20, generator=torch.Generator().manual_seed(0))
    fan_out = gradmax_fan_out(m, K, scale=0.5)
    u = torch.linalg.svd(m.double())[0][:, :K].float()
    assert fan_out.norm() == pytest.approx(0.5, rel=1e-5)
    cos = (fan_out / fan_out.norm(dim=0)).T @ u
    assert torch.allclose(cos.abs(), torch.eye(K), atol=1e-5)


def test_gradmax_beats_random_fan_out_and_preserves_the_loss(digits: Data) -> None:
    genome = Genome.mlp((64,), hidden=(12,), output_size=10, activation="tanh", seed=1)
    with torch.no_grad():
        base_loss = float(task_loss(genome.to_module()(digits[0]), digits[1]))
    grown, used = grow(genome, 0, K, "gradmax", np.random.default_rng(0), digits, scale=0.1)
    loss, grad_gradmax = loss_and_new_fan_in_grad(grown, digits, 12)
    assert used == "gradmax" and loss == pytest.approx(base_loss, abs=1e-6)  # zero fan-in: tanh(0) = 0
    randoms = []
    for seed in range(10):  # same norm, random directions
        w = dict(grown.weights)
        w["layers.1.weight"] = w["layers.1.weight"].clone()
        random = torch.randn(10, K, generator=torch.Generator().manual_seed(seed))
        w["layers.1.weight"][:, 12:] = random * 0.1 / random.norm()
        randoms.append(loss_and_new_fan_in_grad(grown.with_weights(w), digits, 12)[1])
    assert grad_gradmax >= max(randoms) and grad_gradmax > 1.2 * float(np.mean(randoms)) > 0
    # and zero fan-out growth gives the new fan-in no gradient at all
    zero, _ = grow(genome, 0, K, "zero", np.random.default_rng(0), digits)
    assert loss_and_new_fan_in_grad(zero, digits, 12)[1] == 0.0


def test_gradmax_relu_units_sit_on_the_linear_side(digits: Data, mlp: Genome) -> None:
    grown, _ = grow(mlp, 0, K, "gradmax", np.random.default_rng(0), digits, scale=0.1)
    assert torch.all(grown.weights["layers.0.weight"][12:] == 0)
    assert torch.all(grown.weights["layers.0.bias"][12:] == RELU_BIAS)
    with torch.no_grad():
        base = float(task_loss(mlp.to_module()(digits[0]), digits[1]))
    loss, grad = loss_and_new_fan_in_grad(grown, digits, 12)
    assert loss == pytest.approx(base, abs=1e-4) and grad > 0


def test_gradmax_matrix_matches_its_definition(digits: Data, mlp: Genome) -> None:
    """M = E[dL/dz_(l+1) h_(l-1)^T]: for layer 0, the output's gradient times the input."""
    x, y = digits[0][:16], digits[1][:16]
    net = mlp.to_module()
    z = net.layers[1](net.post[0](net.layers[0](x)))
    z.retain_grad()
    task_loss(z, y).backward()
    assert z.grad is not None
    assert torch.allclose(gradmax_matrix(mlp, 0, (x, y)), z.grad.T @ x, atol=1e-6)


@pytest.mark.parametrize("strategy", ["zero", "split"])
def test_function_preserving_widen_strategies(digits: Data, mlp: Genome, strategy: str) -> None:
    grown, used = grow(mlp, 0, K, strategy, np.random.default_rng(0), digits)
    assert used == strategy and grown.layers[0].width == 12 + K
    assert torch.allclose(grown.to_module()(digits[0]), mlp.to_module()(digits[0]), atol=1e-5)


def test_gradmax_on_conv_falls_back_to_zero_fan_out(digits: Data) -> None:
    genome = Genome.cnn((1, 8, 8), channels=(4,), hidden=(), output_size=10, seed=0)
    x = digits[0].reshape(-1, 1, 8, 8)
    grown, used = grow(genome, 0, 2, "gradmax", np.random.default_rng(0), (x, digits[1]))
    assert used == "zero" and grown.layers[0].width == 6


def test_gradual_dropin_ramps_new_units_from_zero_to_one(digits: Data, mlp: Genome) -> None:
    cfg = PlasticityConfig(growth={"ramp_steps": 4})
    state = PlasticNet(mlp, cfg, "cpu", torch.Generator().manual_seed(0))
    grown, _ = grow(mlp, 0, K, "random", np.random.default_rng(0), digits)  # not preserving on its own
    state.apply(UnitChange(0, grown, torch.cat([torch.arange(12), torch.full((K,), -1)])))
    with torch.no_grad():
        assert torch.allclose(state.net(digits[0]), mlp.to_module()(digits[0]), atol=1e-5)  # scale 0 at birth
    seen = []
    for _ in range(5):
        seen.append(float(state.scale[0][-1]))
        state.tick()
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0] and torch.all(state.scale[0][:12] == 1)


def test_ramping_units_are_folded_into_the_returned_genome(digits: Data, mlp: Genome) -> None:
    cfg = PlasticityConfig(growth={"strategy": "random", "interval": 5, "ramp_steps": 100})
    state = PlasticNet(mlp, cfg, "cpu", torch.Generator().manual_seed(0))
    grown, _ = grow(mlp, 0, K, "random", np.random.default_rng(0), digits)
    state.apply(UnitChange(0, grown, torch.cat([torch.arange(12), torch.full((K,), -1)])))
    for _ in range(30):
        state.tick()
    with torch.no_grad():
        assert torch.allclose(state.effective().to_module()(digits[0]), state.net(digits[0]), atol=1e-5)
    result = train(mlp, *digits, cfg, steps=12)
    assert result.genome.layers[0].width == 12 + 2 * 4  # grew twice by the default amount


def test_growth_respects_max_width(digits: Data, mlp: Genome) -> None:
    cfg = PlasticityConfig(max_width=15, growth={"strategy": "gradmax", "interval": 2, "amount": 2})
    result = train(mlp, *digits, cfg, steps=20)
    assert result.genome.layers[0].width == 15 and result.metrics["grown"] == 3
