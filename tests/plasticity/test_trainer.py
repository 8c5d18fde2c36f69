"""The training loop: step counting, determinism, divergence, devices, losses, input checks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from evo.genome import Genome, LayerKind, LayerSpec
from evo.plasticity import Diverged, PlasticityConfig, train
from evo.plasticity.trainer import TrainResult, _batches, _samples, learning_rate, steps_per_epoch

Data = tuple[Tensor, Tensor]

PLASTIC = PlasticityConfig(
    growth={"strategy": "gradmax", "interval": 10, "amount": 2, "ramp_steps": 5},
    pruning={"strategy": "importance", "interval": 15, "maturity": 5},
    replacement={"strategy": "cbp", "rate": 0.05, "maturity": 5},
    rewiring={"method": "rigl", "density": 0.5, "interval": 10},
)


def test_default_steps_are_epochs_over_batches(digits: Data, mlp: Genome) -> None:
    result = train(mlp, *digits, PlasticityConfig(epochs=2, batch_size=64))
    assert result.steps == 2 * math.ceil(200 / 64)
    assert result.samples == 2 * 200  # every epoch sees every sample once


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 50), batch_size=st.integers(1, 20), steps=st.integers(0, 40))
def test_sample_count_is_the_sum_of_the_batches(n: int, batch_size: int, steps: int) -> None:
    batches = _batches(n, batch_size, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert _samples(steps, n, batch_size) == sum(len(b) for b in itertools.islice(batches, steps))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 50), batch_size=st.integers(1, 20))
def test_an_epoch_covers_every_sample_once_without_one_sample_batches(n: int, batch_size: int) -> None:
    batches = list(itertools.islice(_batches(n, batch_size, torch.Generator().manual_seed(0), torch.device("cpu")),
                                    steps_per_epoch(n, batch_size)))
    assert sorted(torch.cat(batches).tolist()) == list(range(n))
    assert all(len(b) > 1 for b in batches) or batch_size == 1


def test_batch_norm_trains_when_an_epoch_would_end_on_one_sample() -> None:
    layers = [LayerSpec(LayerKind.LINEAR, 8, "relu", norm="batch"), LayerSpec(LayerKind.LINEAR, 3, "identity")]
    genome = Genome.random((4,), layers, seed=0)
    x, y = torch.randn(33, 4), torch.randint(0, 3, (33,))  # 33 = 32 + 1
    result = train(genome, x, y, PlasticityConfig(batch_size=32, epochs=2))
    assert result.steps == 2 and result.samples == 66


def test_training_lowers_the_loss(digits: Data, mlp: Genome) -> None:
    net = mlp.to_module()
    with torch.no_grad():
        before = float(torch.nn.functional.cross_entropy(net(digits[0]), digits[1]))
    result = train(mlp, *digits, PlasticityConfig(), steps=150)
    assert isinstance(result, TrainResult)
    assert result.final_loss < 0.5 * before
    assert result.genome.layers == mlp.layers and result.events == ()


def test_same_seed_same_result_other_seed_differs(digits: Data, mlp: Genome) -> None:
    a, b = (train(mlp, *digits, PLASTIC, steps=40, seed=3) for _ in range(2))
    c = train(mlp, *digits, PLASTIC, steps=40, seed=4)
    assert a.events == b.events and a.final_loss == b.final_loss
    assert all(torch.equal(a.genome.weights[k], b.genome.weights[k]) for k in a.genome.weights)
    assert a.final_loss != c.final_loss


def test_all_strategies_together_give_a_valid_plain_genome(digits: Data, mlp: Genome) -> None:
    result = train(mlp, *digits, PLASTIC, steps=40)
    assert {"grown", "pruned", "replaced", "rewired", "density", "width_0"} <= result.metrics.keys()
    assert result.metrics["grown"] > 0 and result.metrics["pruned"] > 0 and result.metrics["rewired"] > 0
    assert (
        result.genome.layers[0].width
        == result.metrics["width_0"]
        == 12 + result.metrics["grown"] - result.metrics["pruned"]
    )
    assert all(v.device.type == "cpu" for v in result.genome.weights.values())
    out = result.genome.to_module()(digits[0])
    assert out.shape == (200, 10) and torch.isfinite(out).all()


def test_nan_loss_raises_diverged_with_the_work_done(digits: Data, mlp: Genome) -> None:
    x = digits[0].clone()
    x[5, 0] = math.nan
    with pytest.raises(Diverged, match=r"loss became nan at step 0") as info:
        train(mlp, x, digits[1], PlasticityConfig(batch_size=200), steps=3)
    assert isinstance(info.value, FloatingPointError)
    assert (info.value.steps, info.value.samples) == (1, 200)


def test_mse_regression(mlp: Genome) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(100, 64, generator=gen)
    y = torch.randn(100, 10, generator=gen)
    result = train(mlp, x, y, PlasticityConfig(), steps=30, loss="mse")
    assert math.isfinite(result.final_loss) and result.steps == 30


def test_label_smoothing_caps_the_confidence_it_trains_for(digits: Data, mlp: Genome) -> None:
    """Smoothed targets put 1 - s + s/K on the true class: a fitted network's confidence settles near
    there, where plain cross-entropy drives it towards 1."""
    x, y = digits

    def confidence(smoothing: float) -> float:
        config = PlasticityConfig(label_smoothing=smoothing, epochs=60, lr=0.01)
        net = train(mlp, x, y, config).genome.to_module().eval()
        with torch.no_grad():
            return float(net(x).softmax(dim=1).max(dim=1).values.mean())

    plain, smoothed = confidence(0.0), confidence(0.5)
    assert plain > 0.95
    assert 0.45 < smoothed < 0.7  # the smoothed target's top share: 1 - 0.5 + 0.05 = 0.55


def test_dropout_override_is_for_training_only(digits: Data) -> None:
    genome = Genome.mlp((64,), hidden=(12,), output_size=10, dropout=0.2)
    result = train(genome, *digits, PlasticityConfig(dropout=0.5), steps=5)
    assert [layer.dropout for layer in result.genome.layers] == [0.2, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "hinge"}, "loss must be one of"),
        ({"steps": -1}, "steps must be"),
        ({"x_cols": 63}, "x must have shape"),
        ({"y_cols": 2}, "one class label per sample"),
    ],
)
def test_bad_input_raises_value_error(digits: Data, mlp: Genome, kwargs: dict, match: str) -> None:
    x, y = digits
    x = x[:, : kwargs.pop("x_cols", 64)]
    y = y[:, None].repeat(1, kwargs.pop("y_cols", 1))
    with pytest.raises(ValueError, match=match):
        train(mlp, x, y, PlasticityConfig(), **kwargs)


def test_config_rejects_unknown_keys_and_bad_bounds() -> None:
    with pytest.raises(ValueError, match="extra"):
        PlasticityConfig(growth={"stratgy": "gradmax"})
    with pytest.raises(ValueError, match="min_width"):
        PlasticityConfig(min_width=10, max_width=5)
    with pytest.raises(ValueError, match="label_smoothing"):
        PlasticityConfig(label_smoothing=1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_run_returns_cpu_genome(digits: Data, mlp: Genome) -> None:
    result = train(mlp, *digits, PLASTIC, steps=30, device="cuda:0")
    assert all(v.device.type == "cpu" for v in result.genome.weights.values())


def test_all_strategies_on_a_cnn_with_a_skip(digits: Data) -> None:
    """Conv units own k×k kernels and H·W flattened columns; every strategy must keep them consistent."""
    skeleton = Genome.cnn((1, 8, 8), channels=(4, 6, 5), hidden=(12,), output_size=10, pool=1)
    genome = Genome.random(skeleton.input_shape, skeleton.layers, ((0, 2),), seed=0)
    x = digits[0].reshape(-1, 1, 8, 8)
    result = train(genome, x, digits[1], PLASTIC, steps=25)
    grown = [e for e in result.events if "grew" in e]
    assert any("zero grew layer 0" in e for e in grown) and any("gradmax grew layer 3" in e for e in grown)
    assert result.metrics["pruned"] > 0 and result.metrics["replaced"] > 0 and result.genome.skips == ((0, 2),)
    assert result.genome.to_module()(x).shape == (200, 10)


def test_dropout_training_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    import torch

    from evo.genome import Genome, LayerKind, LayerSpec
    from evo.plasticity import Diverged, PlasticityConfig, train

    genome = Genome.mlp((6,), (8,), 3, dropout=0.5, seed=0)
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    y = torch.arange(40) % 3
    before = torch.get_rng_state()
    a = train(genome, x, y, PlasticityConfig(), steps=10, seed=5).genome
    torch.rand(3)  # whatever else the process draws in between must not matter
    b = train(genome, x, y, PlasticityConfig(), steps=10, seed=5).genome
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    torch.set_rng_state(before)
    train(genome, x, y, PlasticityConfig(), steps=10, seed=5)
    assert torch.equal(torch.get_rng_state(), before)


def test_cosine_schedule_anneals_from_lr_to_zero() -> None:
    config = PlasticityConfig(lr=0.01, lr_schedule="cosine")
    rates = [learning_rate(config, step, 100) for step in range(100)]
    assert rates[0] == pytest.approx(0.01) and rates[50] == pytest.approx(0.005) and rates[-1] < 1e-5
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert {learning_rate(PlasticityConfig(lr=0.01), step, 100) for step in range(100)} == {0.01}


def test_every_step_uses_the_scheduled_rate_even_after_growth_rebuilds_the_optimiser(
    digits: Data, mlp: Genome, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = PlasticityConfig(lr_schedule="cosine", growth={"strategy": "gradmax", "interval": 10, "amount": 2})
    used: list[float] = []
    step = torch.optim.Adam.step

    def spy(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        used.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    result = train(mlp, *digits, config, steps=40)
    assert result.metrics["grown"] > 0
    assert used == pytest.approx([learning_rate(config, s, 40) for s in range(40)])
