"""evo's side of the gradient-free comparison counts every episode it used: with a weight search inside each
evaluation, the search's candidates and the elites' re-evaluations are evaluations too."""

from __future__ import annotations

from pathlib import Path

import yaml

from benchmarks.peers.evo_side import Benchmark, run_evo


def test_a_weight_searchs_candidates_count_as_evaluations(tmp_path: Path) -> None:
    config = tmp_path / "cartpole_es.yaml"
    config.write_text(yaml.safe_dump({
        "task": {"kind": "control", "env": "CartPole-v1", "episodes": 1, "test_episodes": 0, "max_episode_steps": 20,
                 "weight_search": {"algorithm": "sep_cma", "iterations": 2, "population": 4, "episodes": 1}},
        "evolution": {"population_size": 2, "seed": 0}}))
    # an absolute evo_config replaces the configs/ folder; threshold out of reach: every generation runs
    bench = Benchmark("CartPole", "cartpole", str(config), 1e9, "CartPole-v1", 1, 4, 60.0)
    outcome = run_evo(bench, seed=0)
    # the cap of 4 evaluations: generations 0 and 1, 2 individuals each, each 2 iterations × 4 candidates + 1
    # scoring episode (counted as 4 evaluations before)
    assert not outcome.solved and outcome.evaluations == 2 * 2 * (2 * 4 + 1)
