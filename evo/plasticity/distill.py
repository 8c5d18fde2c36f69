"""Distillation from the parent: the loss of a child that must relearn its parent's function.

LEMONADE (Elsken, Metzen & Hutter 2019) pairs its exact network morphisms with
*approximate* ones — removing units or layers — after which the child is
briefly trained to imitate its parent, so the shrunken network starts close to
what its parent computed. The imitation is knowledge distillation (Hinton,
Vinyals & Dean 2015): the labels' loss mixed with the KL divergence from the
parent's temperature-softened outputs, scaled by ``T²`` so its gradients keep
their size as ``T`` grows.

Example:
    >>> student, teacher = torch.zeros(2, 3), torch.zeros(2, 3)
    >>> float(distillation_loss(student, torch.tensor([0, 1]), teacher, alpha=1.0, temperature=2.0))
    0.0
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evo.operators.importance import task_loss
from evo.plasticity.config import DistillConfig

__all__ = ["distillation_loss", "imitating"]


def distillation_loss(output: Tensor, y: Tensor, teacher: Tensor, alpha: float, temperature: float,
                      label_loss: Callable[[Tensor, Tensor], Tensor] = task_loss) -> Tensor:
    """``(1 - alpha) * label_loss + alpha * imitation``: for class labels the imitation is
    ``T² · KL(softmax(teacher/T) ‖ softmax(output/T))`` (batch mean), for regression targets the mean squared
    error to the teacher's outputs (no temperature).

    Args:
        output: the child's outputs (logits) for a batch.
        y: the batch's labels (integer classes) or targets (floats).
        teacher: the parent's outputs for the same batch (no gradient flows into them).
        label_loss: the loss to the labels the trainer uses otherwise (e.g. with label smoothing).
    """
    teacher = teacher.detach()
    if y.is_floating_point():
        imitation = F.mse_loss(output, teacher)
    else:
        t = temperature
        imitation = t * t * F.kl_div(F.log_softmax(output / t, dim=1), F.log_softmax(teacher / t, dim=1),
                                     reduction="batchmean", log_target=True)
    return (1.0 - alpha) * label_loss(output, y) + alpha * imitation


def imitating(teacher: nn.Module, xb: Tensor, config: DistillConfig,
              label_loss: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss of one distilled step on the batch ``xb`` (``label_loss`` for its labels' part); ``teacher`` (the
    parent's module, in eval mode: no dropout draws, batch-norm running statistics) is run on the batch without a
    graph when the loss is computed: inside the training step's autocast, so bf16 training runs it in bf16 too."""

    def loss(output: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            soft = teacher(xb)
        return distillation_loss(output, y, soft, config.alpha, config.temperature, label_loss)

    return loss
