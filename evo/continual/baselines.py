"""Baselines in the same harness as evo's learner (:func:`evo.continual.run_stream`).

* :class:`FineTune` — one network trained task after task: the forgetting baseline.
* :class:`PackNet` — Mallya & Lazebnik 2018, "PackNet: Adding Multiple Tasks to a
  Single Network by Iterative Pruning": after each task prune ``prune_fraction``
  of the free weights by magnitude, retrain briefly, freeze the survivors; at
  test time task t uses only the weights of tasks 0..t (one binary mask per task).
  Biases are trained with the first task and then frozen, as in the paper.
* :class:`Progressive` — Rusu et al. 2016, "Progressive Neural Networks": a new
  column per task with lateral connections (here single linear adapters) from
  the frozen old columns' previous layer.
* :class:`Joint` — retrained from the starting genome on every task seen so far: the upper bound.

All train with :meth:`Learner.fit` (one loop, cross-entropy over the task's classes).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from evo.continual._base import Learner
from evo.continual.config import LearnerConfig
from evo.continual.streams import StreamTask
from evo.continual.training import Hold, predict
from evo.genome import ACTIVATIONS, Genome, LayerKind, init_uniform, parse_weight_name, weight_name

__all__ = ["FineTune", "Joint", "PackNet", "Progressive", "ProgressiveNet"]

FREE = -1


class FineTune(Learner):
    """Plain sequential training of one fixed network."""

    def learn(self, t: int, task: StreamTask) -> None:
        self.genome = self._trained(self.genome, task.x_train, task.y_train, task.classes)

    def _trained(self, genome: Genome, x: Tensor, y: Tensor, classes: Tensor) -> Genome:
        net = genome.to_module()
        self.fit(net, x, y, classes)
        self.net = net
        return genome.from_module(net)

    def logits(self, x: Tensor, t: int | None) -> Tensor:
        return predict(self.net, x)

    def num_params(self) -> int:
        return self.genome.num_params()


class Joint(FineTune):
    """Trained from the starting genome on the union of every task seen so far."""

    def __init__(self, genome: Genome, cfg: LearnerConfig, seed: int = 0) -> None:
        super().__init__(genome, cfg, seed)
        self.start, self.seen = genome, []

    def learn(self, t: int, task: StreamTask) -> None:
        self.seen.append(task)
        x, y = torch.cat([s.x_train for s in self.seen]), torch.cat([s.y_train for s in self.seen])
        classes = torch.unique(torch.cat([s.classes for s in self.seen]))
        self.genome = self._trained(self.start, x, y, classes)


class PackNet(Learner):
    """One network; per-weight owners (the task that froze it, or free); masks per task at test time."""

    def __init__(self, genome: Genome, cfg: LearnerConfig, seed: int = 0) -> None:
        super().__init__(genome, cfg, seed)
        self.owner = {name: torch.full(w.shape, FREE) for name, w in genome.weights.items()}
        self._nets: dict[int | None, nn.Module] = {}

    def learn(self, t: int, task: StreamTask) -> None:
        self._nets.clear()
        net = self.genome.to_module()
        self.fit(net, task.x_train, task.y_train, task.classes, after_step=Hold(net, self._owned()))
        claim = self._claimable(task.classes)
        pruned = self._prune(net, claim)
        held = {name: (owner != FREE) | pruned[name] for name, owner in self.owner.items()}
        self.fit(net, task.x_train, task.y_train, task.classes, self.cfg.retrain_epochs, after_step=Hold(net, held))
        for name, owner in self.owner.items():
            owner[claim[name] & ~pruned[name]] = t
        self.genome = self.genome.from_module(net)

    def _owned(self) -> dict[str, Tensor]:
        return {name: owner != FREE for name, owner in self.owner.items()}

    def _claimable(self, classes: Tensor) -> dict[str, Tensor]:
        """Free entries the task may keep: all but the output rows of classes outside the task (another head)."""
        out = self.genome.num_layers - 1
        claim = {}
        for name, owner in self.owner.items():
            parsed = parse_weight_name(name)
            rows = torch.zeros(owner.shape[0], dtype=torch.bool)
            rows[classes if parsed.group == "layers" and parsed.layer == out else slice(None)] = True
            claim[name] = (owner == FREE) & rows.view(-1, *[1] * (owner.dim() - 1))
        return claim

    def _prune(self, net: nn.Module, claim: dict[str, Tensor]) -> dict[str, Tensor]:
        """Zero the ``prune_fraction`` smallest free weights of every weight matrix; they stay free.

        Returns:
            Parameter name → the pruned entries (none for biases).
        """
        pruned = {}
        with torch.no_grad():
            for name, param in net.named_parameters():
                free = claim[name]
                pruned[name] = torch.zeros_like(free)
                if parse_weight_name(name).tensor == "bias" or int(free.sum()) == 0:
                    continue
                k = int(self.cfg.prune_fraction * int(free.sum()))
                magnitude = torch.where(free, param.abs(), torch.full_like(param, torch.inf))
                cut = torch.zeros(param.numel(), dtype=torch.bool)
                cut[torch.argsort(magnitude.flatten(), stable=True)[:k]] = True
                pruned[name] = cut.view(param.shape)
                param[pruned[name]] = 0.0
        return pruned

    def logits(self, x: Tensor, t: int | None) -> Tensor:
        if t not in self._nets:
            last = torch.iinfo(torch.long).max if t is None else t
            masked = {n: w * ((self.owner[n] >= 0) & (self.owner[n] <= last)) for n, w in self.genome.weights.items()}
            self._nets[t] = self.genome.with_weights(masked).to_module()
        return predict(self._nets[t], x)

    def num_params(self) -> int:
        return self.genome.num_params()


class ProgressiveNet(nn.Module):
    """Columns of Linear layers; column k's layer l reads its own layer l−1 and every older column's."""

    def __init__(self, genome: Genome) -> None:
        super().__init__()
        if any(layer.kind is not LayerKind.LINEAR for layer in genome.layers):
            raise ValueError(f"progressive: the genome must hold Linear layers only, got {genome}")
        self.genome = genome
        self.columns = nn.ModuleList()
        self.laterals = nn.ModuleList()  # per column: per layer >= 1, one adapter per older column

    def add_column(self, gen: torch.Generator, first: Genome | None = None) -> None:
        """A new column: ``first``'s weights (the starting genome) or fresh ones drawn with ``gen``."""
        g = self.genome
        layers = nn.ModuleList(nn.Linear(g.in_width(i), spec.width) for i, spec in enumerate(g.layers))
        older = len(self.columns)
        lateral = nn.ModuleList(
            nn.ModuleList(nn.Linear(g.layers[i - 1].width, spec.width, bias=False) for _ in range(older))
            for i, spec in enumerate(g.layers) if i > 0
        )
        with torch.no_grad():
            for p in [*layers.parameters(), *lateral.parameters()]:
                p.copy_(init_uniform(p.shape, p.shape[1] if p.dim() > 1 else len(p), gen))
        if first is not None:
            tensors = ("weight", "bias")
            layers.load_state_dict({f"{i}.{t}": first.weights[weight_name(i, t)] for i in range(len(layers)) for t in tensors})
        self.columns.append(layers)
        self.laterals.append(lateral)

    def forward(self, x: Tensor, column: int | None = None) -> Tensor:
        column = len(self.columns) - 1 if column is None else column
        h = [x.flatten(1)] * (column + 1)  # every column's previous-layer output
        for i, spec in enumerate(self.genome.layers):
            act = ACTIVATIONS[spec.activation]()
            h = [
                act(self.columns[k][i](h[k]) + sum((self.laterals[k][i - 1][j](h[j]) for j in range(k)) if i else ()))
                for k in range(column + 1)
            ]
        return h[column]


class Progressive(Learner):
    """A column per task; old columns are never trained again, so each task's answers never change."""

    def __init__(self, genome: Genome, cfg: LearnerConfig, seed: int = 0) -> None:
        super().__init__(genome, cfg, seed)
        self.net = ProgressiveNet(genome)
        self.classes: list[Tensor] = []

    def learn(self, t: int, task: StreamTask) -> None:
        self.net.add_column(self.gen, self.genome if t == 0 else None)
        self.classes.append(task.classes)
        new = [*self.net.columns[-1].parameters(), *self.net.laterals[-1].parameters()]
        self.fit(_Column(self.net, t), task.x_train, task.y_train, task.classes, params=new)

    def logits(self, x: Tensor, t: int | None) -> Tensor:
        if t is not None:
            return predict(_Column(self.net, t), x)
        out = torch.full((len(x), self.genome.output_size), -torch.inf)
        for k, classes in enumerate(self.classes):  # no task given: each column answers for its classes
            out[:, classes] = predict(_Column(self.net, k), x)[:, classes]
        return out

    def num_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())


class _Column(nn.Module):
    """Column ``k`` of a progressive net as a plain module (what :func:`fit` and :func:`predict` take)."""

    def __init__(self, net: ProgressiveNet, k: int) -> None:
        super().__init__()
        self.net, self.k = net, k

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x, self.k)
