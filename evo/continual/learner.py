"""evo's plastic continual learner: grow → train → keep the important → apoptosis → freeze, per task.

The seed paper's life-long cycle (Li, Milling & Schuller 2025: dropin,
neuroapoptosis, neuroplasticity) at unit level, close in spirit to DEN
(Yoon et al. 2018) and PackNet (Mallya & Lazebnik 2018):

1. **DropIn**: when task t > 0 arrives every hidden layer gains
   ``round(growth · growth_decay^(t-1))`` units (:func:`evo.operators.widen`,
   zero fan-out: the network's function is unchanged). New units are *free*.
2. **Train** the task. A weight may change only if the unit it feeds is free
   (a new unit, or an output class no earlier task owns) — or, in the output
   layer, if the unit it comes from is free (tasks that share classes). Every
   other weight is held (:class:`evo.continual.training.Hold`), so old units
   keep computing exactly what they did; new units read the frozen old ones
   (forward transfer, like Progressive Networks' lateral connections).
3. **Keep & apoptosis**: the ``keep_fraction`` most important free units of
   each layer (:func:`evo.operators.importance.unit_importance` on the task's
   data) survive; the others are removed (:func:`evo.surgery.gather_units`).
   A brief retraining recovers what the pruning cost.
4. **Freeze**: the survivors become the task's own units.

For task t, the task-incremental network is the sub-network of units owned by
tasks 0..t, which is exactly the network as it was right after task t (no
forgetting when ``protection`` is 1). Without the task's identity
(class-incremental) the whole network answers.

Example:
    >>> from evo.continual.config import LearnerConfig
    >>> g = Genome.mlp((4,), hidden=(8,), output_size=4)
    >>> learner = PlasticLearner(g, LearnerConfig(epochs=1, growth=4), seed=0)
    >>> learner.owner[0].tolist() == [-1] * 8
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from evo.continual._base import Learner
from evo.continual.config import LearnerConfig
from evo.continual.streams import StreamTask
from evo.continual.training import Hold, predict
from evo.genome import Genome, parse_weight_name
from evo.operators.dropin import widen
from evo.operators.importance import unit_importance
from evo.surgery import gather_units

__all__ = ["FREE", "PlasticLearner"]

FREE = -1  # owner of a unit no task has claimed yet
_IMPORTANCE_SAMPLES = 256


class PlasticLearner(Learner):
    """Grows for each task, protects the units earlier tasks own, removes units no task keeps."""

    def __init__(self, genome: Genome, cfg: LearnerConfig, seed: int = 0) -> None:
        super().__init__(genome, cfg, seed)
        self.owner = {i: torch.full((genome.layers[i].width,), FREE) for i in genome.hidden_layers}
        self.class_owner = torch.full((genome.output_size,), FREE)
        self._nets: dict[int | None, nn.Module] = {}

    def learn(self, t: int, task: StreamTask) -> None:
        self._nets.clear()
        if t > 0:
            self._grow(round(self.cfg.growth * self.cfg.growth_decay ** (t - 1)))
        self._train(task, None)
        self._apoptosis(task)
        if self.cfg.retrain_epochs > 0:
            self._train(task, self.cfg.retrain_epochs)
        for layer, owner in self.owner.items():
            owner[owner == FREE] = t
        free_classes = task.classes[self.class_owner[task.classes] == FREE]
        self.class_owner[free_classes] = t

    def logits(self, x: Tensor, t: int | None) -> Tensor:
        if t not in self._nets:
            self._nets[t] = (self.genome if t is None else self.subnetwork(t)).to_module()
        return predict(self._nets[t], x)

    def num_params(self) -> int:
        return self.genome.num_params()

    def subnetwork(self, t: int) -> Genome:
        """The units owned by tasks 0..t: the network exactly as it was after learning task ``t``."""
        genome = self.genome
        for layer, owner in self.owner.items():
            genome = gather_units(genome, layer, torch.nonzero((owner >= 0) & (owner <= t)).flatten())
        return genome

    # ------------------------------------------------------------- the cycle
    def _grow(self, k: int) -> None:
        """DropIn ``k`` free units (random fan-in, zero fan-out) in every hidden layer."""
        if k < 1:
            return
        for layer in self.genome.hidden_layers:
            self.genome = widen(self.genome, self.rng, layer=layer, k=k, init="zero")
            self.owner[layer] = torch.cat([self.owner[layer], torch.full((k,), FREE)])

    def _train(self, task: StreamTask, epochs: int | None) -> None:
        net = self.genome.to_module()
        hold = Hold(net, self.held(), self.cfg.protection)
        self.fit(net, task.x_train, task.y_train, task.classes, epochs, after_step=hold)
        self.genome = self.genome.from_module(net)

    def _apoptosis(self, task: StreamTask) -> None:
        """Keep the ``keep_fraction`` most important free units of each hidden layer; remove the others."""
        data = (task.x_train[:_IMPORTANCE_SAMPLES], task.y_train[:_IMPORTANCE_SAMPLES])
        for layer, owner in self.owner.items():
            free = torch.nonzero(owner == FREE).flatten()
            keep = math.ceil(self.cfg.keep_fraction * len(free))
            if keep == len(free):
                continue
            scores = unit_importance(self.genome, layer, self.cfg.importance, data)[free]
            kept = free[torch.argsort(scores, descending=True, stable=True)[:keep]]
            index = torch.sort(torch.cat([torch.nonzero(owner != FREE).flatten(), kept])).values
            self.genome = gather_units(self.genome, layer, index)
            self.owner[layer] = owner[index]

    # ------------------------------------------------------------- protection
    def held(self) -> dict[str, Tensor]:
        """Parameter name → entries that must not change while the current task trains."""
        genome = self.genome
        out_layer = genome.num_layers - 1
        free = {i: owner == FREE for i, owner in self.owner.items()}
        free[out_layer] = self.class_owner == FREE
        held: dict[str, Tensor] = {}
        for name, shape in genome.param_shapes().items():
            dst, src = _endpoints(name)
            post = free[dst].view(-1, *[1] * (len(shape) - 1))
            trainable = post.expand(shape)
            if dst == out_layer and src is not None and src >= 0:
                pre = free[src].repeat_interleave(shape[1] // len(free[src]))
                trainable = trainable | pre.view(1, -1)
            held[name] = ~trainable
        return held


def _endpoints(name: str) -> tuple[int, int | None]:
    """(consuming layer, feeding layer) of a parameter: ``layers.i.weight`` is fed by layer i-1 (−1: the input),
    ``skips.s_d.weight`` by s; biases have no feeding layer."""
    parsed = parse_weight_name(name)
    if parsed.src is not None:
        return parsed.layer, parsed.src
    return parsed.layer, (parsed.layer - 1 if parsed.tensor == "weight" else None)
