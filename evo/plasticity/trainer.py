"""The plastic training loop: grow → train → prune → regrow within one lifetime.

The seed paper (Li, Milling & Schuller 2025, "Neuroplasticity in Artificial
Intelligence") calls for networks that add neurons (dropin), remove them
(apoptosis) and rewire while they learn. :func:`train` is plain minibatch
training with those events scheduled in between optimiser steps; each event
is a strategy module of this package, and the returned genome is plain (masks
applied, DropIn ramps folded in).

Example:
    >>> from evo.genome import Genome
    >>> g = Genome.mlp((4,), hidden=(8,), output_size=3)
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> result = train(g, x, y, PlasticityConfig(), steps=5)
    >>> result.steps, result.samples
    (5, 160)
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from evo import interrupts
from evo.genome import Genome
from evo.network import as_inputs
from evo.operators.importance import task_loss
from evo.plasticity.config import PlasticityConfig
from evo.plasticity.distill import imitating
from evo.plasticity.optim import saved_state
from evo.plasticity.schedule import Schedule
from evo.plasticity.state import PlasticNet

__all__ = ["Diverged", "TrainResult", "autocast", "default_steps", "epoch_batches", "steps_per_epoch", "train",
           "with_genes"]

LOSSES = ("cross_entropy", "mse")


class Diverged(FloatingPointError):
    """The loss became NaN or infinite; carries the work done until then, so budgets count it."""

    def __init__(self, message: str, steps: int, samples: int) -> None:
        super().__init__(message)
        self.steps, self.samples = steps, samples


@dataclass(frozen=True)
class TrainResult:
    """What one lifetime of training produced.

    Attributes:
        genome: the trained genome (a new shape if it grew or shrank), on the CPU; with
            ``plasticity.carry_optimizer`` it carries its optimiser's state (:attr:`Genome.optim_state`).
        steps: optimiser steps taken.
        samples: training sample-steps (sum of batch sizes).
        final_loss: mean training loss over the last epoch (or all steps, if fewer).
        events: human-readable structural events, e.g. ``"step 120: gradmax grew layer 0 by 4 (32→36)"``.
        metrics: counts and measures: ``grown``, ``pruned``, ``replaced``, ``rewired``, ``density``, ``width_<i>``
            (and ``distilled_steps`` when a teacher was used).
    """

    genome: Genome
    steps: int
    samples: int
    final_loss: float
    events: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)


def train(
    genome: Genome,
    x: Tensor,
    y: Tensor,
    config: PlasticityConfig,
    *,
    steps: int | None = None,
    device: str = "cpu",
    seed: int = 0,
    loss: Literal["cross_entropy", "mse"] = "cross_entropy",
    teacher: Genome | None = None,
) -> TrainResult:
    """Train ``genome`` on ``(x, y)`` with the plasticity strategies of ``config``.

    The genome's own hyperparameters (``genome.hparams``, evolved by :mod:`evo.hyper`) take the place of
    the same fields of ``config``, and the trained genome carries them on. With ``config.carry_optimizer`` the
    optimiser starts from the genome's :attr:`~Genome.optim_state` (what its parent's training left, mapped by
    the operators) instead of afresh.

    Args:
        x: the inputs; ``uint8`` pixels are turned into floats one batch at a time (:func:`evo.network.as_inputs`).
        steps: optimiser steps; ``None``: ``config.epochs`` passes over the data.
        device: ``"cpu"`` or ``"cuda:N"``; data and module move there (data already there is not copied), the
            result comes back to the CPU.
        seed: seeds a private torch generator (shuffling, every init, every random mask) and numpy rng.
        loss: ``cross_entropy`` (integer labels) or ``mse`` (targets shaped like the output).
        teacher: the parent of a child that must relearn its function: with ``config.distill.alpha > 0`` the
            first ``config.distill.steps`` steps (0: all) mix its outputs into the loss
            (:func:`~evo.plasticity.distill.distillation_loss`); None, or alpha 0: plain training.

    Raises:
        Diverged: (a FloatingPointError) when the loss becomes NaN or infinite.
    """
    _check_inputs(genome, x, y, steps, loss)
    config = with_genes(config, genome)
    y = y.long().reshape(len(y)) if loss == "cross_entropy" else y.float()  # task_loss picks the loss by dtype
    per_epoch = steps_per_epoch(len(x), config.batch_size)
    total = config.epochs * per_epoch if steps is None else steps
    # nn.Dropout (and any library code) draws from torch's global generator: fork it (restored on
    # exit) and seed the fork, so training is reproducible per seed without seeding any global.
    cuda = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)  # torch.manual_seed would also queue a lazy CUDA seeding
        if cuda:
            torch.cuda.manual_seed_all(seed)
        return _train(genome, x, y, config, total, per_epoch, device, seed, teacher)


def _train(genome: Genome, x: Tensor, y: Tensor, config: PlasticityConfig, total: int, steps_per_epoch: int,
           device: str, seed: int, teacher: Genome | None) -> TrainResult:
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    state = PlasticNet(_override_dropout(genome, config.dropout), config, device, gen)
    schedule = Schedule(state, config, (x, y), total, gen, rng)
    x_dev, y_dev = x.to(device), y.to(device)  # no copy when the task keeps its data on the device
    # Chosen once, not per step: labels are already int64 and flat, so task_loss would pick cross-entropy
    # every time; a constant rate is already the optimiser's (rebuilds after shape changes keep config.lr).
    criterion = _criterion(config) if not y.is_floating_point() else task_loss
    precision = autocast(x_dev.device.type, config.precision)
    scheduled = config.lr_schedule != "constant"
    parent = teacher.to_module(device).eval() if teacher is not None and config.distill.alpha > 0 else None
    distilled = min(config.distill.steps or total, total) if parent is not None else 0
    losses: list[float] = []
    for step, batch in zip(range(total), _batches(len(x), config.batch_size, gen, x_dev.device), strict=False):
        interrupts.check()  # a swallowed Ctrl-C stops a long evaluation here, not at its end
        xb, yb = as_inputs(x_dev[batch]), y_dev[batch]  # uint8 pixels become floats here, a batch at a time
        try:
            lr = learning_rate(config, step, total) if scheduled else None
            loss_fn = (imitating(parent, xb, config.distill, criterion) if parent is not None and step < distilled
                       else criterion)
            value = _step(state, schedule, loss_fn, xb, yb, step, lr, precision)
        except FloatingPointError as err:
            done = step + 1
            raise Diverged(str(err), steps=done, samples=_samples(done, len(x), config.batch_size)) from None
        losses.append(value)
        schedule.after_step(step, value)
    trained = _restore(state.effective(), genome)
    if config.carry_optimizer:  # the next lifetime starts where this one's optimiser stopped
        trained = trained.replace(optim_state=saved_state(state.optimizer, state.params))
    window = losses[-steps_per_epoch:]
    final = float(np.mean(window)) if window else math.nan
    samples = _samples(total, len(x), config.batch_size)
    metrics = {**schedule.metrics(), "distilled_steps": float(distilled)} if parent is not None else schedule.metrics()
    return TrainResult(trained, total, samples, final, tuple(schedule.events), metrics)


def _criterion(config: PlasticityConfig) -> Callable[[Tensor, Tensor], Tensor]:
    """Cross-entropy, with the config's label smoothing when it has any."""
    if config.label_smoothing == 0:
        return F.cross_entropy
    return functools.partial(F.cross_entropy, label_smoothing=config.label_smoothing)


