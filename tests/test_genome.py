"""evo.genome (builders, module round trips, serialisation, metrics, validation) and evo.surgery."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import pytest
import torch

from evo.genome import (ACTIVATION_NAMES, Genome, LayerKind, LayerSpec, WeightName, norm_name, parse_weight_name,
                        skip_name, weight_name)
from evo.network import ACTIVATIONS
from evo.surgery import gather_units, unit_params

CONV, LINEAR = LayerKind.CONV, LayerKind.LINEAR


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> None:
    torch.set_num_threads(1)


def _cnn() -> Genome:
    layers = [LayerSpec(CONV, 4, pool=1), LayerSpec(CONV, 3, pool=1), LayerSpec(CONV, 3, pool=2),
              LayerSpec(LINEAR, 5), LayerSpec(LINEAR, 2, "identity")]
    return Genome.random((1, 6, 6), layers, skips=[(0, 2)], seed=1)


def _x(genome: Genome, n: int = 5) -> torch.Tensor:
    return torch.randn((n, *genome.input_shape), generator=torch.Generator().manual_seed(0))


def _out(genome: Genome, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return genome.to_module().eval()(x)


def test_mlp_builder() -> None:
    g = Genome.mlp(64, hidden=(32, 16), output_size=10, seed=0)
    assert [layer.width for layer in g.layers] == [32, 16, 10]
    assert g.layers[-1].activation == "identity" and g.output_size == 10
    assert _out(g, torch.zeros(3, 64)).shape == (3, 10)
    assert str(g) == "64→32→relu→16→relu→10"


def test_mlp_flattens_image_input() -> None:
    g = Genome.mlp((1, 4, 4), hidden=(8,), output_size=3)
    assert g.weights["layers.0.weight"].shape == (8, 16)
    assert _out(g, torch.zeros(2, 1, 4, 4)).shape == (2, 3)


def test_cnn_builder_and_flatten_block() -> None:
    g = Genome.cnn((1, 8, 8), channels=(4, 6), hidden=(16,), output_size=10, seed=0)
    assert g.flatten_at == 2 and g.spatial(1) == (2, 2) and g.flatten_block(2) == 4
    assert g.weights["layers.2.weight"].shape == (16, 6 * 4)
    assert str(g) == "1×8×8→conv3:4→relu→pool2→conv3:6→relu→pool2→flatten→16→relu→10"


def test_seeded_random_weights() -> None:
    a, b, c = (Genome.mlp(5, (4,), 2, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.weights["layers.0.weight"], b.weights["layers.0.weight"])
    assert not torch.equal(a.weights["layers.0.weight"], c.weights["layers.0.weight"])


def test_module_round_trip_keeps_trained_weights() -> None:
    g = _cnn()
    net = g.to_module()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)
    trained = g.from_module(net)
    assert torch.equal(_out(trained, _x(g)), net.eval()(_x(g)).detach())
    assert not torch.equal(trained.weights["layers.0.weight"], g.weights["layers.0.weight"])


def test_weights_are_read_only_and_copied() -> None:
    g = _cnn()
    with pytest.raises(TypeError):
        g.weights["layers.0.bias"] = torch.zeros(4)  # type: ignore[index]
    net = g.to_module()
    with torch.no_grad():
        net.layers[0].bias.add_(1.0)
    assert not torch.equal(net.layers[0].bias, g.weights["layers.0.bias"])


def test_dict_json_round_trip_reproduces_outputs() -> None:
    g = _cnn()
    data = json.loads(json.dumps(g.to_dict()))
    restored = Genome.from_dict(data, weights=dict(g.weights))
    assert restored.to_json() == g.to_json()
    assert torch.equal(_out(restored, _x(g)), _out(g, _x(g)))
    fresh = Genome.from_dict(data, seed=3)  # architecture only: seeded random weights
    assert str(fresh) == str(g) and fresh.num_params() == g.num_params()


def test_save_and_load_with_weights_only(tmp_path: Path) -> None:
    g = _cnn()
    path = tmp_path / "sub" / "g.pt"
    g.save(path)
    loaded = Genome.load(path)
    assert torch.equal(_out(loaded, _x(g)), _out(g, _x(g)))
    assert torch.load(path, weights_only=True)["genome"] == g.to_dict()
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an evo genome file"):
        Genome.load(tmp_path / "other.pt")


def test_num_params_matches_the_module() -> None:
    for g in (_cnn(), Genome.mlp(7, (5, 4), 3)):
        assert g.num_params() == sum(p.numel() for p in g.to_module().parameters())


def test_flops_counts_multiply_adds_per_pixel() -> None:
    g = Genome.mlp(4, (3,), 2)
    assert g.flops() == 2 * (4 * 3 + 3 * 2)
    c = Genome.cnn((1, 4, 4), channels=(2,), hidden=(), output_size=3, pool=2)
    assert c.flops() == 2 * (2 * 1 * 9 * 16) + 2 * (3 * 2 * 4)


def test_skips_and_dropout_in_the_architecture_string() -> None:
    g = Genome.random((4,), [LayerSpec(LINEAR, 3, dropout=0.5), LayerSpec(LINEAR, 3), LayerSpec(LINEAR, 2, "identity")], [(0, 2)])
    assert str(g) == "4→3→relu→drop0.5→3→relu→2 skip(0→2)"


@pytest.mark.parametrize(
    ("shape", "layers", "skips", "match"),
    [
        ((4,), [], [], "at least one"),
        ((4,), [LayerSpec(CONV, 2)], [], "output layer must be linear"),
        ((1, 4, 4), [LayerSpec(LINEAR, 3), LayerSpec(CONV, 2), LayerSpec(LINEAR, 2)], [], "conv layers must come before"),
        ((1, 2, 2, 2), [LayerSpec(CONV, 2), LayerSpec(LINEAR, 2)], [], r"\(C, L\) or \(C, H, W\)"),
        ((4,), [LayerSpec(LINEAR, 3), LayerSpec(LINEAR, 2, norm="batch")], [], "output layer cannot have a norm"),
        ((1, 2, 2), [LayerSpec(CONV, 2, pool=4), LayerSpec(LINEAR, 2)], [], "below 1×1"),
        ((4,), [LayerSpec(LINEAR, 3), LayerSpec(LINEAR, 2)], [(0, 1)], "src \\+ 2 <= dst"),
        ((1, 4, 4), [LayerSpec(CONV, 2), LayerSpec(CONV, 2, pool=2), LayerSpec(CONV, 2), LayerSpec(LINEAR, 2)], [(0, 2)], "pooling"),
        ((1, 4, 4), [LayerSpec(CONV, 2), LayerSpec(LINEAR, 2), LayerSpec(LINEAR, 2)], [(0, 2)], "same kind"),
        ((0,), [LayerSpec(LINEAR, 2)], [], "positive sizes"),
    ],
)
def test_invalid_structures(shape: tuple[int, ...], layers: list[LayerSpec], skips: list[tuple[int, int]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Genome(shape, tuple(layers), tuple(skips))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"width": 0}, "width"), ({"activation": "swish"}, "activation"), ({"dropout": 1.0}, "dropout"),
     ({"kernel_size": 2}, "kernel_size"), ({"pool": 0}, "pool")],
)
def test_invalid_layer_specs(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LayerSpec(**{"kind": LINEAR, "width": 3, **kwargs})  # type: ignore[arg-type]


def test_invalid_weights() -> None:
    g = Genome.mlp(4, (3,), 2)
    missing = {k: v for k, v in g.weights.items() if k != "layers.0.bias"}
    with pytest.raises(ValueError, match="missing"):
        g.with_weights(missing)
    with pytest.raises(ValueError, match="has shape"):
        g.with_weights({**g.weights, "layers.0.bias": torch.zeros(4)})
    with pytest.raises(ValueError, match="malformed genome data"):
        Genome.from_dict({"layers": [{"kind": "linear"}]})
    with pytest.raises(ValueError, match="unsupported genome format"):
        Genome.from_dict({**g.to_dict(), "format": 99})


def test_pickle_round_trip() -> None:
    import pickle

    g = _cnn()
    assert torch.equal(_out(pickle.loads(pickle.dumps(g)), _x(g)), _out(g, _x(g)))


def test_unpickled_weights_are_own_copies_even_from_read_only_buffers() -> None:
    import pickle
    import warnings

    g = _cnn()
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(g, protocol=5, buffer_callback=buffers.append)  # out of band, as Ray ships arrays
    assert buffers, "the weights should travel as plain arrays (buffers), not torch storages"
    read_only = [memoryview(bytes(b.raw())) for b in buffers]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it wraps a non-writable array
        restored = pickle.loads(data, buffers=read_only)
    assert all(torch.equal(restored.weights[k], v) for k, v in g.weights.items())
    assert torch.equal(_out(restored, _x(g)), _out(g, _x(g)))


def test_module_is_made_of_plain_torch_layers_on_the_asked_device() -> None:
    g = _cnn()
    net = g.to_module()
    reference = {"layers.0": torch.nn.Conv2d(1, 4, 3, padding=1), "layers.3": torch.nn.Linear(27, 5),
                 "layers.4": torch.nn.Linear(5, 2), "skips.0_2": torch.nn.Conv2d(4, 3, 1, bias=False)}
    modules = dict(net.named_modules())
    for name, expected in reference.items():
        assert type(modules[name]) is type(expected) and repr(modules[name]) == repr(expected)
        assert [n for n, _ in modules[name].named_parameters()] == [n for n, _ in expected.named_parameters()]
    flat = Genome.mlp((1, 4, 4), (3,), 2, seed=0)  # an MLP on images still flattens them
    assert flat.to_module()(torch.zeros(2, 1, 4, 4)).shape == (2, 2)
    assert {p.device.type for p in g.to_module("meta").parameters()} == {"meta"}
    assert all(p.requires_grad for p in net.parameters())


# ------------------------------------------------------------------ surgery
def test_gather_with_a_permutation_preserves_function() -> None:
    g = _cnn()
    x = _x(g)
    for layer in g.hidden_layers:
        perm = torch.randperm(g.layers[layer].width, generator=torch.Generator().manual_seed(layer))
        assert torch.allclose(_out(gather_units(g, layer, perm), x), _out(g, x), atol=1e-6)


def test_unit_params_cover_fan_in_fan_out_and_skips() -> None:
    g = _cnn()  # skip (0, 2)
    names = {(p.name, p.fan) for p in unit_params(g, 0)}
    assert names == {("layers.0.weight", "in"), ("layers.0.bias", "in"), ("layers.1.weight", "out"), ("skips.0_2.weight", "out")}
    assert ("skips.0_2.weight", "in") in {(p.name, p.fan) for p in unit_params(g, 2)}
    with pytest.raises(ValueError, match="not a hidden layer"):
        unit_params(g, g.num_layers - 1)


def test_gather_refuses_an_empty_layer() -> None:
    with pytest.raises(ValueError, match="no units left"):
        gather_units(Genome.mlp(3, (2,), 2), 0, [])
    assert math.prod(gather_units(Genome.mlp(3, (2,), 2), 0, [1, 1, 0]).weights["layers.1.weight"].shape) == 6


def test_conv1d_blocks_on_signals_and_on_flat_inputs() -> None:
    g = Genome.cnn((1, 20), channels=(4,), hidden=(), output_size=3, kernel_size=5, pool=2, seed=0)
    assert isinstance(g.to_module().layers[0], torch.nn.Conv1d) and g.weights["layers.0.weight"].shape == (4, 1, 5)
    assert g.rank == 1 and g.spatial(0) == (10,) and g.flatten_block(1) == 10
    assert str(g) == "1×20→conv5:4→relu→pool2→flatten→3"
    flat = Genome.random((20,), g.layers).with_weights(g.weights)  # a flat input is read as one channel
    x = torch.randn(5, 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(_out(flat, x), _out(g, x[:, None])) and str(flat) == "20→conv5:4→relu→pool2→flatten→3"


def test_norms_and_gap_live_in_the_module_and_round_trip(tmp_path: Path) -> None:
    layers = [LayerSpec(CONV, 4, norm="batch"), LayerSpec(CONV, 3, norm="layer"), LayerSpec(LINEAR, 2, "identity")]
    g = Genome.random((1, 6, 6), layers, gap=True, seed=0)
    net = g.to_module()
    assert isinstance(net.norms["0"], torch.nn.BatchNorm2d) and isinstance(net.norms["1"], torch.nn.GroupNorm)
    assert g.weights["layers.2.weight"].shape == (2, 3)  # gap: one head column per channel
    assert g.num_params() == sum(p.numel() for p in net.parameters())  # running statistics are state, not parameters
    assert str(g) == "1×6×6→conv3:4→bn→relu→conv3:3→ln→relu→gap→2"
    net(torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(0)) * 3 + 1)  # training mode: stats move
    trained = g.from_module(net)
    assert not torch.equal(trained.weights["norms.0.running_mean"], g.weights["norms.0.running_mean"])
    trained.save(tmp_path / "g.pt")
    for copy in (Genome.load(tmp_path / "g.pt"), pickle.loads(pickle.dumps(trained))):
        assert copy.gap and copy.to_dict() == trained.to_dict() and torch.equal(_out(copy, _x(g)), _out(trained, _x(g)))
    with pytest.raises(ValueError, match="gap .* needs a conv layer"):
        Genome.random((4,), [LayerSpec(LINEAR, 2, "identity")], gap=True)
    with pytest.raises(ValueError, match="unknown norm 'instance'"):
        LayerSpec(CONV, 2, norm="instance")


def test_weight_names_are_the_modules_state_dict_keys_and_parse_back() -> None:
    layers = [LayerSpec(CONV, 4, norm="batch"), LayerSpec(CONV, 3, norm="layer"), LayerSpec(CONV, 3),
              LayerSpec(LINEAR, 5), LayerSpec(LINEAR, 2, "identity")]
    genome = Genome.random((1, 6, 6), layers, skips=[(0, 2)], seed=1)
    assert list(genome.to_module().state_dict()) == list(genome.param_shapes()) == list(genome.weights)
    for name in genome.weights:
        assert str(parse_weight_name(name)) == name
    assert parse_weight_name(weight_name(3, "bias")) == WeightName("layers", 3, "bias")
    assert parse_weight_name(norm_name(0, "running_var")) == WeightName("norms", 0, "running_var")
    assert parse_weight_name(skip_name(0, 2)) == WeightName("skips", 2, "weight", src=0)
    assert skip_name(0, 2) in genome.weights and norm_name(1, "bias") in genome.weights


@pytest.mark.parametrize("name", ["layers.x.weight", "skips.0.weight", "net.layers.0.weight", "layers.0", "layers.0.weight.extra"])
def test_parse_weight_name_refuses_other_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a genome weight name"):
        parse_weight_name(name)


def test_every_activation_a_layer_may_name_has_a_torch_module() -> None:
    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES
