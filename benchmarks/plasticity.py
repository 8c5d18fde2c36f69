"""Benchmark of plastic training on digits: GradMax vs other growth, sparse rewiring, plastic vs fixed shape.

Writes the "plasticity" section of docs/benchmarks.md. Run:
``.venv/bin/python -m benchmarks.plasticity`` (a few minutes on 2 cores).

Data: scikit-learn's digits, a stratified 80/20 split (seed 0), pixels scaled to [0, 1].
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor

from benchmarks._report import table, update_section
from evo.genome import Genome, weight_name
from evo.operators.importance import task_loss
from evo.plasticity import PlasticityConfig, train
from evo.plasticity.growth import grow

Data = tuple[Tensor, Tensor]
SEEDS = (0, 1, 2)


def digits() -> tuple[Data, Data]:
    """Stratified 80/20 split of digits, pixels in [0, 1]."""
    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(d.data / 16.0, d.target, test_size=0.2, stratify=d.target, random_state=0)
    return (torch.tensor(x_tr, dtype=torch.float32), torch.tensor(y_tr)), (
        torch.tensor(x_te, dtype=torch.float32),
        torch.tensor(y_te),
    )


def accuracy(genome: Genome, data: Data) -> float:
    with torch.no_grad():
        return float((genome.to_module().eval()(data[0]).argmax(1) == data[1]).float().mean())


def mean_over_seeds(run: Callable[[int], Sequence[float]]) -> list[float]:
    return [float(v) for v in np.mean([run(seed) for seed in SEEDS], axis=0)]


# ---------------------------------------------------------------- growth
def new_weight_grads(genome: Genome, data: Data, width: int) -> tuple[float, float]:
    """Gradient norms of the new units' fan-in (weights + bias) and fan-out at the moment of growth."""
    net = genome.to_module()
    task_loss(net(data[0]), data[1]).backward()
    fan_in = torch.cat([net.layers[0].weight.grad[width:].flatten(), net.layers[0].bias.grad[width:]])  # type: ignore[index]
    fan_out = net.layers[1].weight.grad[:, width:]  # type: ignore[index]
    return float(fan_in.norm()), float(fan_out.norm())


def random_direction(grown: Genome, width: int, seed: int, norm: float) -> Genome:
    """Zero fan-in like GradMax, but a random fan-out of the same norm (the ablation of GradMax's choice)."""
    w, head = dict(grown.weights), weight_name(1)
    fan_out = torch.randn(w[head].shape[0], w[head].shape[1] - width, generator=torch.Generator().manual_seed(seed))
    w[head] = torch.cat([w[head][:, :width], fan_out * norm / fan_out.norm()], dim=1)
    return grown.with_weights(w)


def growth_section(train_data: Data, test_data: Data) -> str:
    width, k, before, after = 8, 8, 150, 150
    rows = []
    for strategy in ("gradmax", "gradmax-random-direction", "zero", "split", "random", "none"):

        def run(seed: int, strategy: str = strategy) -> list[float]:
            start = train(
                Genome.mlp((64,), (width,), 10, seed=seed), *train_data, PlasticityConfig(), steps=before, seed=seed
            ).genome
            rng = np.random.default_rng(seed)
            if strategy == "none":
                grown = start
            else:
                base = "gradmax" if strategy.startswith("gradmax") else strategy
                grown, _ = grow(start, 0, k, base, rng, train_data, scale=0.1)
                if strategy == "gradmax-random-direction":
                    grown = random_direction(grown, width, seed, norm=0.1)
            grads = new_weight_grads(grown, train_data, width) if strategy != "none" else (0.0, 0.0)
            trained = train(grown, *train_data, PlasticityConfig(), steps=after, seed=seed).genome
            return [*grads, accuracy(grown, test_data), accuracy(trained, test_data)]

        rows.append([strategy, *mean_over_seeds(run)])
    headers = [
        "growth (8→16 units)",
        "‖∇ new fan-in‖",
        "‖∇ new fan-out‖",
        "test acc at growth",
        f"test acc +{after} steps",
    ]
    return (
        f"An MLP 64→{width}→10 trained {before} Adam steps, then widened by {k} units and trained {after} more "
        f"(mean of {len(SEEDS)} seeds). GradMax: zero fan-in, fan-out = top singular vectors of E[∂L/∂z·hᵀ] "
        "(norm 0.1); *gradmax-random-direction*: same zero fan-in and fan-out norm, random direction.\n\n"
        + table(headers, rows)
    )


# ---------------------------------------------------------------- sparsity
def sparse_section(train_data: Data, test_data: Data, steps: int = 800) -> str:
    genome = Genome.mlp((64,), (128, 128), 10, seed=0)
    dense = accuracy(train(genome, *train_data, PlasticityConfig(), steps=steps, seed=0).genome, test_data)
    rows: list[list[object]] = [["100% (dense)", dense, dense, dense]]
    for density in (0.02, 0.05, 0.1, 0.2):
        accs = []
        for method in ("static", "set", "rigl"):
            cfg = PlasticityConfig(rewiring={"method": method, "density": density, "interval": 50})
            accs.append(accuracy(train(genome, *train_data, cfg, steps=steps, seed=0).genome, test_data))
        rows.append([f"{density:.0%}", *accs])
    return (
        f"MLP 64→128→128→10, {steps} Adam steps, ERK densities, rewiring every 50 steps (ζ = α = 0.3; RigL "
        "cosine decay to 75% of training). Test accuracy, seed 0.\n\n"
        + table(["density", "static random sparse", "SET", "RigL"], rows)
    )


# ---------------------------------------------------------------- plastic vs fixed
PLASTIC_CONFIGS = {
    "fixed 64→16→10": PlasticityConfig(),
    "gradmax growth (+8 every 100 steps, 20-step DropIn ramp)": PlasticityConfig(
        growth={"strategy": "gradmax", "interval": 100, "amount": 8, "ramp_steps": 20}
    ),
    "grow + prune (gradmax; taylor apoptosis, maturity 100)": PlasticityConfig(
        growth={"strategy": "gradmax", "interval": 100, "amount": 8},
        pruning={"strategy": "importance", "criterion": "taylor", "interval": 150, "fraction": 0.1, "maturity": 100},
    ),
    "continual backprop (rate 1e-3)": PlasticityConfig(replacement={"strategy": "cbp", "rate": 1e-3, "maturity": 100}),
}


def plastic_section(train_data: Data, test_data: Data, steps: int = 600) -> str:
    rows = []
    for name, cfg in PLASTIC_CONFIGS.items():

        def run(seed: int, cfg: PlasticityConfig = cfg) -> list[float]:
            result = train(Genome.mlp((64,), (16,), 10, seed=seed), *train_data, cfg, steps=steps, seed=seed)
            return [accuracy(result.genome, test_data), result.genome.layers[0].width, result.genome.num_params()]

        rows.append([name, *mean_over_seeds(run)])
    grown_width = int(round(rows[1][2]))

    def fixed_wide(seed: int) -> list[float]:
        result = train(
            Genome.mlp((64,), (grown_width,), 10, seed=seed), *train_data, PlasticityConfig(), steps=steps, seed=seed
        )
        return [accuracy(result.genome, test_data), grown_width, result.genome.num_params()]

    rows.insert(1, [f"fixed 64→{grown_width}→10 (the grown width from the start)", *mean_over_seeds(fixed_wide)])
    headers = ["training", "test accuracy", "final hidden width", "final params"]
    return f"{steps} Adam steps from 64→16→10 (mean of {len(SEEDS)} seeds).\n\n" + table(headers, rows)


def main() -> None:
    torch.set_num_threads(1)
    train_data, test_data = digits()
    start = time.perf_counter()
    parts = [
        "### GradMax vs other growth\n\n" + growth_section(train_data, test_data),
        "### Sparse training: SET and RigL vs static sparse vs dense\n\n" + sparse_section(train_data, test_data),
        "### Plastic vs fixed-shape training at equal steps\n\n" + plastic_section(train_data, test_data),
    ]
    body = "Written by `benchmarks/plasticity.py`.\n\n" + "\n\n".join(parts)
    body += f"\n\nTotal time: {time.perf_counter() - start:.0f} s."
    update_section("plasticity", "Plastic training (evo.plasticity)", body)
    print(body)


if __name__ == "__main__":
    main()
