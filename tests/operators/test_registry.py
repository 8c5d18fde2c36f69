from __future__ import annotations

import pytest

from evo.genome import Genome
from evo.operators import OPERATORS, Preservation, describe_operators, make_operator
from tests.operators._helpers import inputs, make_mlp, max_delta, rng


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"op": "grow"}, "unknown operator 'grow'; allowed: ["),
        ({"k": 1}, "a string 'op'"),
        ({"op": "widen", "kk": 2}, "operator 'widen': unknown parameter 'kk'; allowed: ['init', 'k', 'layer', 'noise']"),
        ({"op": "widen", "k": "8"}, "operator 'widen': parameter 'k' must be an int >= 1, got '8'"),
        ({"op": "widen", "k": True}, "parameter 'k' must be an int >= 1, got True"),
        ({"op": "widen", "k": 0}, "parameter 'k' must be an int >= 1, got 0"),
        ({"op": "widen", "init": "ones"}, "parameter 'init' must be one of ['zero', 'split', 'random'], got 'ones'"),
        ({"op": "prune_neurons", "amount": 1.0}, "parameter 'amount' must be an int >= 1 or a float in (0, 1), got 1.0"),
        ({"op": "prune_neurons", "importance": "l3"}, "parameter 'importance' must be one of"),
        ({"op": "prune_neurons", "compensate": "yes"}, "parameter 'compensate' must be true or false"),
        ({"op": "set_dropout", "p": 1}, "parameter 'p' must be a number in [0, 1), got 1"),
        ({"op": "mutate_weights", "sigma": 0}, "parameter 'sigma' must be a number in (0, inf), got 0"),
        ({"op": "deepen", "position": 0}, "parameter 'position' must be an int >= 1 or null, got 0"),
    ],
)
def test_bad_specs_name_operator_parameter_and_allowed_values(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as err:
        make_operator(spec)
    assert message in str(err.value)


def test_genome_dependent_errors_raise_at_apply_time() -> None:
    g = make_mlp()
    with pytest.raises(ValueError, match=r"widen: layer must be one of \[0, 1, 2\]"):
        make_operator({"op": "widen", "layer": 7}).apply(g, rng())
    with pytest.raises(ValueError, match=r"prune_neurons: amount must remove 1..5 units"):
        make_operator({"op": "prune_neurons", "layer": 0, "amount": 9}).apply(g, rng())


def test_applicable_detects_impossible_operators() -> None:
    linear = Genome.mlp((3,), hidden=(), output_size=2)
    one_hidden = Genome.mlp((3,), hidden=(1,), output_size=2)
    assert not make_operator({"op": "widen"}).applicable(linear)
    assert not make_operator({"op": "remove_layer"}).applicable(one_hidden)
    assert not make_operator({"op": "prune_neurons"}).applicable(one_hidden)
    assert not make_operator({"op": "add_skip"}).applicable(one_hidden)
    assert not make_operator({"op": "remove_skip"}).applicable(one_hidden)
    assert not make_operator({"op": "deepen", "position": 3}).applicable(one_hidden)
    assert make_operator({"op": "add_skip"}).applicable(Genome.mlp((3,), hidden=(4, 4), output_size=2))
    assert not make_operator({"op": "prune_neurons", "amount": 6}).applicable(make_mlp())
    assert make_operator({"op": "prune_neurons", "amount": 5}).applicable(make_mlp())
    assert make_operator({"op": "prune_neurons", "amount": 5}).apply(make_mlp(), rng()).layers[0].width == 1


def test_apply_passes_calibration_data_to_data_operators() -> None:
    g = make_mlp()
    x = inputs(g, 32)
    data = (x, x[:, 0].ge(0).long())
    op = make_operator({"op": "prune_neurons", "layer": 0, "importance": "taylor"})
    assert op.apply(g, rng(), data=data).layers[0].width == 5
    assert make_operator({"op": "widen", "init": "split"}).apply(g, rng(), data=data).num_params() > g.num_params()


def test_str_and_preservation_flags() -> None:
    op = make_operator({"op": "widen", "k": 8, "init": "split"})
    assert str(op) == "widen(k=8, init=split)"
    assert op.preserves_function
    assert not make_operator({"op": "widen", "init": "random"}).preserves_function
    assert not make_operator({"op": "widen", "noise": 0.01}).preserves_function
    assert make_operator({"op": "add_skip"}).preserves_function
    assert not make_operator({"op": "mutate_weights"}).preserves_function


def test_operators_flagged_as_preserving_do_preserve(genome: Genome) -> None:
    x = inputs(genome)
    for name in OPERATORS:
        op = make_operator({"op": name})
        if op.preserves_function and op.applicable(genome):
            assert max_delta(genome, op.apply(genome, rng()), x) <= 1e-5, name


def test_describe_operators_lists_every_operator() -> None:
    rows = describe_operators()
    assert [r.name for r in rows] == list(OPERATORS)
    assert {r.preserves for r in rows} == {p.value for p in Preservation}
    widen_row = next(r for r in rows if r.name == "widen")
    assert "k: an int >= 1 = 1" in widen_row.params and "init: one of" in widen_row.params


def test_evo_ops_command_lists_every_operator() -> None:
    from typer.testing import CliRunner

    from evo.cli import app

    result = CliRunner().invoke(app, ["ops"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in OPERATORS:
        assert name in result.output
    assert "layer: an int >= 0 or null = null" in result.output
