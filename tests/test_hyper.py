"""Hyperparameters as genes (PBT inside evolution): perturbation, inheritance, persistence, and the trainer using them."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from evo.backends import SerialBackend
from evo.config import ConfigError, load_config
from evo.evolution import Evolution
from evo.genome import Genome
from evo.hyper import GENES, HyperConfig, initial_hparams, perturb
from evo.operators.registry import make_operator
from evo.plasticity import PlasticityConfig, train
from evo.store import RunStore
from evo.tasks import Budget
from evo.tasks.config import SupervisedTaskConfig
from evo.tasks.supervised import SupervisedTask
from evo.testing import ToyTask

MUTATE = [(make_operator({"op": "mutate_weights", "sigma": 0.05}), 1.0)]
GENES_ON = ["evolution.hyper.genes=[lr, batch_size, lr_schedule]"]


def evolution(*overrides: str, store: RunStore | None = None) -> Evolution:
    cfg = load_config(None, ["evolution.population_size=4", "evolution.generations=3", "evolution.seed=3",
                             "evolution.init.hidden=[4]", *overrides])
    return Evolution(cfg, ToyTask(), SerialBackend(), MUTATE, store)


def test_perturb_multiplies_each_numeric_gene_by_a_factor_and_keeps_choices() -> None:
    rules = HyperConfig(genes=["lr", "weight_decay", "lr_schedule"], resample_prob=0.0)
    parent = {"lr": 0.01, "weight_decay": 1e-4, "lr_schedule": "cosine"}
    factors = set()
    for seed in range(20):
        child = perturb(parent, np.random.default_rng(seed), rules)
        for name in ("lr", "weight_decay"):
            ratio = child[name] / parent[name]
            assert any(math.isclose(ratio, f) for f in (0.8, 1.25)), ratio
            factors.add(round(ratio, 6))
        assert child["lr_schedule"] == "cosine"
    assert factors == {0.8, 1.25}


def test_perturb_resamples_inside_the_range_and_clips_at_its_bounds() -> None:
    rules = HyperConfig(genes=["lr", "dropout", "lr_schedule"], resample_prob=1.0, ranges={"lr": [1e-3, 1e-2]})
    children = [perturb({"lr": 0.5, "dropout": 0.1, "lr_schedule": "constant"}, np.random.default_rng(s), rules)
                for s in range(40)]
    assert all(1e-3 <= c["lr"] <= 1e-2 and 0.0 <= c["dropout"] <= 0.5 for c in children)
    assert {c["lr_schedule"] for c in children} == {"constant", "cosine"}
    clipping = HyperConfig(genes=["lr", "batch_size"], resample_prob=0.0, perturb=[10.0])
    child = perturb({"lr": 0.05, "batch_size": 100}, np.random.default_rng(0), clipping)
    assert child == {"lr": GENES["lr"].high, "batch_size": 256}
    assert isinstance(child["batch_size"], int)


def test_initial_genes_are_sampled_or_taken_from_the_config() -> None:
    defaults = PlasticityConfig(lr=0.02, batch_size=64).model_dump()
    sampled = HyperConfig(genes=["lr", "batch_size", "dropout"])
    values = [initial_hparams(sampled, defaults, np.random.default_rng(s)) for s in range(10)]
    assert len({v["lr"] for v in values}) == 10
    assert all(8 <= v["batch_size"] <= 256 and 0 <= v["dropout"] <= 0.5 for v in values)
    from_config = HyperConfig(genes=["lr", "batch_size", "dropout", "weight_decay"], init="config")
    assert initial_hparams(from_config, defaults, np.random.default_rng(0)) == {
        "lr": 0.02, "batch_size": 64, "dropout": 0.0, "weight_decay": GENES["weight_decay"].low}


@pytest.mark.parametrize(("override", "message"), [
    ("evolution.hyper.genes=[momentum, depth]", "genes"),
    ("evolution.hyper.ranges={lr_schedule: [0, 1]}", "ranges.lr_schedule: not a numeric gene"),
    ("evolution.hyper.ranges={lr: [0.1, 0.01]}", "ranges.lr: must be [low, high]"),
    ("evolution.hyper.perturb=[0.8, 0]", "perturbation factors"),
])
def test_bad_hyper_settings_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(None, [override])


def test_genes_need_a_task_that_trains_with_the_plasticity_section() -> None:
    with pytest.raises(ConfigError, match="needs a supervised or custom task, not 'control'"):
        load_config(None, [*GENES_ON, "task.kind=control"])


def test_genes_survive_dict_save_load_and_pickle(tmp_path: Path) -> None:
    genome = Genome.mlp((4,), (3,), 2).replace(hparams={"lr": 0.01, "batch_size": 16, "lr_schedule": "cosine"})
    assert Genome.from_dict(genome.to_dict()).hparams == genome.hparams
    genome.save(tmp_path / "g.pt")
    assert dict(Genome.load(tmp_path / "g.pt").hparams) == dict(genome.hparams)
    assert pickle.loads(pickle.dumps(genome)).hparams == genome.hparams
    assert "hparams" not in Genome.mlp((4,), (3,), 2).to_dict()  # no genes: the same JSON as before


def test_the_trainer_uses_the_genes_in_place_of_the_config() -> None:
    x, y = torch.randn(64, 4, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 3
    genome = Genome.mlp((4,), (8,), 3, seed=1)
    by_config = train(genome, x, y, PlasticityConfig(lr=0.05, batch_size=16), steps=6, seed=2)
    by_gene = train(genome.replace(hparams={"lr": 0.05, "batch_size": 16}), x, y, PlasticityConfig(), steps=6, seed=2)
    default = train(genome, x, y, PlasticityConfig(), steps=6, seed=2)
    assert all(torch.equal(by_gene.genome.weights[k], by_config.genome.weights[k]) for k in genome.weights)
    assert not torch.equal(by_gene.genome.weights["layers.0.weight"], default.genome.weights["layers.0.weight"])
    assert (by_gene.samples, default.samples) == (96, 6 * 32)
    assert dict(by_gene.genome.hparams) == {"lr": 0.05, "batch_size": 16}  # the trained genome carries them on


def test_a_supervised_evaluation_trains_with_the_individuals_batch_size() -> None:
    task = SupervisedTask(SupervisedTaskConfig(dataset="iris"))
    genome = Genome.mlp(task.input_shape, (8,), task.output_size).replace(hparams={"batch_size": 8})
    evaluation = task.evaluate(genome, Budget(steps=5), "cpu", seed=0)
    assert evaluation.budget_used.samples == 40
    assert evaluation.genome is not None and dict(evaluation.genome.hparams) == {"batch_size": 8}


def test_children_carry_their_parents_genes_after_one_perturbation() -> None:
    result = evolution(*GENES_ON, "evolution.hyper.resample_prob=0").run()
    for ind in result.individuals.values():
        assert set(ind.genome.hparams) == {"lr", "batch_size", "lr_schedule"}
        assert 1e-4 <= ind.genome.hparams["lr"] <= 0.1
        if ind.parents:
            parent = result.individuals[ind.parents[0]].genome.hparams
            ratio = ind.genome.hparams["lr"] / parent["lr"]
            assert any(math.isclose(ratio, f) for f in (0.8, 1.25)), ratio
            assert ind.genome.hparams["lr_schedule"] == parent["lr_schedule"]
    assert len({ind.genome.hparams["lr"] for ind in result.individuals.values()}) > 4  # more than the initial 4


def test_genes_off_by_default_change_nothing() -> None:
    plain = evolution().run()
    assert all(not ind.genome.hparams for ind in plain.individuals.values())
    with_genes = evolution(*GENES_ON).run()  # ToyTask ignores the genes: every other random choice is the same
    assert {i: ind.objectives for i, ind in with_genes.individuals.items()} == {
        i: ind.objectives for i, ind in plain.individuals.items()}


def test_genes_survive_a_resume(tmp_path: Path) -> None:
    straight = evolution(*GENES_ON, "evolution.generations=4").run()
    store = RunStore.create(tmp_path / "run", "")
    evolution(*GENES_ON, "evolution.generations=2", store=store).run()
    resumed = evolution(*GENES_ON, "evolution.generations=4", store=store)
    resumed.restore(store.latest_checkpoint(), store)
    result = resumed.run()
    assert {i: dict(ind.genome.hparams) for i, ind in result.individuals.items()} == {
        i: dict(ind.genome.hparams) for i, ind in straight.individuals.items()}


def test_a_run_records_and_shows_each_individuals_genes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from evo.cli import app
    from evo.runner import run_evolution
    from evo.inspect import load_run

    cfg = load_config(None, ["task.dataset=iris", "evolution.population_size=2", "evolution.generations=1",
                             "evolution.eval_steps=5", "evolution.init.hidden=[4]", "backend.kind=serial", *GENES_ON])
    run_evolution(cfg, run_dir=tmp_path / "run")
    stored = load_run(tmp_path / "run").individuals
    assert all(set(ind.genome.hparams) == {"lr", "batch_size", "lr_schedule"} for ind in stored.values())
    out = CliRunner().invoke(app, ["show", str(tmp_path / "run")], env={"COLUMNS": "300"}).stdout
    assert "hparams" in out and "lr_schedule=" in out
