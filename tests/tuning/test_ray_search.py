"""A parallel search on the real Ray backend (the shipped configs' default): trials share one backend."""

from __future__ import annotations

import pytest
import ray
from optuna.trial import TrialState

from evo.config import EvoConfig, apply_overrides
from evo.tuning import parse_space, run_search

SPACE = {"parameters": {"operators.mutate_weights.sigma": {"type": "float", "low": 0.05, "high": 1.0, "log": True}}}

pytestmark = pytest.mark.ray


def test_parallel_trials_on_one_ray_backend(tmp_path, xor_config: EvoConfig) -> None:
    if ray.is_initialized():
        ray.shutdown()
    config = apply_overrides(xor_config, {"backend.kind": "ray", "backend.workers": 2, "evolution.generations": 1})
    result = run_search(config, parse_space(SPACE), trials=2, jobs=2, storage=f"sqlite:///{tmp_path}/evo.db",
                        runs_dir=tmp_path / "runs", mirror=False, pruner="none")
    assert [t.state for t in result.study.trials] == [TrialState.COMPLETE] * 2
    assert not ray.is_initialized()  # the search started Ray for its trials, and stopped it
