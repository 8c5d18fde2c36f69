"""add_gap / remove_gap / set_pool: the head's global average pooling and a conv block's pool factor as genes."""

from __future__ import annotations

import pytest
import torch

from evo.genome import Genome, LayerSpec
from evo.operators import add_gap, remove_gap, set_pool
from evo.operators.pooling import pool_choices
from tests.operators._helpers import CONV, LINEAR, inputs, make_cnn1d, max_delta, rng


def constant_along_length(genome: Genome, n: int = 8) -> torch.Tensor:
    """Signals that do not vary along L: a 1-wide conv keeps them so, and pooling cannot tell positions apart."""
    channels, length = genome.input_shape
    return torch.randn(n, channels, 1, generator=torch.Generator().manual_seed(0)).expand(n, channels, length)


def pointwise() -> Genome:
    layers = [LayerSpec(CONV, 3, kernel_size=1), LayerSpec(LINEAR, 4), LayerSpec(LINEAR, 2, "identity")]
    return Genome.random((2, 8), layers, seed=0)


def test_remove_gap_is_exact() -> None:
    genome = make_cnn1d()
    flat = remove_gap(genome, rng())
    assert not flat.gap and flat.num_params() > genome.num_params() and "flatten" in str(flat)
    assert max_delta(genome, flat, inputs(genome)) < 1e-5


def test_add_gap_sums_head_weights_over_positions() -> None:
    genome = pointwise()
    pooled = add_gap(genome, rng())
    assert pooled.gap and pooled.weights["layers.1.weight"].shape == (4, 3) and "gap" in str(pooled)
    assert max_delta(genome, pooled, constant_along_length(genome)) < 1e-5  # exact where positions look alike
    assert max_delta(genome, pooled, inputs(genome)) > 1e-3  # approximate otherwise
    assert max_delta(pooled, remove_gap(pooled, rng()), inputs(genome)) < 1e-5


def test_set_pool_resamples_a_flattening_head() -> None:
    genome = pointwise()
    pooled = set_pool(genome, rng(), layer=0, pool=2)
    assert pooled.layers[0].pool == 2 and pooled.weights["layers.1.weight"].shape == (4, 12)
    assert max_delta(genome, pooled, constant_along_length(genome)) < 1e-5  # each channel's weight sum is kept


def test_set_pool_under_gap_changes_only_the_factor() -> None:
    genome = make_cnn1d()
    changed = set_pool(genome, rng(), layer=2)
    assert changed.layers[2].pool in (2, 3, 4) and f"pool{changed.layers[2].pool}→gap" in str(changed)
    assert all(torch.equal(changed.weights[k], v) for k, v in genome.weights.items())


def test_pool_choices_keep_the_genome_valid() -> None:
    genome = make_cnn1d()  # length 12, pooled by 2 at layer 0; skip 0 → 2 crosses layer 1
    assert pool_choices(genome, 0) == [1, 3, 4]
    assert pool_choices(genome, 1) == []  # a skip crosses it
    short = Genome.random((1, 3), [LayerSpec(CONV, 2), LayerSpec(LINEAR, 2, "identity")])
    assert pool_choices(short, 0) == [2, 3]  # 4 would pool 3 positions into none
    assert pool_choices(genome, 3) == []  # linear
    with pytest.raises(ValueError, match="set_pool: layer must be one of"):
        set_pool(genome, rng(), layer=1)


def test_gap_operators_refuse_what_they_cannot_do() -> None:
    with pytest.raises(ValueError, match="add_gap: genome .* has no flattened conv output"):
        add_gap(Genome.mlp((5,), (3,), 2), rng())
    with pytest.raises(ValueError, match="remove_gap: genome .* has no global average pooling"):
        remove_gap(pointwise(), rng())
