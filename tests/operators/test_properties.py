"""Invariant: any sequence of operators on any genome yields a valid, trainable, serialisable network, whose carried
optimiser state (if any) its training starts from."""

from __future__ import annotations

import json

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evo.genome import Genome, LayerKind, LayerSpec
from evo.operators import OPERATORS, make_operator
from evo.operators.dropin import candidate_skips
from evo.plasticity import PlasticityConfig, train

SPECS = [
    {"op": "widen", "k": 2, "init": "zero"},
    {"op": "widen", "k": 1, "init": "split", "noise": 0.01},
    {"op": "widen", "k": 3, "init": "random"},
    {"op": "deepen"},
    {"op": "deepen", "activation": "tanh"},
    {"op": "add_skip"},
    {"op": "remove_skip"},
    {"op": "prune_neurons", "amount": 1, "importance": "l1"},
    {"op": "prune_neurons", "amount": 0.3, "importance": "taylor"},
    {"op": "prune_neurons", "amount": 1, "importance": "activation"},
    {"op": "remove_layer"},
    {"op": "set_dropout", "p": 0.2},
    {"op": "add_norm", "kind": "batch"},
    {"op": "add_norm", "kind": "layer"},
    {"op": "remove_norm"},
    {"op": "add_gap"},
    {"op": "remove_gap"},
    {"op": "set_pool"},
    {"op": "mutate_weights", "sigma": 0.05, "rate": 0.5},
    {"op": "reset_weights"},
]


@st.composite
def genomes(draw: st.DrawFn) -> Genome:
    """Conv2d on images, Conv1d on signals or flat inputs, or an MLP; with norms, gap and skips drawn too."""
    seed = draw(st.integers(0, 2**16))
    norms = st.sampled_from([None, "batch", "layer"])
    convs = draw(st.lists(st.tuples(st.integers(1, 4), st.sampled_from([1, 3]), st.sampled_from([1, 2]), norms), max_size=2))
    dense = draw(st.lists(st.tuples(st.integers(1, 6), norms), max_size=3))
    layers = [LayerSpec(LayerKind.CONV, c, kernel_size=k, pool=p, norm=n) for c, k, p, n in convs]
    layers += [LayerSpec(LayerKind.LINEAR, w, draw(st.sampled_from(["relu", "tanh", "identity"])), norm=n) for w, n in dense]
    layers.append(LayerSpec(LayerKind.LINEAR, 3, "identity"))
    shape = draw(st.sampled_from([(2, 4, 4), (2, 6), (6,)] if convs else [(2, 4, 4), (2, 6), (5,)]))
    gap = bool(convs) and draw(st.booleans())
    skeleton = Genome(shape, tuple(layers), gap=gap)
    skips = [e for e in candidate_skips(skeleton) if draw(st.booleans())]
    genome = Genome.random(shape, layers, skips, seed=seed, gap=gap)
    if not draw(st.booleans()):
        return genome
    state = {k: {"exp_avg": w.clone(), "exp_avg_sq": w**2, "step": torch.tensor(7.0)}
             for k, w in genome.weights.items()}
    return genome.replace(optim_state=state)  # as if trained 7 Adam steps with plasticity.carry_optimizer


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genome=genomes(), choices=st.lists(st.integers(0, len(SPECS) - 1), max_size=50), seed=st.integers(0, 2**16))
def test_any_operator_sequence_yields_a_valid_network(genome: Genome, choices: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = torch.randn((8, *genome.input_shape), generator=torch.Generator().manual_seed(seed))
    data = (x, torch.arange(8) % genome.output_size)
    for i in choices:
        op = make_operator(SPECS[i])
        if op.applicable(genome):
            before = {k: v.clone() for k, v in genome.weights.items()}
            child = op.apply(genome, rng, data=data)
            assert all(torch.equal(before[k], genome.weights[k]) for k in before), f"{op} mutated its input"
            genome = child
    net = genome.to_module()
    out = net(x)
    assert out.shape == (8, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    restored = Genome.from_dict(json.loads(json.dumps(genome.to_dict())), weights=dict(genome.weights))
    with torch.no_grad():
        assert torch.equal(restored.to_module().eval()(x), genome.to_module().eval()(x))
    trained = train(genome, x, data[1], PlasticityConfig(carry_optimizer=True), steps=1).genome
    for name, state in trained.optim_state.items():  # one more step on the carried state, one on a fresh one
        assert state["step"].item() == (8 if name in genome.optim_state else 1), name


@settings(max_examples=25, deadline=None)
@given(features=st.integers(1, 8), outputs=st.integers(1, 4), carried=st.booleans(), seed=st.integers(0, 2**16))
def test_deepen_grows_a_first_hidden_layer_exactly(features: int, outputs: int, carried: bool, seed: int) -> None:
    """From no hidden layer (NEAT's minimal start), deepen still applies: same outputs, same shape, state kept."""
    genome = Genome.mlp((features,), (), outputs, seed=seed)
    if carried:
        genome = genome.replace(optim_state={k: {"exp_avg": w.clone()} for k, w in genome.weights.items()})
    op = make_operator({"op": "deepen", "activation": "identity"})
    assert op.applicable(genome)
    grown = op.apply(genome, np.random.default_rng(seed))
    assert [layer.width for layer in grown.layers] == [features, outputs]
    x = torch.randn((8, features), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        assert torch.allclose(grown.to_module()(x), genome.to_module()(x), atol=1e-6)
    assert set(grown.optim_state) == ({"layers.1.weight", "layers.1.bias"} if carried else set())
    image = Genome.mlp((1, features, 2), (), outputs, seed=seed)
    assert not op.applicable(image)


def test_every_registered_operator_is_exercised() -> None:
    assert {s["op"] for s in SPECS} == set(OPERATORS)
