"""Operator benchmark: function-preservation error and time of every operator on an MLP and a small CNN.

Run ``python -m benchmarks.operators``; it prints the table and writes the
"operators" section of docs/benchmarks.md. Error = max |Δ output| on random
inputs (float32, eval mode); time = median over repeats of one application.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch

from benchmarks._report import load_average, table, update_section
from evo.genome import Genome, LayerKind, LayerSpec
from evo.operators import describe_operators, make_operator

SPECS: list[dict[str, Any]] = [
    {"op": "widen", "k": 8, "init": "zero"},
    {"op": "widen", "k": 8, "init": "split"},
    {"op": "widen", "k": 8, "init": "split", "noise": 0.01},
    {"op": "widen", "k": 8, "init": "random"},
    {"op": "deepen"},
    {"op": "add_skip"},
    {"op": "prune_neurons", "amount": 0.25, "importance": "l1", "compensate": False},
    {"op": "prune_neurons", "amount": 0.25, "importance": "l1"},
    {"op": "prune_neurons", "amount": 0.25, "importance": "taylor"},
    {"op": "remove_layer"},
    {"op": "set_dropout", "p": 0.2},
    {"op": "mutate_weights", "sigma": 0.01},
]
REPEATS = 15


def networks() -> dict[str, Genome]:
    """An MLP 64-256-256-10 and a CNN 1×8×8 with two conv blocks (the second shape-neutral, so it can be removed)."""
    cnn = [
        LayerSpec(LayerKind.CONV, 16, pool=2),
        LayerSpec(LayerKind.CONV, 16, pool=1),
        LayerSpec(LayerKind.LINEAR, 64),
        LayerSpec(LayerKind.LINEAR, 10, "identity"),
    ]
    return {
        "MLP 64-256-256-10": Genome.mlp((64,), hidden=(256, 256), output_size=10, seed=0),
        "CNN 1×8×8 conv16/pool2-conv16-64-10": Genome.random((1, 8, 8), cnn, seed=0),
    }


def measure(genome: Genome, spec: dict[str, Any]) -> tuple[float, float]:
    """(max |Δ output|, median seconds) of applying ``spec`` to ``genome``."""
    op = make_operator(spec)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((512, *genome.input_shape), generator=gen)
    data = (x[:256], torch.randint(0, genome.output_size, (256,), generator=gen))
    times, child = [], genome
    for i in range(REPEATS):
        start = time.perf_counter()
        child = op.apply(genome, np.random.default_rng(i), data=data)
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        delta = (child.to_module().eval()(x) - genome.to_module().eval()(x)).abs().max()
    return float(delta), statistics.median(times)


def main() -> None:
    torch.set_num_threads(1)
    preserves = {row.name: row.preserves for row in describe_operators()}
    rows = []
    for net_name, genome in networks().items():
        for spec in SPECS:
            op = make_operator(spec)
            if not op.applicable(genome):
                continue
            delta, seconds = measure(genome, spec)
            rows.append([net_name, str(op), "yes" if op.preserves_function else preserves[op.name], f"{delta:.2e}", f"{seconds * 1e3:.2f}"])
    text = table(["network", "operator", "preserves (registry)", "max abs Δ output", "ms (median)"], rows)
    print(text)
    note = (
        "Δ on 512 random inputs after one application (the last of the timed repeats); "
        f"time is the median of {REPEATS} applications, one torch thread. Data-dependent operators get "
        "a 256-sample calibration batch (random labels). Pruning removes 25% of one random hidden layer. "
        f"Load average (1/5/15 min) at the end: {load_average()} on 2 cores shared with other jobs, so the times are "
        "indicative."
    )
    update_section("operators", "Operators: function preservation and cost", f"{note}\n\n{text}")


if __name__ == "__main__":
    main()