def learning_rate(config: PlasticityConfig, step: int, total: int) -> float:
    """The learning rate of optimiser step ``step`` of ``total``, by ``config.lr_schedule``."""
    if config.lr_schedule == "constant":
        return config.lr
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * step / total))


def autocast(device_type: str, precision: Literal["fp32", "bf16"]) -> AbstractContextManager[object]:
    """The context a training step runs its forward pass and loss in: bfloat16 autocast for ``bf16``; for
    ``fp32`` none at all (a disabled ``torch.autocast`` still costs ~2 µs to enter and leave, about 1% of a small
    network's step). Weights, gradients and optimiser state stay float32 either way, and bfloat16 has float32's
    range, so no loss scaling is needed (fp16 would need it)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


def _step(state: PlasticNet, schedule: Schedule, criterion: Callable[[Tensor, Tensor], Tensor], xb: Tensor,
          yb: Tensor, step: int, lr: float | None, precision: AbstractContextManager[object]) -> float:
    """Forward (in ``precision``), backward, (rewire), masked optimiser step (at rate ``lr``; None: the
    optimiser's own); raises on a non-finite loss."""
    net = state.net
    if not net.training:  # a structural event may have measured the net in eval mode
        net.train()
    state.optimizer.zero_grad(set_to_none=True)
    with precision:
        value = criterion(net(xb), yb)
    loss = value.item()
    if not math.isfinite(loss):
        raise FloatingPointError(f"loss became {loss} at step {step}")
    value.backward()
    schedule.before_update(step)
    state.mask_grads()
    if lr is not None:
        for group in state.optimizer.param_groups:  # every step: structural events rebuild the optimiser
            group["lr"] = lr
    state.optimizer.step()
    state.apply_masks()
    state.tick()
    return loss


def with_genes(config: PlasticityConfig, genome: Genome) -> PlasticityConfig:
    """``config`` with the genome's own hyperparameters (``genome.hparams``) in place of its fields."""
    return config.model_validate({**config.model_dump(), **genome.hparams}) if genome.hparams else config


def default_steps(genome: Genome, n: int, config: PlasticityConfig) -> int:
    """Optimiser steps :func:`train` takes on ``n`` samples when ``steps`` is None: ``epochs`` passes at the
    genome's batch size."""
    config = with_genes(config, genome)
    return config.epochs * steps_per_epoch(n, config.batch_size)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Minibatches in one pass over ``n`` samples: see :func:`epoch_batches`."""
    return max(1, n // batch_size) if n % batch_size == 1 else math.ceil(n / batch_size)


def epoch_batches(order: Tensor, batch_size: int) -> tuple[Tensor, ...]:
    """One epoch's minibatches of the shuffled indices ``order``; a last batch of one sample joins the one
    before it, because BatchNorm cannot train on a single sample (its batch variance is undefined); batches
    of one, asked for, stay as asked."""
    batches = order.split(batch_size)
    if batch_size > 1 and len(batches) > 1 and len(batches[-1]) == 1:
        batches = (*batches[:-2], torch.cat(batches[-2:]))
    return batches


def _samples(steps: int, n: int, batch_size: int) -> int:
    """Samples in the first ``steps`` batches of :func:`_batches` (counted, not summed per step: ``len`` of a
    tensor is a Python call, ~0.3 µs a step)."""
    epochs, rest = divmod(steps, steps_per_epoch(n, batch_size))
    return epochs * n + rest * batch_size  # only an epoch's last batch differs in size


def _batches(n: int, batch_size: int, gen: torch.Generator, device: torch.device) -> Iterator[Tensor]:
    """Endless shuffled minibatch indices on ``device``, reshuffled every epoch with the CPU generator ``gen``
    (one transfer per epoch, not per step)."""
    while True:
        yield from epoch_batches(torch.randperm(n, generator=gen).to(device), batch_size)


def _check_inputs(genome: Genome, x: Tensor, y: Tensor, steps: int | None, loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"train: loss must be one of {list(LOSSES)}, got {loss!r}")
    if steps is not None and steps < 0:
        raise ValueError(f"train: steps must be >= 0 or None, got {steps}")
    if len(x) < 1 or len(y) != len(x):
        raise ValueError(f"train: x and y must hold the same number (>= 1) of samples, got {len(x)} and {len(y)}")
    if loss == "cross_entropy" and y.numel() != len(y):
        raise ValueError(f"train: cross_entropy takes one class label per sample, got labels of shape {tuple(y.shape)}")
    if tuple(x.shape[1:]) != genome.input_shape:
        raise ValueError(f"train: x must have shape (n, *{genome.input_shape}), got {tuple(x.shape)}")


def _override_dropout(genome: Genome, dropout: float | None) -> Genome:
    """The hidden layers' dropout set to ``dropout`` for training (None: unchanged)."""
    for i in genome.hidden_layers if dropout is not None else ():
        if genome.layers[i].dropout != dropout:  # each copy re-validates the genome
            genome = genome.with_layer(i, dropout=dropout)
    return genome


def _restore(trained: Genome, original: Genome) -> Genome:
    """The trained genome with the original genome's dropout rates (the override is for training only) and
    hyperparameters."""
    for i, layer in enumerate(original.layers):
        if trained.layers[i].dropout != layer.dropout:  # each copy re-validates the genome
            trained = trained.with_layer(i, dropout=layer.dropout)
    return trained.replace(hparams=original.hparams) if trained.hparams != original.hparams else trained
