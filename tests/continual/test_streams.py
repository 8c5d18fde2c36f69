"""Streams: task order, class splits, seeded permutations, heads."""

from __future__ import annotations

import pytest
import torch

from evo.continual.config import ContinualTaskConfig
from evo.continual.streams import build_stream, even_splits


def test_split_digits_in_pairs_gives_five_tasks_in_label_order() -> None:
    stream = build_stream(ContinualTaskConfig(stream="split", classes_per_task=2))
    assert [t.classes.tolist() for t in stream.tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    for task in stream.tasks:
        for part in ("train", "val", "test"):
            _, y = task.part(part)
            assert len(y) > 0 and set(y.tolist()) == set(task.classes.tolist())
    assert stream.seen_classes(1).tolist() == [0, 1, 2, 3]


def test_split_in_fives_and_custom_subsets() -> None:
    fives = build_stream(ContinualTaskConfig(classes_per_task=5))
    assert [t.classes.tolist() for t in fives.tasks] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    custom = build_stream(ContinualTaskConfig(class_splits=[[9, 3], [0], [5, 6, 7]]))
    assert [t.classes.tolist() for t in custom.tasks] == [[3, 9], [0], [5, 6, 7]]
    assert set(custom.tasks[1].y_train.tolist()) == {0}


def test_permutations_are_seeded_reproducible_and_differ_between_tasks() -> None:
    cfg = ContinualTaskConfig(stream="permuted", tasks=3, permute_seed=7, max_train_samples=100)
    a, b = build_stream(cfg), build_stream(cfg)
    other = build_stream(cfg.model_copy(update={"permute_seed": 8}))
    for ta, tb in zip(a.tasks, b.tasks):
        assert torch.equal(ta.x_train, tb.x_train) and torch.equal(ta.y_train, tb.y_train)
    first, second = a.tasks[0].x_val, a.tasks[1].x_val
    assert not torch.equal(first, second)
    # a permutation moves pixels, it never changes them: each sample keeps its sorted values
    assert torch.equal(first.sort(dim=1).values, second.sort(dim=1).values)
    assert not torch.equal(second, other.tasks[1].x_val)
    assert len(a.tasks[0].x_train) == 100


def test_permuted_heads_offset_labels_unless_shared() -> None:
    own = build_stream(ContinualTaskConfig(stream="permuted", tasks=3))
    assert own.num_classes == 30 and own.tasks[2].classes.tolist() == list(range(20, 30))
    assert own.tasks[2].y_test.min() == 20
    shared = build_stream(ContinualTaskConfig(stream="permuted", tasks=3, shared_head=True))
    assert shared.num_classes == 10 and shared.tasks[2].classes.tolist() == list(range(10))


def test_bad_splits_are_rejected() -> None:
    with pytest.raises(ValueError, match="classes_per_task"):
        even_splits(10, 11)
    with pytest.raises(ValueError, match="label 12"):
        build_stream(ContinualTaskConfig(class_splits=[[0, 12]]))
