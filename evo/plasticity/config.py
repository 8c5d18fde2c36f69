"""Plasticity hyperparameters: the knobs of training within a lifetime (what Optuna searches).

Every interval, patience and maturity is counted in optimiser steps. Nested
sections (``growth``, ``pruning``, ``replacement``, ``rewiring``) are
addressable by dotted paths such as ``plasticity.growth.strategy``.

Example:
    >>> cfg = PlasticityConfig(growth={"strategy": "gradmax", "interval": 50})
    >>> cfg.growth.strategy, cfg.optimizer
    ('gradmax', 'adam')
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DistillConfig", "GrowthConfig", "PlasticityConfig", "PruningConfig", "ReplacementConfig", "RewiringConfig"]

GrowthStrategy = Literal["none", "gradmax", "zero", "split", "random"]
Criterion = Literal["l1", "l2", "activation", "taylor"]


class GrowthConfig(BaseModel):
    """DropIn during training: when a layer grows, by how much, and how new units start."""

    model_config = ConfigDict(extra="forbid")

    strategy: GrowthStrategy = Field(
        "none",
        description="none: never grow; gradmax: zero fan-in, fan-out from the top singular vectors of "
        "E[dL/dz_(l+1) h_(l-1)^T] (Evci et al. 2022); zero: random fan-in, zero fan-out; split: Net2WiderNet "
        "copies; random: random fan-in and fan-out (not function-preserving).",
    )
    trigger: Literal["interval", "plateau", "rank"] = Field(
        "interval",
        description="interval: grow every `interval` steps; plateau: when the training loss has not improved by "
        "`min_delta` for `patience` checks; rank: NORTH effective-rank saturation (Maile et al. 2022).",
    )
    interval: int = Field(100, ge=1, description="Steps between growth checks.")
    amount: int = Field(4, ge=1, description="Units added per layer per growth (the rank trigger's upper bound).")
    patience: int = Field(2, ge=1, description="plateau: checks without improvement before growing.")
    min_delta: float = Field(1e-3, ge=0, description="plateau: the smallest loss decrease that counts as improvement.")
    rank_epsilon: float = Field(
        1e-2, gt=0, description="rank: singular values of H/sqrt(n) above this count towards the effective rank."
    )
    rank_gamma: float = Field(
        0.9, ge=0, description="rank: grow floor(width*(phi - gamma*phi_0)) units, phi_0 the rank fraction at start."
    )
    gradmax_scale: float = Field(
        1e-2, gt=0, description="gradmax: Frobenius norm of the new units' fan-out (small: nearly preserving)."
    )
    noise: float = Field(0.0, ge=0, description="split: std of noise on the copies' fan-in, breaking their symmetry.")
    ramp_steps: int = Field(
        0,
        ge=0,
        description="Gradual DropIn (Smith et al. 2016): new units' output ramps 0→1 over this many steps; 0: at once.",
    )
    calibration_samples: int = Field(
        256,
        ge=1,
        description="Training samples (a fixed random subset) used for GradMax directions, activation ranks, "
        "data-driven importance and bias compensation.",
    )


class PruningConfig(BaseModel):
    """Apoptosis during training: remove the least important mature units."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["none", "importance"] = Field(
        "none", description="none: never prune; importance: remove the least important mature units every interval."
    )
    criterion: Criterion = Field(
        "l1",
        description="Unit importance: l1/l2 weight norm, mean activation or first-order Taylor "
        "(Molchanov et al. 2017).",
    )
    interval: int = Field(100, ge=1, description="Steps between pruning events.")
    fraction: float = Field(
        0.05, gt=0, le=1, description="Share of a layer's mature units removed per event (at least 1)."
    )
    threshold: float | None = Field(
        None, ge=0, description="If set, remove only units whose layer-normalised importance is below it."
    )
    maturity: int = Field(50, ge=0, description="Units younger than this many steps are protected (newborns).")
    bias_compensation: bool = Field(
        True, description="Add W_(l+1)[:, j]*E[h_j] to the next bias when unit j goes, keeping its mean contribution."
    )


