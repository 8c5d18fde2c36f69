"""Pictures of what evolution found: architecture and lineage diagrams (SVG text), fitness and Pareto plots.

The diagrams are plain SVG built with :mod:`xml.etree` — no graphviz — so they
are well-formed by construction and can be stored as Optuna artifacts or shown
in a notebook (``IPython.display.SVG(text)``). Plots use matplotlib's
object-oriented API without pyplot, so no global backend is switched.

Example:
    >>> svg = architecture_svg(child, parent=parent)  # doctest: +SKIP
    >>> Path("child.svg").write_text(svg)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from evo.genome import Genome, LayerKind, LayerSpec
from evo.records import GenerationRecord, Individual
from evo.selection import pareto_front
from evo.types import Objective

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ArchitectureDiff",
    "Change",
    "LayerChange",
    "architecture_svg",
    "diff_genomes",
    "lineage",
    "lineage_svg",
    "plot_fitness",
    "plot_pareto",
]

_STYLE = """
text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#222}
rect{fill:#eef3fb;stroke:#4a6fa5;stroke-width:1.5}
.grown rect,.inserted rect{fill:#e3f6e3;stroke:#2e8b57}
.inserted rect{stroke-width:3}
.shrunk rect{fill:#fde8e8;stroke:#c0392b}
.changed rect{fill:#fff6dd;stroke:#c98b00}
.removed rect{fill:#f4f4f4;stroke:#999;stroke-dasharray:5 3}
.io rect{fill:#f4f4f4;stroke:#666}
.focus rect{stroke:#000;stroke-width:3}
.born{fill:#2e8b57;font-weight:bold}
.killed{fill:#c0392b;font-weight:bold}
.note{fill:#666;font-size:11px}
.edge{stroke:#555;fill:none;stroke-width:1.2;marker-end:url(#arrow)}
.skip{stroke:#4a6fa5;fill:none;stroke-width:1.5}
.skip.new{stroke:#2e8b57;stroke-width:3}
.skip.removed{stroke:#c0392b;stroke-dasharray:5 3}
"""
_LINE = 15  # text line height (px)
_BOX_W, _BOX_H, _GAP = 132, 84, 36  # architecture boxes
_NODE_W, _NODE_H, _ROW = 150, 40, 96  # lineage nodes


# ------------------------------------------------------------------ layer matching
class Change(str, Enum):
    """What happened to a layer between a parent and a child genome."""

    SAME = "same"
    GROWN = "grown"
    SHRUNK = "shrunk"
    CHANGED = "changed"
    INSERTED = "inserted"
    REMOVED = "removed"


@dataclass(frozen=True)
class LayerChange:
    """One aligned layer: its index in the parent and/or child, and how it changed.

    Attributes:
        parent: index in the parent genome (``None`` for an inserted layer).
        child: index in the child genome (``None`` for a removed layer).
        change: the kind of change.
        born: neurons (channels) added by DropIn/neurogenesis.
        killed: neurons removed by apoptosis.
        notes: other differences, e.g. ``"dropout 0→0.2"``.
    """

    parent: int | None
    child: int | None
    change: Change
    born: int = 0
    killed: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArchitectureDiff:
    """Layer alignment plus skip edges (in child indices) that appeared or vanished (in parent indices)."""

    layers: tuple[LayerChange, ...]
    new_skips: tuple[tuple[int, int], ...]
    removed_skips: tuple[tuple[int, int], ...]


def _match_cost(a: LayerSpec, b: LayerSpec) -> float:
    """0 for equal specs; 0.25–0.75 for the same kind, more the further the widths differ; impossible across kinds."""
    if a.kind is not b.kind:
        return math.inf
    return 0.0 if a == b else 0.25 + 0.5 * abs(a.width - b.width) / max(a.width, b.width)


def diff_genomes(parent: Genome, child: Genome) -> ArchitectureDiff:
    """Align the parent's layers with the child's by structure (weights are not compared).

    Heuristic: a global sequence alignment (Needleman–Wunsch) of the two layer
    lists. Matching two layers costs 0 when their specs are equal, 0.25 to
    0.75 when they are of the same kind but differ (more the further apart
    their widths are), and is impossible across kinds; inserting or removing a
    layer costs 1. So a widened or pruned layer stays matched to its origin, a
    deepen/remove operator shows up as one inserted/removed layer, and of two
    candidates the closer in width is matched. Among equally cheap alignments
    (e.g. an inserted layer as wide as its neighbours) the insertion is placed
    as early as possible.
    """
    p, c = parent.layers, child.layers
    cost = [[0.0] * (len(c) + 1) for _ in range(len(p) + 1)]
    for i in range(len(p) + 1):
        for j in range(len(c) + 1):
            if i == 0 or j == 0:
                cost[i][j] = float(i + j)
                continue
            cost[i][j] = min(cost[i - 1][j - 1] + _match_cost(p[i - 1], c[j - 1]), cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = len(p), len(c)
    while i or j:  # trace back, preferring a match, then a removal
        if i and j and cost[i][j] == cost[i - 1][j - 1] + _match_cost(p[i - 1], c[j - 1]):
            i, j = i - 1, j - 1
            pairs.append((i, j))
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
            pairs.append((i, None))
        else:
            j -= 1
            pairs.append((None, j))
    layers = tuple(_layer_change(parent, child, a, b) for a, b in reversed(pairs))
    to_child = {lc.parent: lc.child for lc in layers if lc.parent is not None}
    mapped = {(to_child[s], to_child[d]) for s, d in parent.skips}
    new = tuple(edge for edge in child.skips if edge not in mapped)
    removed = tuple((s, d) for s, d in parent.skips if (to_child[s], to_child[d]) not in set(child.skips))
    return ArchitectureDiff(layers, new, removed)


def _layer_change(parent: Genome, child: Genome, a: int | None, b: int | None) -> LayerChange:
    if a is None:
        return LayerChange(a, b, Change.INSERTED, born=child.layers[b].width if b is not None else 0)
    if b is None:
        return LayerChange(a, b, Change.REMOVED, killed=parent.layers[a].width)
    old, new = parent.layers[a], child.layers[b]
    notes = tuple(
        f"{name} {getattr(old, name):g}→{getattr(new, name):g}" if name not in ("activation", "norm")
        else f"{old.activation}→{new.activation}" if name == "activation" else f"norm {old.norm or 'none'}→{new.norm or 'none'}"
        for name in ("activation", "norm", "dropout", "kernel_size", "pool")
        if getattr(old, name) != getattr(new, name)
    )
    delta = new.width - old.width
    change = Change.GROWN if delta > 0 else Change.SHRUNK if delta < 0 else Change.CHANGED if notes else Change.SAME
    return LayerChange(a, b, change, born=max(delta, 0), killed=max(-delta, 0), notes=notes)


# ------------------------------------------------------------------ SVG helpers
def _svg(width: float, height: float) -> ET.Element:
    root = ET.Element("svg", xmlns="http://www.w3.org/2000/svg", width=f"{width:g}", height=f"{height:g}", viewBox=f"0 0 {width:g} {height:g}")
    ET.SubElement(root, "style").text = _STYLE
    marker = ET.SubElement(ET.SubElement(root, "defs"), "marker", id="arrow", markerWidth="8", markerHeight="8", refX="7", refY="4", orient="auto")
    ET.SubElement(marker, "path", d="M0,0 L8,4 L0,8 z", fill="#555")
    return root


def _box(root: ET.Element, x: float, y: float, w: float, h: float, lines: Sequence[tuple[str, str]], cls: str, title: str) -> None:
    """A rectangle with centred text lines, each ``(text, css class)``; ``title`` shows on hover."""
    group = ET.SubElement(root, "g", {"class": cls})
    ET.SubElement(group, "title").text = title
    ET.SubElement(group, "rect", x=f"{x:g}", y=f"{y:g}", width=f"{w:g}", height=f"{h:g}", rx="6")
    top = y + (h - _LINE * len(lines)) / 2 + _LINE - 3
    for k, (text, text_cls) in enumerate(lines):
        attrs = {"x": f"{x + w / 2:g}", "y": f"{top + k * _LINE:g}", "text-anchor": "middle"}
        ET.SubElement(group, "text", attrs | ({"class": text_cls} if text_cls else {})).text = text


def _path(root: ET.Element, d: str, cls: str, title: str | None = None) -> None:
    path = ET.SubElement(root, "path", {"d": d, "class": cls})
    if title:
        ET.SubElement(path, "title").text = title


def _text(root: ET.Element, x: float, y: float, text: str, cls: str = "note", anchor: str = "start") -> None:
    ET.SubElement(root, "text", {"x": f"{x:g}", "y": f"{y:g}", "class": cls, "text-anchor": anchor}).text = text


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _to_text(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


# ------------------------------------------------------------------ architecture
def _layer_lines(genome: Genome, i: int, lc: LayerChange | None) -> list[tuple[str, str]]:
    spec = genome.layers[i]
    kernel = "×".join([str(spec.kernel_size)] * genome.rank)
    head = f"L{i} conv {kernel}" if spec.kind is LayerKind.CONV else f"L{i} linear"
    extras = ([f"{spec.norm} norm"] if spec.norm else []) + [spec.activation] + ([f"pool {spec.pool}"] if spec.pool > 1 else [])
    extras += [f"dropout {spec.dropout:g}"] if spec.dropout else []
    if lc is not None and lc.change is Change.REMOVED:
        head = f"removed parent L{i}"
    lines = [(head + (" (out)" if i == genome.num_layers - 1 else ""), ""), (f"width {spec.width}", ""), (" · ".join(extras), "")]
    if lc is not None:
        lines += [(f"+{lc.born} born", "born")] if lc.born else []
        lines += [(f"−{lc.killed} killed", "killed")] if lc.killed else []
        lines += [(note, "note") for note in lc.notes]
    return lines


def architecture_svg(genome: Genome, parent: Genome | None = None) -> str:
    """The network as boxes left to right (input, layers, output), skips as arcs above.

    Args:
        genome: the network to draw.
        parent: when given, what the last operators changed is highlighted (see
            :func:`diff_genomes`): grown layers in green with ``+k born``, shrunk ones
            in red with ``−k killed``, inserted layers bold green, removed layers as
            dashed ghosts, new skips thick green, removed skips dashed red.

    Returns:
        The SVG document as text.
    """
    diff = diff_genomes(parent, genome) if parent is not None else None
    slots = list(diff.layers) if diff else [LayerChange(None, i, Change.SAME) for i in range(genome.num_layers)]
    skips = [(s, d, "skip new" if diff and (s, d) in diff.new_skips else "skip") for s, d in genome.skips]
    slot_of_child = {lc.child: k for k, lc in enumerate(slots) if lc.child is not None}
    slot_of_parent = {lc.parent: k for k, lc in enumerate(slots) if lc.parent is not None}
    arcs = [(slot_of_child[s], slot_of_child[d], cls, f"skip {s}→{d}") for s, d, cls in skips]
    arcs += [(slot_of_parent[s], slot_of_parent[d], "skip removed", f"removed skip {s}→{d} (parent indices)") for s, d in (diff.removed_skips if diff else ())]
    arc_height = 24 + 14 * max((d - s for s, d, _, _ in arcs), default=0)
    top, n = 16 + arc_height, len(slots) + 2  # + input and output boxes
    width, height = 20 + n * (_BOX_W + _GAP), top + _BOX_H + (62 if diff else 30)
    root = _svg(width, height)
    x_of = [20 + (k + 1) * (_BOX_W + _GAP) for k in range(len(slots))]
    _box(root, 20, top, _BOX_W, _BOX_H, [("input", ""), ("×".join(map(str, genome.input_shape)), "")], "io", f"input {genome.input_shape}")
    for k, lc in enumerate(slots):
        owner, i = (genome, lc.child) if lc.child is not None else (parent, lc.parent)
        assert owner is not None and i is not None  # every slot has a child or a parent index
        layer_lc = lc if diff else None
        _box(root, x_of[k], top, _BOX_W, _BOX_H, _layer_lines(owner, i, layer_lc), f"layer {lc.change.value}", f"{lc.change.value}: {owner.layers[i]}")
    _box(root, 20 + (n - 1) * (_BOX_W + _GAP), top, _BOX_W, _BOX_H, [("output", ""), (f"{genome.output_size} units", "")], "io", "output")
    for k in range(n - 1):  # the chain of arrows; the flatten point is labelled
        x = 20 + k * (_BOX_W + _GAP) + _BOX_W
        _path(root, f"M{x:g},{top + _BOX_H / 2:g} H{x + _GAP - 2:g}", "edge")
        child_index = slots[k].child if k < len(slots) else None
        if child_index == genome.flatten_at and (child_index > 0 or len(genome.input_shape) > 1):
            _text(root, x + _GAP / 2, top + _BOX_H / 2 - 6, "gap" if genome.gap else "flatten", anchor="middle")
    for s, d, cls, title in arcs:
        x1, x2 = x_of[s] + _BOX_W / 2, x_of[d] + _BOX_W / 2
        rise = top - 24 - 14 * (d - s)
        _path(root, f"M{x1:g},{top:g} C{x1:g},{rise:g} {x2:g},{rise:g} {x2:g},{top:g}", cls, title)
    _text(root, 20, height - 34 if diff else height - 10, f"{genome}  ·  {genome.num_params():,} parameters")
    if diff:
        born, killed = sum(lc.born for lc in diff.layers), sum(lc.killed for lc in diff.layers)
        summary = f"vs parent: {born} neurons born, {killed} killed, {len(diff.new_skips)} new skips, {len(diff.removed_skips)} removed skips"
        _text(root, 20, height - 14, summary)
    return _to_text(root)


# ------------------------------------------------------------------ lineage
def lineage(individuals: Mapping[int, Individual], individual_id: int) -> list[Individual]:
    """The individual and all its stored ancestors (every parent, not only the first), newest first.

    Raises:
        ValueError: ``individual_id`` is not in ``individuals``.
    """
    if individual_id not in individuals:
        raise ValueError(f"lineage individual_id={individual_id} is not among the {len(individuals)} individuals")
    found: dict[int, Individual] = {}
    stack = [individual_id]
    while stack:
        current = stack.pop()
        if current in found or current not in individuals:
            continue  # ancestors that were not stored are skipped
        found[current] = individuals[current]
        stack.extend(found[current].parents)
    return sorted(found.values(), key=lambda ind: (ind.generation, ind.id), reverse=True)


def _fitness_text(ind: Individual, objective: str) -> str:
    if ind.evaluation is None:
        return "not evaluated"
    if not ind.evaluation.ok:
        return "failed"
    value = ind.objectives.get(objective)
    return f"{objective} {value:.4g}" if value is not None else f"no {objective}"


def lineage_svg(individuals: Mapping[int, Individual], individual_id: int, objective: str = "fitness") -> str:
    """The family tree of an individual: one row per generation (oldest on top), parent → child arrows.

    Args:
        individuals: every individual of the run known so far, by id.
        individual_id: whose ancestry to draw (outlined in black).
        objective: the objective shown in each node (the run's primary objective).

    Returns:
        The SVG document as text. Each node shows id, generation and ``objective``;
        the edge from an individual's first parent carries the operators that made it.
    """
    members = lineage(individuals, individual_id)
    generations = sorted({ind.generation for ind in members})
    rows = {g: sorted(ind.id for ind in members if ind.generation == g) for g in generations}
    pitch = _NODE_W + 70
    width = 20 + max(len(ids) for ids in rows.values()) * pitch
    height = 30 + len(generations) * _ROW
    position = {i: (20 + k * pitch, 20 + r * _ROW) for r, g in enumerate(generations) for k, i in enumerate(rows[g])}
    root = _svg(width, height)
    for ind in members:
        x, y = position[ind.id]
        for k, parent in enumerate(p for p in ind.parents if p in position):
            px, py = position[parent]
            _path(root, f"M{px + _NODE_W / 2:g},{py + _NODE_H:g} L{x + _NODE_W / 2:g},{y - 2:g}", "edge")
            if k == 0 and ind.operators:
                label = _shorten("; ".join(ind.operators), 44)
                _text(root, (px + x) / 2 + _NODE_W / 2 + 4, (py + _NODE_H + y) / 2 + 4, label)
        lines = [(f"#{ind.id} · gen {ind.generation}", ""), (_fitness_text(ind, objective), "")]
        title = f"#{ind.id} {ind.genome}" + (f"\n{'; '.join(ind.operators)}" if ind.operators else "")
        _box(root, x, y, _NODE_W, _NODE_H, lines, "node focus" if ind.id == individual_id else "node", title)
    return _to_text(root)


# ------------------------------------------------------------------ plots
def _save_figure(figure: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"plot path={str(path)!r} must end in .png or .svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    return path


def plot_fitness(history: Sequence[GenerationRecord], path: str | os.PathLike[str], objective: str | None = None) -> Path:
    """Best fitness so far per generation, as a PNG or SVG (by ``path``'s suffix).

    Args:
        history: the run's generation records.
        path: where to write; ``.png`` or ``.svg``.
        objective: which of ``best_objectives`` to plot; default the first (the primary objective).
    """
    names = list(history[0].best_objectives) if history else []
    if not names:
        raise ValueError("plot_fitness history has no generation with objectives")
    name = objective or names[0]
    values = [record.best_objectives.get(name, math.nan) for record in history]
    from matplotlib.figure import Figure  # here: drawing a diagram (the mirror does, every generation) needs no matplotlib

    figure = Figure(figsize=(6, 3.5))
    axes = figure.add_subplot()
    axes.plot([record.generation for record in history], values, marker="o")
    axes.set(xlabel="generation", ylabel=f"best {name}", title=f"best {name} per generation")
    axes.grid(alpha=0.3)
    return _save_figure(figure, path)


def plot_pareto(individuals: Iterable[Individual], objectives: Sequence[Objective | str], path: str | os.PathLike[str]) -> Path:
    """Every evaluated individual on two objectives, with the Pareto front highlighted and labelled by id.

    Args:
        individuals: e.g. ``view.individuals.values()``.
        objectives: two objectives; a plain name means an objective to maximise.
        path: where to write; ``.png`` or ``.svg``.
    """
    if len(objectives) != 2:
        raise ValueError(f"plot_pareto objectives must name exactly 2 objectives, got {len(objectives)}")
    objs = [o if isinstance(o, Objective) else Objective(o) for o in objectives]
    ok = [i for i in individuals if i.evaluation is not None and i.evaluation.ok and all(math.isfinite(i.objectives.get(o.name, math.nan)) for o in objs)]
    if not ok:
        raise ValueError(f"plot_pareto found no evaluated individual with both {objs[0].name!r} and {objs[1].name!r}")
    front = sorted(pareto_front(ok, objs), key=lambda i: i.objectives[objs[0].name])
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4.5))
    axes = figure.add_subplot()
    axes.scatter([i.objectives[objs[0].name] for i in ok], [i.objectives[objs[1].name] for i in ok], c="#bbbbbb", label="evaluated")
    xs, ys = [i.objectives[objs[0].name] for i in front], [i.objectives[objs[1].name] for i in front]
    axes.plot(xs, ys, "o-", color="#c0392b", label="Pareto front")
    for ind, x, y in zip(front, xs, ys, strict=True):
        axes.annotate(f"#{ind.id}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set(xlabel=f"{objs[0].name} ({objs[0].direction.value})", ylabel=f"{objs[1].name} ({objs[1].direction.value})")
    axes.legend()
    axes.grid(alpha=0.3)
    return _save_figure(figure, path)
