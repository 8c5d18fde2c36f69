from __future__ import annotations

import numpy as np
import pytest

from evo.genome import Genome
from evo.operators import OPERATORS, Preservation, integer, make_operator, mutate_weights, prune_neurons, register, widen
from tests.operators._helpers import make_mlp, rng


def test_register_fills_the_registry_with_the_signature_defaults() -> None:
    @register("scaled_noop", {"times": integer(1), "mode": integer(0, optional=True)}, preserves=Preservation.YES, note="n")
    def scaled_noop(genome: Genome, rng: np.random.Generator, times: int = 3, mode: int | None = None) -> Genome:
        return genome

    try:
        definition = OPERATORS["scaled_noop"]
        assert [(p.name, p.default, p.rule.text) for p in definition.params] == [
            ("times", 3, "an int >= 1"),
            ("mode", None, "an int >= 0 or null"),
        ]
        assert not definition.uses_data and definition.fn is not scaled_noop
        assert str(make_operator({"op": "scaled_noop", "times": 2})) == "scaled_noop(times=2)"
    finally:
        del OPERATORS["scaled_noop"]


def test_register_refuses_rules_that_do_not_match_the_signature_and_taken_names() -> None:
    def op(genome: Genome, rng: np.random.Generator, k: int = 1) -> Genome:
        return genome

    with pytest.raises(TypeError, match=r"rules for \['j'\], but op takes \['k'\]"):
        register("mismatched", {"j": integer(1)}, preserves=Preservation.NO, note="")(op)
    with pytest.raises(TypeError, match="'widen' is registered already"):
        register("widen", {"k": integer(1)}, preserves=Preservation.NO, note="")(op)
    assert "mismatched" not in OPERATORS


@pytest.mark.parametrize(
    ("spec", "call"),
    [
        ({"op": "widen", "k": 0}, lambda g: widen(g, rng(), k=0)),
        ({"op": "widen", "init": "ones"}, lambda g: widen(g, rng(), None, 1, "ones")),  # positional too
        ({"op": "prune_neurons", "compensate": "yes"}, lambda g: prune_neurons(g, rng(), compensate="yes")),
        ({"op": "mutate_weights", "rate": 0}, lambda g: mutate_weights(g, rng(), rate=0)),
    ],
)
def test_direct_calls_break_the_same_rule_as_configs(spec: dict[str, object], call: object) -> None:
    genome = make_mlp()
    with pytest.raises(ValueError) as config_error:
        make_operator(spec)
    with pytest.raises(ValueError) as call_error:
        call(genome)  # type: ignore[operator]
    key = next(k for k in spec if k != "op")
    rule = config_error.value.args[0].split(" must be ")[1]
    assert call_error.value.args[0] == f"{spec['op']}: {key} must be {rule}"


def test_a_genome_the_operator_cannot_change_is_refused_before_the_rules() -> None:
    """Pruning 0 units of a layer of 6: the count it needed (1..5) says more than the rule (int >= 1)."""
    with pytest.raises(ValueError, match=r"prune_neurons: amount must remove 1..5 units of a layer of width 6, got 0"):
        prune_neurons(make_mlp(), rng(), layer=0, amount=0)
    with pytest.raises(ValueError, match=r"operator 'prune_neurons': parameter 'amount' must be an int >= 1"):
        make_operator({"op": "prune_neurons", "amount": 0})


def test_direct_calls_take_numpy_integers_and_keep_results() -> None:
    g = make_mlp()
    a, b = widen(g, rng(3), layer=np.int64(1), k=np.int64(2)), widen(g, rng(3), layer=1, k=2)
    assert a.layers[1].width == g.layers[1].width + 2
    assert all(bool((a.weights[k] == b.weights[k]).all()) for k in a.weights)
