"""Learners on tiny streams: protection, growth at task boundaries, baselines' defining properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evo.continual import FineTune, Joint, LearnerConfig, PackNet, PlasticLearner, Progressive, build_stream, run_stream
from evo.continual.config import ContinualTaskConfig
from evo.continual.learner import FREE
from evo.genome import Genome


@pytest.fixture(scope="module")
def permuted() -> object:
    return build_stream(ContinualTaskConfig(stream="permuted", tasks=3, max_train_samples=300))


@pytest.fixture(scope="module")
def split() -> object:
    return build_stream(ContinualTaskConfig(class_splits=[[0, 1], [2, 3], [4, 5]], max_train_samples=120))


def _start(stream: object, hidden: tuple[int, ...] = (16,)) -> Genome:
    return Genome.mlp(stream.input_shape, hidden, stream.num_classes, seed=0)


CFG = LearnerConfig(epochs=5, growth=8)


def test_plastic_learner_keeps_old_tasks_where_fine_tuning_forgets(permuted: object) -> None:
    plastic = run_stream(PlasticLearner(_start(permuted), CFG, seed=0), permuted)
    tuned = run_stream(FineTune(_start(permuted), CFG, seed=0), permuted)
    old = slice(0, 2)
    assert plastic.task_il.bwt == 0.0  # old tasks answer exactly as right after learning them
    assert tuned.task_il.bwt < -0.05
    assert plastic.task_matrix[-1, old].mean() > tuned.task_matrix[-1, old].mean()


def test_growth_happens_at_task_boundaries(split: object) -> None:
    learner = PlasticLearner(_start(split, (16, 12)), CFG, seed=0)
    widths, params = [], []
    for t, task in enumerate(split.tasks):
        learner.learn(t, task)
        widths.append([layer.width for layer in learner.genome.layers[:-1]])
        params.append(learner.num_params())
        assert all((owner != FREE).all() for owner in learner.owner.values())  # every survivor belongs to a task
    assert params[0] < params[1] < params[2]
    assert widths[0] == [8, 6]  # half the starting units kept for task 0, the others died
    assert widths[1] == [12, 10]  # + 8 grown, half of them kept


def test_subnetwork_of_an_old_task_is_the_network_right_after_it(split: object) -> None:
    learner = PlasticLearner(_start(split), CFG, seed=0)
    first = split.tasks[0]
    learner.learn(0, first)
    before = learner.logits(first.x_val, 0)[:, first.classes]
    learner.learn(1, split.tasks[1])
    learner.learn(2, split.tasks[2])
    assert learner.genome.num_params() > learner.subnetwork(0).num_params()
    assert torch.allclose(learner.logits(first.x_val, 0)[:, first.classes], before, atol=1e-6)


def test_unprotected_plastic_learner_forgets(permuted: object) -> None:
    loose = run_stream(PlasticLearner(_start(permuted), CFG.model_copy(update={"protection": 0.0}), seed=0), permuted)
    assert loose.task_il.bwt < 0


def test_packnet_masks_keep_old_tasks_and_the_size_fixed(split: object) -> None:
    result = run_stream(PackNet(_start(split), CFG, seed=0), split)
    assert result.task_il.bwt == 0.0
    assert len(set(result.params)) == 1
    assert result.task_matrix[0, 0] > 0.9 and result.task_matrix[-1, 0] == result.task_matrix[0, 0]


def test_progressive_adds_a_column_per_task(split: object) -> None:
    result = run_stream(Progressive(_start(split), CFG, seed=0), split)
    assert result.task_il.bwt == 0.0
    first, second, third = result.params
    assert first == _start(split).num_params() and first < second < third


def test_progressive_rejects_conv_genomes(split: object) -> None:
    cnn = Genome.cnn((1, 8, 8), channels=(4,), hidden=(), output_size=10)
    with pytest.raises(ValueError, match="Linear layers only"):
        Progressive(cnn, CFG)


def test_joint_training_is_the_upper_bound_of_fine_tuning(split: object) -> None:
    joint = run_stream(Joint(_start(split), CFG, seed=0), split)
    tuned = run_stream(FineTune(_start(split), CFG, seed=0), split)
    assert joint.class_il.acc > tuned.class_il.acc + 0.2


def test_learners_are_deterministic_per_seed(split: object) -> None:
    a = run_stream(PlasticLearner(_start(split), CFG, seed=3), split)
    b = run_stream(PlasticLearner(_start(split), CFG, seed=3), split)
    assert np.array_equal(a.task_matrix, b.task_matrix, equal_nan=True) and a.params == b.params