class ReplacementConfig(BaseModel):
    """Continual backprop (Dohare et al. 2024): re-initialise the least useful mature units."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["none", "cbp"] = Field("none", description="none: off; cbp: continual-backprop replacement.")
    decay: float = Field(0.99, ge=0, lt=1, description="eta in u <- eta*u + (1-eta)*|h|*sum|w_out|.")
    rate: float = Field(
        1e-3,
        gt=0,
        le=1,
        description="Replacement rate: expected share of mature units replaced per step (accumulated).",
    )
    interval: int = Field(1, ge=1, description="Steps between replacement checks.")
    maturity: int = Field(100, ge=0, description="Only units older than this many steps can be replaced.")


class RewiringConfig(BaseModel):
    """Sparse connectivity with masks: SET (Mocanu et al. 2018) or RigL (Evci et al. 2020)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["none", "static", "set", "rigl"] = Field(
        "none",
        description="none: dense; static: a fixed random sparse mask; set: drop smallest, regrow at random; "
        "rigl: drop smallest, regrow where |gradient| is largest.",
    )
    density: float = Field(
        0.1, gt=0, le=1, description="Share of layer weights kept (overall, over all masked layers)."
    )
    distribution: Literal["erk", "uniform"] = Field(
        "erk", description="Per-layer densities: erk (Erdos-Renyi(-Kernel), ~ (n_in+n_out)/(n_in*n_out)) or uniform."
    )
    drop_fraction: float = Field(
        0.3, gt=0, lt=1, description="zeta (SET) / alpha (RigL): share of active weights rewired."
    )
    interval: int = Field(50, ge=1, description="Steps between rewirings (Delta T).")
    end_fraction: float = Field(
        0.75,
        gt=0,
        le=1,
        description="rigl: stop rewiring after this share of the steps; the drop fraction decays by cosine.",
    )


class DistillConfig(BaseModel):
    """Distillation from the parent for children whose operators changed the network's function."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Weight of the parent's soft outputs in the loss, (1-alpha)*labels + alpha*T^2*KL(parent || "
        "child) at temperature T (Hinton et al. 2015): a child made by a non-preserving operator (apoptosis, a "
        "removed layer) relearns its parent's function first, an approximate network morphism (Elsken et al. "
        "2019); 0 = off. Supervised tasks, Lamarckian runs only.",
    )
    temperature: float = Field(2.0, gt=0, description="T: softens both distributions (regression: unused).")
    steps: int = Field(
        0, ge=0, description="Distilled optimiser steps at the start of the child's training (under halving: of its "
        "first rung); 0 = all of them.",
    )


class PlasticityConfig(BaseModel):
    """Training within a lifetime: optimiser, data passes and the plasticity strategies."""

    model_config = ConfigDict(extra="forbid")

    optimizer: Literal["adam", "sgd"] = Field("adam", description="adam, or sgd with momentum.")
    lr: float = Field(3e-3, gt=0, description="Learning rate.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="cosine: anneal the learning rate from lr to 0 over each evaluation's steps, a warm restart "
        "per lifetime (SGDR, Loshchilov & Hutter 2017): every child ends its training at a low-rate minimum.",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd: momentum.")
    weight_decay: float = Field(0.0, ge=0, description="L2 weight decay.")
    carry_optimizer: bool = Field(
        False,
        description="Carry the optimiser state (Adam's moments and step count, SGD's momentum) across lifetimes: "
        "a trained genome keeps it (saved and pickled with its weights, not exported), operators map it with the "
        "units they keep (new units, layers and skips start at zero; tensors an operator rewrites without a unit "
        "map start afresh), and the child's training starts from it instead of a fresh optimiser, whose first "
        "bias-corrected Adam steps from zero moments jolt an already-trained network. false: every lifetime "
        "starts a fresh optimiser.",
    )
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Classification: train on targets mixing the true class (1 - s) with a uniform share s "
        "(Szegedy et al. 2016), so a wide network stops pushing its logits apart once it fits the training "
        "set; validation and test losses stay plain cross-entropy. 0 = off.",
    )
    batch_size: int = Field(32, ge=1, description="Samples per optimiser step.")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="fp32: train in float32; bf16: forward passes and losses under bfloat16 autocast (weights, "
        "gradients and optimiser state stay float32) on the evaluation's device. Meant for GPUs with bf16 "
        "(Ampere or later: about twice the throughput for wide layers); on a CPU it runs too, but unless the CPU "
        "has native bf16 (AVX512-BF16, AMX) it is slower than fp32. Validation and test are always measured in "
        "float32.",
    )
    epochs: int = Field(
        5, ge=1, description="Passes over the training data per evaluation (when no step budget is given)."
    )
    dropout: float | None = Field(
        None, ge=0, lt=1, description="Override the hidden layers' dropout while training; null: the genome's own."
    )
    min_width: int = Field(1, ge=1, description="No hidden layer is pruned below this width.")
    max_width: int = Field(512, ge=1, description="No hidden layer grows beyond this width.")
    growth: GrowthConfig = Field(default_factory=GrowthConfig, description="DropIn during training.")
    pruning: PruningConfig = Field(default_factory=PruningConfig, description="Apoptosis during training.")
    replacement: ReplacementConfig = Field(default_factory=ReplacementConfig, description="Continual backprop.")
    rewiring: RewiringConfig = Field(default_factory=RewiringConfig, description="Sparse masks: SET/RigL.")
    distill: DistillConfig = Field(
        default_factory=DistillConfig, description="Children of non-preserving operators learn from their parent."
    )

    @model_validator(mode="after")
    def _widths_ordered(self) -> PlasticityConfig:
        if self.min_width > self.max_width:
            raise ValueError(f"plasticity: min_width ({self.min_width}) must be <= max_width ({self.max_width})")
        return self
