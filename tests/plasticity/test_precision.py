"""plasticity.precision: bf16 autocast around the training forward pass, validated in the config."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from evo.genome import Genome
from evo.plasticity import PlasticityConfig, train
from evo.plasticity.trainer import autocast


def test_precision_is_validated() -> None:
    assert PlasticityConfig().precision == "fp32" and PlasticityConfig(precision="bf16").precision == "bf16"
    with pytest.raises(ValidationError, match="precision"):
        PlasticityConfig(precision="fp16")


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_autocast_targets_the_evaluation_device() -> None:
    bf16 = autocast("cuda", "bf16")  # built, never entered: this machine may have no GPU
    assert bf16.device == "cuda" and bf16.fast_dtype == torch.bfloat16
    assert autocast("cpu", "bf16")._enabled
    assert not isinstance(autocast("cpu", "fp32"), torch.autocast)  # fp32 enters no autocast at all (its cost)


@pytest.mark.parametrize("distilled", [False, True])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_runs_its_forward_pass_in_the_configured_precision(precision: str, distilled: bool) -> None:
    """The student's forward pass and, when it imitates its parent, the parent's too (every Linear's output)."""
    genome = Genome.mlp((6,), hidden=(8,), output_size=3)
    teacher = Genome.mlp((6,), hidden=(5,), output_size=3, seed=1) if distilled else None
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=gen), torch.randint(0, 3, (64,), generator=gen)
    seen: set[torch.dtype] = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: seen.add(out.dtype) if isinstance(module, torch.nn.Linear) else None
    )
    try:
        config = PlasticityConfig(precision=precision, distill={"alpha": 0.5 if distilled else 0.0})
        result = train(genome, x, y, config, steps=4, seed=0, teacher=teacher)
    finally:
        hook.remove()
    assert seen == {torch.bfloat16 if precision == "bf16" else torch.float32}
    assert result.metrics.get("distilled_steps", 0.0) == (4.0 if distilled else 0.0)
    assert all(t.dtype == torch.float32 for t in result.genome.weights.values())  # weights stay float32
