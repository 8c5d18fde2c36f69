"""Architecture and lineage SVGs, layer matching, fitness and Pareto plots."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.genome import Genome, LayerKind, LayerSpec
from evo.records import GenerationRecord, Individual
from evo.tasks import Budget, Direction, Evaluation, Objective
from evo.viz import Change, architecture_svg, diff_genomes, lineage, lineage_svg, plot_fitness, plot_pareto

CONV, LINEAR = LayerKind.CONV, LayerKind.LINEAR
SVG = "{http://www.w3.org/2000/svg}"


def net(widths: list[int], skips: list[tuple[int, int]] = (), dropout: float = 0.0) -> Genome:  # type: ignore[assignment]
    layers = [LayerSpec(LINEAR, w, "relu", dropout) for w in widths] + [LayerSpec(LINEAR, 3, "identity")]
    return Genome.random((10,), layers, skips=skips, seed=0)


def texts(svg: str) -> list[str]:
    return [el.text or "" for el in ET.fromstring(svg).iter(f"{SVG}text")]


def paths(svg: str, css: str) -> list[ET.Element]:
    return [el for el in ET.fromstring(svg).iter(f"{SVG}path") if el.get("class") == css]


# ------------------------------------------------------------------ architecture
def test_architecture_svg_shows_widths_skips_and_conv_details() -> None:
    layers = [LayerSpec(CONV, 6, "relu", 0.0, 5, 2), LayerSpec(LINEAR, 20, "tanh", 0.3), LayerSpec(LINEAR, 13, "relu"), LayerSpec(LINEAR, 4, "identity")]
    genome = Genome.random((1, 8, 8), layers, skips=[(1, 3)])
    svg = architecture_svg(genome)
    words = texts(svg)
    for expected in ("input", "1×8×8", "L0 conv 5×5", "width 6", "width 20", "width 13", "width 4", "relu · pool 2", "tanh · dropout 0.3", "flatten", "output"):
        assert expected in words, expected
    assert len(paths(svg, "skip")) == 1
    assert not any("born" in w or "killed" in w for w in words)  # nothing to compare against


def test_grown_layer_marks_neurons_born() -> None:
    parent, child = net([16, 12]), net([24, 12])
    svg = architecture_svg(child, parent=parent)
    assert "+8 born" in texts(svg)
    assert [lc.change for lc in diff_genomes(parent, child).layers] == [Change.GROWN, Change.SAME, Change.SAME]


def test_shrunk_layer_marks_neurons_killed_and_other_changes() -> None:
    parent, child = net([16, 12]), net([16, 7], dropout=0.2)
    svg = architecture_svg(child, parent=parent)
    words = texts(svg)
    assert "−5 killed" in words and "dropout 0→0.2" in words
    assert any(g.get("class") == "layer shrunk" for g in ET.fromstring(svg).iter(f"{SVG}g"))


def test_inserted_layer_and_new_skip_are_highlighted() -> None:
    parent = net([16, 12], skips=[(0, 2)])
    child = net([16, 5, 12], skips=[(0, 3), (1, 3)])  # a layer inserted at 1; the old skip shifts to (0, 3)
    diff = diff_genomes(parent, child)
    assert [(lc.parent, lc.child, lc.change) for lc in diff.layers] == [
        (0, 0, Change.SAME), (None, 1, Change.INSERTED), (1, 2, Change.SAME), (2, 3, Change.SAME)
    ]
    assert diff.new_skips == ((1, 3),) and diff.removed_skips == ()
    svg = architecture_svg(child, parent=parent)
    assert len(paths(svg, "skip new")) == 1 and len(paths(svg, "skip")) == 1
    assert "+5 born" in texts(svg)


def test_removed_layer_and_skip_are_drawn_as_ghosts() -> None:
    parent = net([16, 9, 12], skips=[(0, 2), (1, 3)])
    child = net([16, 12], skips=[(0, 2)])  # layer 1 removed; skip (1, 3) went with it; (0, 2) → (0, 1) is gone
    diff = diff_genomes(parent, child)
    assert [lc.change for lc in diff.layers] == [Change.SAME, Change.REMOVED, Change.SAME, Change.SAME]
    assert diff.removed_skips == ((0, 2), (1, 3)) and diff.new_skips == ((0, 2),)
    svg = architecture_svg(child, parent=parent)
    assert "−9 killed" in texts(svg)
    assert len(paths(svg, "skip removed")) == 2
    assert any(g.get("class") == "layer removed" for g in ET.fromstring(svg).iter(f"{SVG}g"))


@settings(max_examples=30, deadline=None)
@given(
    parent=st.lists(st.integers(1, 40), min_size=0, max_size=5),
    child=st.lists(st.integers(1, 40), min_size=0, max_size=5),
)
def test_diff_accounts_for_every_layer_and_neuron(parent: list[int], child: list[int]) -> None:
    """Each layer of both genomes appears exactly once, and born − killed is the change in neuron count."""
    p, c = net(parent), net(child)
    diff = diff_genomes(p, c)
    assert [lc.parent for lc in diff.layers if lc.parent is not None] == list(range(p.num_layers))
    assert [lc.child for lc in diff.layers if lc.child is not None] == list(range(c.num_layers))
    assert sum(lc.born - lc.killed for lc in diff.layers) == sum(child) - sum(parent)
    ET.fromstring(architecture_svg(c, parent=p))  # well-formed whatever the change


# ------------------------------------------------------------------ lineage
def individual(i: int, parents: tuple[int, ...], generation: int, fitness: float | None, ops: tuple[str, ...] = ()) -> Individual:
    genome = net([8 + i])
    evaluation = None if fitness is None else Evaluation(i, {"accuracy": fitness, "params": float(genome.num_params())}, genome)
    return Individual(i, genome, parents, ops, generation, evaluation)


@pytest.fixture
def family() -> dict[int, Individual]:
    """0, 1 founders; 2 = mutate(0); 3 = cross(1, 2); 4 = unrelated; 5 = mutate(3) not evaluated."""
    members = [
        individual(0, (), 0, 0.5),
        individual(1, (), 0, 0.6),
        individual(2, (0,), 1, 0.7, ("widen(layer=0, k=4)",)),
        individual(3, (2, 1), 2, 0.8, ("crossover", "prune_neurons(layer=0, k=2)")),
        individual(4, (1,), 2, 0.1, ("deepen(at=1)",)),
        individual(5, (3,), 3, None, ("add_skip(0, 2)",)),
    ]
    return {m.id: m for m in members}


def test_lineage_follows_every_parent_newest_first(family: dict[int, Individual]) -> None:
    assert [m.id for m in lineage(family, 5)] == [5, 3, 2, 1, 0]
    assert [m.id for m in lineage(family, 2)] == [2, 0]
    assert [m.id for m in lineage(family, 0)] == [0]
    with pytest.raises(ValueError, match="individual_id=99"):
        lineage(family, 99)


def test_lineage_skips_ancestors_that_were_not_stored(family: dict[int, Individual]) -> None:
    del family[2]
    assert [m.id for m in lineage(family, 3)] == [3, 1]


def test_lineage_svg_nodes_edges_and_operators(family: dict[int, Individual]) -> None:
    svg = lineage_svg(family, 5, objective="accuracy")
    words = texts(svg)
    for expected in ("#5 · gen 3", "#3 · gen 2", "#0 · gen 0", "accuracy 0.8", "accuracy 0.5", "not evaluated", "widen(layer=0, k=4)", "add_skip(0, 2)"):
        assert expected in words, expected
    assert "crossover; prune_neurons(layer=0, k=2)" in words
    assert not any(w.startswith("#4 ") for w in words)  # not an ancestor
    assert len(paths(svg, "edge")) == 4  # 0→2, 2→3, 1→3, 3→5
    focus = [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "node focus"]
    assert len(focus) == 1 and "#5" in ET.tostring(focus[0], encoding="unicode")


# ------------------------------------------------------------------ plots
def record(generation: int, best: float) -> GenerationRecord:
    return GenerationRecord(generation, (generation,), (generation,), generation, {"accuracy": best, "params": 100.0}, Budget(), 1.0)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_fitness_writes_file(tmp_path: Path, suffix: str) -> None:
    path = plot_fitness([record(g, 0.5 + 0.1 * g) for g in range(4)], tmp_path / "sub" / f"fitness{suffix}")
    assert path.stat().st_size > 1000
    if suffix == ".svg":
        ET.parse(path)


def test_plot_pareto_writes_file_and_labels_the_front(tmp_path: Path, family: dict[int, Individual]) -> None:
    objectives = (Objective("accuracy"), Objective("params", Direction.MINIMIZE))
    path = plot_pareto(family.values(), objectives, tmp_path / "pareto.svg")
    labels = {f"#{i}" for i in range(6) if f"<!-- #{i} -->" in path.read_text()}  # matplotlib keeps text as comments
    assert labels == {"#0", "#1", "#2", "#3"}  # #4 is dominated, #5 unevaluated
    assert plot_pareto(family.values(), ("accuracy", "params"), tmp_path / "pareto.png").stat().st_size > 1000


def test_plots_reject_bad_input(tmp_path: Path, family: dict[int, Individual]) -> None:
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plot_fitness([record(0, 1.0)], tmp_path / "fitness.jpg")
    with pytest.raises(ValueError, match="history"):
        plot_fitness([], tmp_path / "fitness.png")
    with pytest.raises(ValueError, match="exactly 2"):
        plot_pareto(family.values(), ("accuracy",), tmp_path / "p.png")
    with pytest.raises(ValueError, match="no evaluated individual"):
        plot_pareto(family.values(), ("accuracy", "latency"), tmp_path / "p.png")


def test_architecture_svg_shows_conv1d_norms_gap_and_their_changes() -> None:
    layers = [LayerSpec(CONV, 6, "relu", 0.0, 5, 2, "batch"), LayerSpec(LINEAR, 4, "identity")]
    parent = Genome.random((1, 40), layers, gap=True)
    child = parent.replace(layers=(dataclasses.replace(layers[0], norm=None), layers[1]), weights={}).reinitialised(0)
    words = texts(architecture_svg(child, parent=parent))
    for expected in ("1×40", "L0 conv 5", "relu · pool 2", "gap", "norm batch→none"):
        assert expected in words, expected
    assert "batch norm · relu · pool 2" in texts(architecture_svg(parent))
