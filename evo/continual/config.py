"""Configuration of a continual-learning task: the stream of tasks and the learner that meets it.

Both sections are plain data (no torch), so :mod:`evo.task_kinds` can put
:class:`ContinualTaskConfig` in its union without importing the learners. The
learner's knobs live here so ``evo run`` / ``evo search`` can tune them by
dotted paths such as ``task.learner.growth``.

Example:
    >>> cfg = ContinualTaskConfig(stream="split", classes_per_task=5)
    >>> cfg.kind, cfg.learner.method
    ('continual', 'plastic')
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ContinualTaskConfig", "LearnerConfig", "METHODS"]

METHODS = ("plastic", "finetune", "packnet", "progressive", "joint")
Method = Literal["plastic", "finetune", "packnet", "progressive", "joint"]


class LearnerConfig(BaseModel):
    """How the network meets the stream: the method and its knobs (each says which methods use it)."""

    model_config = ConfigDict(extra="forbid")

    method: Method = Field(
        "plastic",
        description="plastic: evo's grow → train → keep/apoptosis → freeze learner; finetune: one network trained "
        "task after task (the forgetting baseline); packnet: Mallya & Lazebnik 2018; progressive: Rusu et al. 2016; "
        "joint: retrained on every task seen so far (the upper bound).",
    )
    optimizer: Literal["adam", "sgd"] = Field("adam", description="adam, or sgd with momentum 0.9.")
    lr: float = Field(3e-3, gt=0, description="Learning rate.")
    batch_size: int = Field(32, ge=1, description="Samples per optimiser step.")
    epochs: int = Field(10, ge=1, description="Passes over each task's training data.")
    growth: int = Field(
        16, ge=0, description="plastic: units (DropIn, zero fan-out) added to every hidden layer when a new task arrives."
    )
    growth_decay: float = Field(
        0.7,
        gt=0,
        le=1,
        description="plastic: the growth of task t is round(growth * growth_decay^(t-1)): later tasks reuse more "
        "frozen features and add fewer units (sub-linear parameter growth).",
    )
    keep_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="plastic: share of a task's free units kept (most important first) and frozen for it; the rest "
        "die (apoptosis) before a brief retraining.",
    )
    importance: Literal["l1", "l2", "activation", "taylor"] = Field(
        "taylor", description="plastic: unit importance on the task's data (evo.operators.importance)."
    )
    protection: float = Field(
        1.0,
        ge=0,
        le=1,
        description="plastic: how firmly weights of units owned by earlier tasks are held after every step "
        "(1: frozen; 0: unprotected, plain fine-tuning of old units).",
    )
    prune_fraction: float = Field(
        0.5, gt=0, lt=1, description="packnet: share of the free weights pruned by magnitude after each task."
    )
    retrain_epochs: int = Field(
        2, ge=0, description="plastic, packnet: passes over the task's data after pruning, before freezing."
    )


class ContinualTaskConfig(BaseModel):
    """A stream of classification tasks learnt one after another; fitness = end-of-stream average accuracy."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["continual"] = Field("continual", description="Task kind.")
    dataset: Literal["digits", "iris", "wine", "breast_cancer"] = Field(
        "digits", description="A scikit-learn bundled classification set the tasks are cut from."
    )
    stream: Literal["split", "permuted"] = Field(
        "split",
        description="split: each task holds some of the classes (split_digits); permuted: every task holds all "
        "classes with its own fixed random pixel permutation (permuted_digits).",
    )
    classes_per_task: int = Field(
        2, ge=1, description="split: classes per task, in label order (digits: 2 → 5 tasks, 5 → 2 tasks)."
    )
    class_splits: list[list[int]] | None = Field(
        None, description="split: explicit class subsets, one list per task, e.g. [[0, 1, 2], [3, 4]]; overrides "
        "classes_per_task."
    )
    tasks: int = Field(5, ge=1, description="permuted: number of tasks (the first keeps the original pixel order).")
    permute_seed: int = Field(0, description="permuted: seed of the per-task pixel permutations.")
    shared_head: bool = Field(
        False,
        description="permuted: every task answers on the same outputs (domain-incremental); false: task t's "
        "class c is output t*K + c (a head per task; the network then has K*tasks outputs).",
    )
    split_seed: int = Field(0, description="Seed of the stratified train/validation/test split.")
    max_train_samples: int = Field(
        0, ge=0, description="Subsample each task's training split to this many samples; 0 = all."
    )
    setting: Literal["task", "class"] = Field(
        "task",
        description="Which average accuracy is the fitness `acc`: task-incremental (the task is known: its classes "
        "and its subnetwork/column) or class-incremental (one shared output over every class seen). Both are "
        "always reported.",
    )
    objectives: list[Literal["acc", "params"]] = Field(
        default_factory=lambda: ["acc"],
        description="Objectives, the first being the fitness: acc (end-of-stream average validation accuracy, "
        "maximize), params (parameters after the stream, minimize).",
    )
    learner: LearnerConfig = Field(default_factory=LearnerConfig, description="The continual learner.")

    @model_validator(mode="after")
    def _check(self) -> ContinualTaskConfig:
        if not self.objectives:
            raise ValueError("continual task: objectives must name at least one of ['acc', 'params']")
        if self.class_splits is not None:
            flat = [c for split in self.class_splits for c in split]
            if not self.class_splits or any(not split for split in self.class_splits):
                raise ValueError("continual task: class_splits must be non-empty lists of class labels")
            if len(set(flat)) != len(flat) or min(flat) < 0:
                raise ValueError(f"continual task: class_splits must hold distinct labels >= 0, got {self.class_splits}")
        return self
