"""Growth triggers fire on constructed inputs: interval, loss plateau, NORTH effective rank."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.genome import Genome
from evo.plasticity import GrowthConfig, PlasticityConfig, train
from evo.plasticity.triggers import IntervalTrigger, PlateauTrigger, RankTrigger, effective_rank, make_trigger


def low_rank(n: int, units: int, rank: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, rank, generator=gen) @ torch.randn(rank, units, generator=gen)


@given(rank=st.integers(1, 8), seed=st.integers(0, 100))
@settings(max_examples=20, deadline=None)
def test_effective_rank_counts_the_nonzero_singular_values(rank: int, seed: int) -> None:
    assert effective_rank(low_rank(64, 8, rank, seed), 1e-6) == rank / 8


def test_effective_rank_of_conv_maps_treats_positions_as_samples() -> None:
    h = low_rank(4 * 5 * 5, 6, 2).reshape(4, 5, 5, 6).movedim(-1, 1)  # (n, C, H, W) with rank-2 channels
    assert effective_rank(h, 1e-6) == pytest.approx(2 / 6)


def test_interval_trigger_fires_every_interval() -> None:
    t = make_trigger(GrowthConfig(trigger="interval", interval=5, amount=3))
    assert isinstance(t, IntervalTrigger)
    assert [s for s in range(20) if t.due(s)] == [4, 9, 14, 19]
    assert t.amounts({0: 8, 1: 4}, dict) == {0: 3, 1: 3}


def test_plateau_trigger_fires_after_patience_checks_without_improvement() -> None:
    t = PlateauTrigger(GrowthConfig(trigger="plateau", patience=2, min_delta=0.1, amount=2))
    fired = []
    for loss in [1.0, 0.5, 0.45, 0.46, 0.2, 0.19, 0.18]:  # one loss per check window
        t.observe(loss)
        fired.append(t.amounts({0: 8}, dict))
    # 0.45 and 0.46 do not beat 0.5 by 0.1 → fires at the second; 0.2 improves; 0.19, 0.18 stall again
    assert fired == [{}, {}, {}, {0: 2}, {}, {}, {0: 2}]


def test_rank_trigger_grows_saturated_layers_only() -> None:
    t = RankTrigger(GrowthConfig(trigger="rank", rank_gamma=0.5, amount=10, rank_epsilon=1e-6))
    full, collapsed = low_rank(64, 8, 8), low_rank(64, 8, 8)
    assert t.amounts({0: 8, 1: 8}, lambda: {0: full, 1: collapsed}) == {0: 4, 1: 4}  # φ₀ = 1: ⌊8·(1 − 0.5)⌋
    # layer 1 collapses to rank 2: φ = 0.25 < γ·φ₀ → no growth; layer 0 stays saturated (capped by amount)
    t.config = GrowthConfig(trigger="rank", rank_gamma=0.5, amount=3, rank_epsilon=1e-6)
    assert t.amounts({0: 8, 1: 8}, lambda: {0: full, 1: low_rank(64, 8, 2)}) == {0: 3}
    assert math.isclose(t.phi0[1], 1.0)


def test_rank_trigger_fires_inside_training() -> None:
    x = torch.rand(64, 8, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(1))
    cfg = PlasticityConfig(
        growth={"strategy": "zero", "trigger": "rank", "interval": 4, "rank_gamma": 0.0, "amount": 2}
    )
    result = train(Genome.mlp((8,), hidden=(6,), output_size=3), x, y, cfg, steps=9)
    assert result.metrics["grown"] == 4 and "zero grew layer 0 by 2 (6→8)" in result.events[0]
