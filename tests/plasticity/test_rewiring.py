"""SET/RigL/static masks: densities, constant density under rewiring, zeros where masked, RigL's regrowth."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from evo.genome import Genome
from evo.plasticity import PlasticityConfig, train
from evo.plasticity.rewiring import drop_fraction, layer_densities, random_mask, rewire

Data = tuple[Tensor, Tensor]


@given(
    shapes=st.lists(st.tuples(st.integers(1, 64), st.integers(1, 64)), min_size=1, max_size=4),
    density=st.floats(0.01, 1.0),
    distribution=st.sampled_from(["erk", "uniform"]),
)
@settings(max_examples=40, deadline=None)
def test_layer_densities_average_to_the_target(
    shapes: list[tuple[int, int]], density: float, distribution: str
) -> None:
    named = {f"w{i}": s for i, s in enumerate(shapes)}
    d = layer_densities(named, density, distribution)
    sizes = {n: math.prod(s) for n, s in named.items()}
    assert all(0 < v <= 1 + 1e-9 for v in d.values())
    assert sum(d[n] * sizes[n] for n in named) == pytest.approx(density * sum(sizes.values()), rel=1e-6)


def test_erk_gives_small_layers_higher_density() -> None:
    d = layer_densities({"big": (256, 256), "small": (10, 32), "conv": (16, 8, 3, 3)}, 0.1, "erk")
    assert d["small"] > d["big"] and d["conv"] > d["big"]


def test_random_mask_has_the_exact_count() -> None:
    mask = random_mask((20, 30), 0.1, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and int(mask.sum()) == 60


def test_rewire_drops_smallest_and_regrows_by_gradient() -> None:
    weight = torch.tensor([[0.9, 0.01, 0.0, 0.0], [0.5, 0.02, 0.0, 0.0]])
    mask = weight != 0
    grad = torch.tensor([[0.0, 0.0, 3.0, 0.1], [0.0, 0.0, 0.2, 5.0]])
    new, born = rewire(weight, mask, 0.5, grad, torch.Generator())
    assert new.tolist() == [[True, False, True, False], [True, False, False, True]]
    assert born.tolist() == [[False, False, True, False], [False, False, False, True]]
    set_mask, set_born = rewire(weight, mask, 0.5, None, torch.Generator().manual_seed(0))
    assert int(set_mask.sum()) == 4 and not (set_born & mask).any()  # regrown only where inactive before


def test_rigl_drop_fraction_decays_by_cosine_and_stops() -> None:
    assert drop_fraction("rigl", 0.3, 0, 100) == pytest.approx(0.3)
    assert drop_fraction("rigl", 0.3, 50, 100) == pytest.approx(0.15)
    assert drop_fraction("rigl", 0.3, 100, 100) == 0.0
    assert drop_fraction("set", 0.3, 99, 100) == 0.3


@pytest.mark.parametrize("method", ["set", "rigl", "static"])
def test_training_keeps_density_constant_and_masked_weights_zero(digits: Data, mlp: Genome, method: str) -> None:
    cfg = PlasticityConfig(rewiring={"method": method, "density": 0.2, "interval": 5})
    result = train(mlp, *digits, cfg, steps=31)
    total = sum(result.genome.weights[f"layers.{i}.weight"].numel() for i in range(2))
    nonzero = sum(int((result.genome.weights[f"layers.{i}.weight"] != 0).sum()) for i in range(2))
    expected = round(0.2 * total)
    assert result.metrics["density"] == pytest.approx(expected / total, abs=2 / total)
    assert nonzero <= round(result.metrics["density"] * total)
    assert (result.metrics["rewired"] > 0) == (method != "static")


def test_rigl_stops_rewiring_after_end_fraction(digits: Data, mlp: Genome) -> None:
    cfg = PlasticityConfig(rewiring={"method": "rigl", "density": 0.3, "interval": 5, "end_fraction": 0.5})
    result = train(mlp, *digits, cfg, steps=40)
    assert [int(e.split()[1].rstrip(":")) for e in result.events] == [5, 10, 15]
