from __future__ import annotations

import pytest
import torch

from evo.operators.weights import mutate_weights, reset_weights
from tests.operators._helpers import make_mlp, rng


def test_mutate_perturbs_every_weight_with_sigma() -> None:
    g = make_mlp()
    mutated = mutate_weights(g, rng(), sigma=0.1)
    deltas = torch.cat([(mutated.weights[k] - g.weights[k]).flatten() for k in g.weights])
    assert bool((deltas != 0).all())
    assert 0.08 < float(deltas.std()) < 0.12
    assert str(mutated) == str(g)


def test_mutate_rate_limits_the_fraction_changed() -> None:
    g = make_mlp()
    mutated = mutate_weights(g, rng(), sigma=0.1, rate=0.2)
    changed = torch.cat([(mutated.weights[k] != g.weights[k]).flatten() for k in g.weights]).float().mean()
    assert 0.1 < float(changed) < 0.3


def test_mutate_is_seeded_and_pure() -> None:
    g = make_mlp()
    before = {k: v.clone() for k, v in g.weights.items()}
    a, b = mutate_weights(g, rng(7)), mutate_weights(g, rng(7))
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in g.weights)
    assert all(torch.equal(before[k], g.weights[k]) for k in g.weights)


@pytest.mark.parametrize(("sigma", "rate"), [(0.0, 1.0), (0.1, 0.0), (0.1, 1.5)])
def test_mutate_bad_arguments(sigma: float, rate: float) -> None:
    with pytest.raises(ValueError, match="mutate_weights"):
        mutate_weights(make_mlp(), rng(), sigma=sigma, rate=rate)


def test_reset_keeps_the_architecture_only() -> None:
    g = make_mlp()
    fresh = reset_weights(g, rng())
    assert str(fresh) == str(g)
    assert not torch.equal(fresh.weights["layers.0.weight"], g.weights["layers.0.weight"])
