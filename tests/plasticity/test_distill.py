"""Distillation from the parent: the mixed loss, and the trainer using it only when asked."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from evo.genome import Genome
from evo.plasticity import PlasticityConfig, train
from evo.plasticity.distill import distillation_loss

Data = tuple[Tensor, Tensor]


def kl(teacher: Tensor, student: Tensor, t: float) -> float:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), written out, batch mean."""
    p = torch.softmax(teacher / t, dim=1)
    return float(t * t * (p * (p.log() - torch.log_softmax(student / t, dim=1))).sum(dim=1).mean())


def test_the_loss_mixes_labels_and_the_parents_softened_outputs() -> None:
    gen = torch.Generator().manual_seed(0)
    student, teacher, y = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen), torch.arange(8) % 5
    assert float(distillation_loss(student, y, teacher, 1.0, 3.0)) == pytest.approx(kl(teacher, student, 3.0), rel=1e-5)
    assert float(distillation_loss(student, y, teacher, 0.0, 3.0)) == pytest.approx(float(F.cross_entropy(student, y)))
    mixed = 0.75 * float(F.cross_entropy(student, y)) + 0.25 * kl(teacher, student, 2.0)
    assert float(distillation_loss(student, y, teacher, 0.25, 2.0)) == pytest.approx(mixed, rel=1e-5)
    smoothed = functools.partial(F.cross_entropy, label_smoothing=0.1)  # the trainer's own label loss is kept
    mixed = 0.5 * float(smoothed(student, y)) + 0.5 * kl(teacher, student, 2.0)
    assert float(distillation_loss(student, y, teacher, 0.5, 2.0, smoothed)) == pytest.approx(mixed, rel=1e-5)
    targets = torch.randn(8, 5, generator=gen)  # regression: the imitation is the squared error to the parent
    assert float(distillation_loss(student, targets, teacher, 1.0, 3.0)) == pytest.approx(float(F.mse_loss(student, teacher)))


def test_with_alpha_one_the_childs_training_loss_is_the_kl_to_its_parent(digits: Data, mlp: Genome) -> None:
    x, y = digits
    parent = Genome.mlp((64,), hidden=(20,), output_size=10, seed=1)
    config = PlasticityConfig(batch_size=len(x), distill={"alpha": 1.0, "temperature": 2.0})
    result = train(mlp, x, y, config, steps=1, teacher=parent)  # one full batch: the loss of the whole set
    with torch.no_grad():
        expected = kl(parent.to_module().eval()(x), mlp.to_module()(x), 2.0)
    assert result.final_loss == pytest.approx(expected, rel=1e-5)
    assert result.metrics["distilled_steps"] == 1


def test_distillation_off_trains_bit_identically_and_steps_limit_it(digits: Data, mlp: Genome) -> None:
    parent = Genome.mlp((64,), hidden=(20,), output_size=10, seed=1)
    plain = train(mlp, *digits, PlasticityConfig(), steps=6)
    for config, teacher in ((PlasticityConfig(distill={"alpha": 0.0}), parent), (PlasticityConfig(distill={"alpha": 0.5}), None)):
        same = train(mlp, *digits, config, steps=6, teacher=teacher)
        assert same.metrics == plain.metrics and same.final_loss == plain.final_loss
        assert all(torch.equal(same.genome.weights[k], plain.genome.weights[k]) for k in plain.genome.weights)
    partly = train(mlp, *digits, PlasticityConfig(distill={"alpha": 0.5, "steps": 2}), steps=6, teacher=parent)
    assert partly.metrics["distilled_steps"] == 2
    assert not torch.equal(partly.genome.weights["layers.0.weight"], plain.genome.weights["layers.0.weight"])
