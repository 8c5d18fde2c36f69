"""The one training loop every continual learner shares, and the hold that protects weights.

A task is learnt with cross-entropy over *its own* classes only (a head per
task on one shared output layer), so learning classes 2/3 does not push the
logits of classes 0/1 down by itself; what a method protects is then up to the
method. :class:`Hold` keeps chosen weight entries at a snapshot after every
optimiser step — a hard freeze that works with any optimiser (Adam's moments
would otherwise keep moving gradient-masked weights).

Example:
    >>> net = torch.nn.Linear(4, 3)
    >>> x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    >>> fit(net, x, y, torch.tensor([0, 1]), LearnerConfig(epochs=1), torch.Generator().manual_seed(0))
    1
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evo import interrupts
from evo.continual.config import LearnerConfig
from evo.plasticity.optim import fusable
from evo.plasticity.trainer import epoch_batches, steps_per_epoch

__all__ = ["Hold", "accuracy", "class_targets", "fit", "make_optimizer", "predict"]

_CHUNK = 4096


def make_optimizer(params: Iterable[nn.Parameter], cfg: LearnerConfig) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum 0.9, at the config's learning rate; fused where torch can (:func:`fusable`)."""
    params = list(params)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, fused=fusable(params))
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, fused=fusable(params))


def class_targets(y: Tensor, classes: Tensor) -> Tensor:
    """Labels as positions in ``classes`` (the targets of a loss restricted to those outputs)."""
    lookup = torch.full((int(classes.max()) + 1,), -1, dtype=torch.long)
    lookup[classes] = torch.arange(len(classes))
    return lookup[y]


def fit(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    classes: Tensor,
    cfg: LearnerConfig,
    gen: torch.Generator,
    epochs: int | None = None,
    steps: int | None = None,
    after_step: Callable[[], None] | None = None,
    params: Iterable[nn.Parameter] | None = None,
) -> int:
    """Minibatch training of ``net`` on ``(x, y)`` with cross-entropy over ``classes``' outputs.

    Args:
        epochs: passes over the data; ``None``: ``cfg.epochs``. ``steps`` (if given) overrides it.
        after_step: called after every optimiser step (holds, masks).
        params: the parameters to train; ``None``: all of ``net``'s.

    Returns:
        The number of optimiser steps taken.
    """
    per_epoch = steps_per_epoch(len(x), cfg.batch_size)
    total = steps if steps is not None else (cfg.epochs if epochs is None else epochs) * per_epoch
    optimizer = make_optimizer(net.parameters() if params is None else params, cfg)
    targets = class_targets(y, classes)
    net.train()
    for step in range(total):
        interrupts.check()  # a swallowed Ctrl-C stops a long evaluation here, not at its end
        if step % per_epoch == 0:
            order = epoch_batches(torch.randperm(len(x), generator=gen), cfg.batch_size)
        batch = order[step % per_epoch]
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x[batch])[:, classes], targets[batch])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"continual training: loss became {float(loss)} at step {step}")
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
    return total


def accuracy(logits: Tensor, y: Tensor, classes: Tensor) -> float:
    """Share of samples whose largest logit among ``classes`` is their label."""
    if len(y) == 0:
        return math.nan
    predicted = classes[logits[:, classes].argmax(dim=1)]
    return float((predicted == y).float().mean())


def predict(net: nn.Module, x: Tensor) -> Tensor:
    """``net``'s logits on ``x`` in eval mode without gradients, in chunks."""
    net.eval()
    with torch.no_grad():
        return torch.cat([net(chunk) for chunk in x.split(_CHUNK)])


class Hold:
    """Keeps ``held`` entries of named parameters at their current values after every step.

    ``strength`` < 1 lets them drift: each step pulls a held entry back by that
    share of its distance from the snapshot.
    """

    def __init__(self, net: nn.Module, held: Mapping[str, Tensor], strength: float = 1.0) -> None:
        params = dict(net.named_parameters())
        self.entries = [(params[name], mask, params[name].detach().clone()) for name, mask in held.items() if mask.any()]
        self.strength = strength

    def __call__(self) -> None:
        with torch.no_grad():
            for param, mask, snapshot in self.entries:
                pulled = param + self.strength * (snapshot - param)
                param.copy_(torch.where(mask, pulled, param))
