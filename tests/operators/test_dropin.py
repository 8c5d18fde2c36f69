from __future__ import annotations

import pytest
import torch

from evo.genome import Genome, LayerKind
from evo.operators.dropin import add_skip, candidate_skips, deepen, remove_skip, widen
from tests.operators._helpers import inputs, make_cnn, make_mlp, max_delta, rng

TOL = 1e-5


@pytest.mark.parametrize("init", ["zero", "split"])
def test_widen_preserves_function_in_every_hidden_layer(genome: Genome, init: str) -> None:
    x = inputs(genome)
    for layer in genome.hidden_layers:
        grown = widen(genome, rng(layer), layer=layer, k=3, init=init)
        assert grown.layers[layer].width == genome.layers[layer].width + 3
        assert max_delta(genome, grown, x) <= TOL


def test_widen_random_changes_outputs(genome: Genome) -> None:
    x = inputs(genome)
    assert max_delta(genome, widen(genome, rng(), layer=0, k=3, init="random"), x) > 1e-3


def test_split_copies_fan_in_and_shares_fan_out() -> None:
    g = Genome.mlp((3,), hidden=(2,), output_size=2, seed=4)
    grown = widen(g, rng(1), layer=0, k=1, init="split")
    w, w_out = grown.weights["layers.0.weight"], grown.weights["layers.1.weight"]
    source = int(torch.nonzero((w[:2] == w[2]).all(dim=1))[0])
    assert torch.equal(w_out[:, 2], w_out[:, source])
    assert torch.allclose(w_out[:, 2] * 2, g.weights["layers.1.weight"][:, source])


def test_split_noise_breaks_symmetry_but_stays_close(genome: Genome) -> None:
    x = inputs(genome)
    delta = max_delta(genome, widen(genome, rng(), layer=0, k=2, init="split", noise=1e-3), x)
    assert 0 < delta < 0.1


def test_widen_random_layer_is_seeded_and_input_untouched(genome: Genome) -> None:
    before = {k: v.clone() for k, v in genome.weights.items()}
    a, b = widen(genome, rng(5), k=2), widen(genome, rng(5), k=2)
    assert str(a) == str(b) and all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert all(torch.equal(before[k], genome.weights[k]) for k in before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"layer": 9}, "widen: layer"), ({"k": 0}, "widen: k"), ({"init": "ones"}, "widen: init"), ({"noise": -1.0}, "noise")],
)
def test_widen_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        widen(make_mlp(), rng(), **kwargs)  # type: ignore[arg-type]


def test_deepen_identity_preserves_function_at_every_position(genome: Genome) -> None:
    x = inputs(genome)
    for position in range(1, genome.num_layers):
        deeper = deepen(genome, rng(), position=position)
        assert deeper.num_layers == genome.num_layers + 1
        assert deeper.layers[position].kind is genome.layers[position - 1].kind
        assert deeper.layers[position].pool == 1
        assert max_delta(genome, deeper, x) <= TOL


def test_deepen_shifts_skips() -> None:
    g = make_mlp()  # skips (0, 2), (1, 3)
    assert deepen(g, rng(), position=2).skips == ((0, 3), (1, 4))
    assert deepen(g, rng(), position=1).skips == ((0, 3), (2, 4))


def test_deepen_non_idempotent_activation_is_approximate() -> None:
    g = Genome.mlp((5,), hidden=(4,), output_size=2, activation="tanh")
    x = inputs(g)
    delta = max_delta(g, deepen(g, rng(), position=1), x)
    assert 1e-4 < delta < 1.0


def test_deepen_conv_uses_identity_kernel() -> None:
    g = make_cnn()
    deeper = deepen(g, rng(), position=1)
    w = deeper.weights["layers.1.weight"]
    assert w.shape == (4, 4, 3, 3) and float(w.sum()) == 4.0 and float(w[:, :, 1, 1].trace()) == 4.0


def test_deepen_bad_arguments() -> None:
    with pytest.raises(ValueError, match="deepen"):
        deepen(make_mlp(), rng(), position=4)
    with pytest.raises(ValueError, match="activation"):
        deepen(make_mlp(), rng(), activation="swish")
    with pytest.raises(ValueError, match="no hidden layer and a .1, 4, 4. input"):
        deepen(Genome.mlp((1, 4, 4), hidden=(), output_size=2), rng())
    with pytest.raises(ValueError, match=r"layer must be one of \[\]"):
        deepen(Genome.mlp((3,), hidden=(), output_size=2), rng(), position=1)


def test_deepen_gives_a_flat_genome_its_first_hidden_layer() -> None:
    g = Genome.mlp((3,), hidden=(), output_size=2, seed=5)
    x = inputs(g)
    first = deepen(g, rng())
    assert [(layer.width, layer.activation) for layer in first.layers] == [(3, "identity"), (2, "identity")]
    assert torch.equal(first.weights["layers.0.weight"], torch.eye(3))
    assert torch.equal(first.weights["layers.1.weight"], g.weights["layers.0.weight"])
    assert max_delta(g, first, x) <= TOL
    tanh = deepen(g, rng(), activation="tanh")
    assert tanh.layers[0].activation == "tanh" and 1e-4 < max_delta(g, tanh, x) < 1.0


def test_add_skip_is_zero_initialised_and_preserving(genome: Genome) -> None:
    x = inputs(genome)
    for s, d in candidate_skips(genome):
        grown = add_skip(genome, rng(), src=s, dst=d)
        assert (s, d) in grown.skips
        assert max_delta(genome, grown, x) <= TOL


def test_add_skip_random_edge_and_errors() -> None:
    g = make_mlp()
    assert set(add_skip(g, rng(3)).skips) - set(g.skips) <= set(candidate_skips(g))
    with pytest.raises(ValueError, match="add_skip"):
        add_skip(g, rng(), src=0, dst=2)  # exists
    with pytest.raises(ValueError, match="add_skip"):
        add_skip(Genome.mlp((3,), hidden=(4,), output_size=2), rng())  # no room for a skip


def test_candidate_skips_respect_kinds_and_pooling() -> None:
    g = make_cnn()
    for s, d in candidate_skips(g):
        assert g.layers[s].kind is g.layers[d].kind
        assert all(g.layers[j].pool == 1 for j in range(s + 1, d))
    assert (0, 2) not in candidate_skips(g)  # crosses the pooling layer 1


def test_remove_skip() -> None:
    g = make_mlp()
    removed = remove_skip(g, rng(), src=0, dst=2)
    assert removed.skips == ((1, 3),) and "skips.0_2.weight" not in removed.weights
    assert max_delta(g, removed, inputs(g)) > 1e-4
    with pytest.raises(ValueError, match="remove_skip"):
        remove_skip(removed, rng(), src=0)


def test_widen_fixes_flatten_boundary_weight() -> None:
    g = make_cnn()
    grown = widen(g, rng(), layer=3, k=2, init="zero")
    assert grown.weights["layers.4.weight"].shape == (6, 6 * 3 * 3)
    assert grown.layers[3].kind is LayerKind.CONV
