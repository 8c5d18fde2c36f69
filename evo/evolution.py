"""The generational loop: selection, variation by operators, Lamarckian inheritance, stopping.

Knows nothing of Ray or Optuna, nor of a run's directory lock, backend lifetime or resume (that is
:mod:`evo.runner`): evaluations go through a :class:`Backend`, observers are :class:`Reporter` s. Every random choice derives from
``(run seed, individual id)`` or ``(run seed, generation)``, never from a
shared stream, so neither the completion order of parallel evaluations nor a
kill-and-resume changes the result.

Example:
    >>> from evo.backends import SerialBackend
    >>> from evo.config import load_config
    >>> from evo.testing import ToyTask
    >>> config = load_config(None, ["evolution.generations=1", "evolution.population_size=2"])
    >>> len(Evolution(config, ToyTask(), SerialBackend(), build_operators(config)).run().history)  # doctest: +SKIP
    2
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from evo.backends import Backend
from evo.config import EvoConfig
from evo.errors import ConfigError, NotApplicable
from evo.genome import Genome, LayerKind, LayerSpec
from evo.hyper import initial_hparams, perturb
from evo.operators import Operator
from evo.records import GenerationRecord, Individual, Reporter
from evo.reevaluation import apply_merged, latest_merged, merged_record, reevaluate, reevaluated
from evo.selection import Selector, make_selector, pareto_front, sample_inverse_density
from evo.store import RunStore, individual_from_record, individual_to_record, record_from_dict, record_to_dict
from evo.tasks import Task
from evo.types import Budget, Direction, Evaluation, Job

__all__ = ["DEFAULT_OPERATORS", "Evolution", "RunResult", "build_operators", "derive_seed", "operator_specs"]

_INIT, _VARY, _SELECT, _HYPER, _RUNG, _REEVALUATE, _PREFILTER = 1, 2, 3, 4, 5, 6, 7  # stream tags for derive_seed


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (run seed, id, tag...), independent of any shared RNG state."""
    return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0]) >> 1


@dataclass
class RunResult:
    """What a finished (or stopped) run leaves: a notebook-friendly summary. ``best``, ``population`` and
    ``pareto`` carry their trained weights; of the other ``individuals`` only the population and the best few
    keep theirs in memory (``evo.load`` / ``evo export --id`` read any from the run directory)."""

    run_dir: Path | None
    best: Individual
    population: list[Individual]
    pareto: list[Individual]
    history: list[GenerationRecord]
    individuals: dict[int, Individual] = field(repr=False, default_factory=dict)
    test: dict[int, dict[str, float]] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """One flat dict per individual (``pandas.DataFrame(result.records())``)."""
        rows = []
        for ind in self.individuals.values():
            row: dict[str, Any] = {
                "id": ind.id,
                "generation": ind.generation,
                "parents": list(ind.parents),
                "operators": list(ind.operators),
                "architecture": str(ind.genome),
                "params": ind.genome.num_params(),
                "error": ind.evaluation.error if ind.evaluation else None,
            }
            row.update(ind.objectives)
            row.update({f"hparams.{name}": value for name, value in ind.genome.hparams.items()})
            rows.append(row)
        return rows


class Evolution:
    """One run's state and its generational loop (:meth:`step` is the template method)."""

    def __init__(
        self,
        config: EvoConfig,
        task: Task,
        backend: Backend,
        operators: Sequence[tuple[Operator, float]],
        store: RunStore | None = None,
        reporters: Sequence[Reporter] = (),
    ) -> None:
        self.config = config
        self.evo = config.evolution
        self.task = task
        self.backend = backend
        self.operators = list(operators)
        self.store = store
        self.reporters = list(reporters)
        self.objectives = task.objectives
        self.selector: Selector = make_selector(
            self.evo.selection, self.objectives, self.evo.tournament_size, self.evo.elitism
        )
        self.individuals: dict[int, Individual] = {}
        self.population: list[Individual] = []
        self.history: list[GenerationRecord] = []
        self.next_id = 0
        self.generation = -1  # last completed generation
        self.budget_used = Budget()
        self._rank_keys: dict[int, tuple[Evaluation | None, tuple[float, ...]]] = {}  # see ranked()
        self._calibration: tuple[Tensor, Tensor] | None = task.calibration_batch(256, self.evo.seed)

    # ------------------------------------------------------------- loop
    def run(self) -> RunResult:
        """Run until a stopping criterion holds; resumes where the state left off."""
        try:
            while not self.should_stop():
                self.step()
        finally:  # also when interrupted: reporters finish writing what they hold
            for reporter in self.reporters:
                reporter.on_run_end()
        return self.result()

    def should_stop(self) -> bool:
        if self.generation < 0:
            return False
        if self.generation >= self.evo.generations:
            return True
        if self.evo.max_steps and self.budget_used.steps >= self.evo.max_steps:
            return True
        if self.evo.max_samples and self.budget_used.samples >= self.evo.max_samples:
            return True
        if self.evo.max_seconds and sum(r.seconds for r in self.history) >= self.evo.max_seconds:
            return True
        target = self.evo.target_fitness
        if target is not None:
            # with re-evaluation, only a fitness confirmed on fresh episodes stops the run (not one lucky draw)
            confirmed = [i for i in self.ranked() if not self.evo.reevaluate or reevaluated(i)]
            value = confirmed[0].objectives.get(self.objectives[0].name, math.nan) if confirmed else math.nan
            reached = value >= target if self.objectives[0].direction is Direction.MAXIMIZE else value <= target
            return bool(reached)
        return False

    def step(self) -> GenerationRecord:
        """One generation: make children, evaluate them, select survivors, checkpoint, report."""
        generation = self.generation + 1
        start = time.perf_counter()
        for reporter in self.reporters:
            reporter.on_generation_start(generation)
        reevaluated = self._reevaluate_elites(generation) if generation > 0 and self.evo.reevaluate else []
        children = self._initial_population() if generation == 0 else self._children(generation)
        evaluated = self._evaluate(children)
        if generation == 0:
            self.population = evaluated
        else:
            self.population = self.selector.survivors(self.population, evaluated, self.evo.population_size)
        for ind in evaluated:
            self.budget_used = self.budget_used + (ind.evaluation.budget_used if ind.evaluation else Budget())
        ranked = self.ranked()
        best = ranked[0]
        extra: dict[str, Any] = {"pareto": [ind.id for ind in self.pareto()]} if len(self.objectives) > 1 else {}
        if reevaluated:
            extra["reevaluated"] = merged_record(reevaluated)
        record = GenerationRecord(
            generation=generation,
            evaluated=tuple(ind.id for ind in evaluated),
            population=tuple(ind.id for ind in self.population),
            best_id=best.id,
            best_objectives=dict(best.objectives),
            budget_used=self.budget_used,
            seconds=time.perf_counter() - start,
            failures=sum(1 for ind in evaluated if ind.evaluation is None or not ind.evaluation.ok),
            extra=extra,
        )
        self.history.append(record)
        self.generation = generation
        self._forget_weights(ranked)
        self._checkpoint(record, self.with_weights(self.individuals[best.id]))
        for reporter in self.reporters:
            reporter.on_generation_end(record)
        return record

    # ------------------------------------------------------------- variation
    def _initial_population(self) -> list[Individual]:
        population = []
        for i in range(self.evo.population_size):
            genome = self._initial_genome(derive_seed(self.evo.seed, i, _INIT))
            if self.evo.hyper.genes:
                defaults = self.config.plasticity.model_dump()
                genome = genome.replace(hparams=initial_hparams(self.evo.hyper, defaults, self._hyper_rng(i)))
            population.append(self._newborn(genome, (), ("init",), 0))
        return population

    def _hyper_rng(self, individual_id: int) -> np.random.Generator:
        """The stream of an individual's hyperparameter genes (its own: switching genes on changes no other
        random choice)."""
        return np.random.default_rng(derive_seed(self.evo.seed, individual_id, _HYPER))

    def _initial_genome(self, seed: int) -> Genome:
        init = self.evo.init
        rng = np.random.default_rng(seed)
        hidden = list(init.hidden)
        if init.strategy == "random":
            depth = int(rng.integers(init.min_layers, init.max_layers + 1))
            hidden = [int(w) for w in rng.integers(init.min_width, init.max_width + 1, size=depth)]
        shape, out = self.task.input_shape, self.task.output_size
        layers = [LayerSpec(LayerKind.CONV, c, init.activation, 0.0, init.kernel_size, init.pool, init.norm)
                  for c in init.channels]
        layers += [LayerSpec(LayerKind.LINEAR, w, init.activation, norm=init.norm) for w in hidden]
        layers.append(LayerSpec(LayerKind.LINEAR, out, "identity"))
        try:
            return Genome.random(shape, layers, seed=seed, gap=init.gap)
        except ValueError as err:
            raise ConfigError(f"evolution.init: no network of this shape fits the task's input {shape}: {err}") from None

    def _newborn(self, genome: Genome, parents: tuple[int, ...], operators: tuple[str, ...], generation: int) -> Individual:
        ind = Individual(self.next_id, genome, parents, operators, generation)
        self.next_id += 1
        return ind

    def _children(self, generation: int) -> list[Individual]:
        n = self.evo.children or self.evo.population_size
        factor = self.evo.prefilter.factor
        rng = np.random.default_rng(derive_seed(self.evo.seed, generation, _SELECT))
        parents = self.selector.parents(self.population, n * factor, rng)
        if factor > 1:
            return self._prefiltered(parents, n, generation)
        return [self._mutate(parent, generation) for parent in parents]

    def _prefiltered(self, parents: list[Individual], n: int, generation: int) -> list[Individual]:
        """LEMONADE's cheap pre-filter: a candidate child of every parent (operators only, each from its own
        stream), ``n`` of them kept — sampled inversely to the population's density of log(parameters) at
        their own — and only those become individuals (ids in candidate order)."""
        candidates = [self._vary(parent.genome, np.random.default_rng(derive_seed(self.evo.seed, generation, _PREFILTER, i)))
                      for i, parent in enumerate(parents)]
        sizes = [math.log(genome.num_params()) for genome, _ in candidates]
        reference = [math.log(ind.genome.num_params()) for ind in self.population]
        rng = np.random.default_rng(derive_seed(self.evo.seed, generation, _PREFILTER))
        return [self._mutate(parents[i], generation, candidates[i])
                for i in sample_inverse_density(sizes, reference, n, rng)]

    def _mutate(self, parent: Individual, generation: int,
                varied: tuple[Genome, tuple[str, ...]] | None = None) -> Individual:
        """A child of ``parent``: operators drawn by probability (``varied``: their result, already drawn),
        Lamarckian or fresh weights, and perturbed hyperparameter genes."""
        if varied is None:
            varied = self._vary(parent.genome, np.random.default_rng(derive_seed(self.evo.seed, self.next_id, _VARY)))
        genome, applied = varied
        if self.evo.hyper.genes:  # operators build new genomes: the child's genes are set here, perturbed
            hparams = perturb(parent.genome.hparams, self._hyper_rng(self.next_id), self.evo.hyper)
            genome = genome.replace(hparams=hparams)
        return self._newborn(genome, (parent.id,), applied, generation)

    def _vary(self, genome: Genome, rng: np.random.Generator) -> tuple[Genome, tuple[str, ...]]:
        """``genome`` after ``evolution.mutations`` operators drawn by probability (and re-initialised unless
        Lamarckian), with the operators' names."""
        applied = []
        for _ in range(self.evo.mutations):
            genome, name = self._apply_one(genome, rng)
            applied.append(name)
        if not self.evo.lamarckian:
            genome = genome.reinitialised(seed=int(rng.integers(2**62)))
        return genome, tuple(applied)

    def _apply_one(self, genome: Genome, rng: np.random.Generator) -> tuple[Genome, str]:
        """Apply one operator drawn by probability among those applicable; one raising :class:`NotApplicable`
        is redrawn (anything else it raises is a bug and surfaces)."""
        candidates = [(op, p) for op, p in self.operators if p > 0 and op.applicable(genome)]
        while candidates:
            probs = np.array([p for _, p in candidates], dtype=float)
            i = int(rng.choice(len(candidates), p=probs / probs.sum()))
            op = candidates[i][0]
            try:
                return op.apply(genome, rng, data=self._calibration), str(op)
            except NotApplicable:
                candidates.pop(i)
        return genome, "clone"

    # ------------------------------------------------------------- evaluation
    def _evaluate(self, individuals: list[Individual]) -> list[Individual]:
        """Train and score ``individuals``: one job each, or with successive halving one job per rung for
        the best 1/eta of the previous rung, each continuing from the genome its previous rung returned."""
        by_id = {ind.id: ind for ind in individuals}
        cumulative = {ind.id: self._rung_steps(ind.genome) for ind in individuals}
        active = list(by_id)
        for rung in range(self.evo.halving.rungs):
            final = rung == self.evo.halving.rungs - 1
            jobs = [Job(i, by_id[i].genome, self._rung_budget(cumulative[i], rung), self._job_seed(i, rung),
                        teacher=self._teacher(by_id[i], rung)) for i in active]
            returned = self._run_rung(jobs, by_id, rung, final)
            if final:
                break
            active = self._promote(returned, by_id)
            for i in returned:
                if i not in active:
                    self._finish(by_id[i])
            if not active:  # every child failed
                break
        return [by_id[ind.id] for ind in individuals]

    def _rung_steps(self, genome: Genome) -> list[int]:
        """Cumulative training steps of ``genome`` at the end of each rung. One rung: ``[eval_steps]`` (0 stays
        0, the task's default budget); under halving ``eval_steps`` or, when 0, the task's default step count
        (which a batch-size gene changes), split into rungs."""
        halving = self.evo.halving
        if halving.rungs == 1:
            return [self.evo.eval_steps]
        try:
            total = self.evo.eval_steps or self.task.default_steps(genome)
        except NotImplementedError as err:  # a custom task that does not count its default budget
            raise ConfigError(f"evolution.halving: {err}") from None
        if total < halving.min_steps:  # (a set eval_steps was checked with the config)
            raise ConfigError(f"evolution.halving: {halving.rungs} rungs with eta {halving.eta} need at least "
                              f"{halving.min_steps} training steps per evaluation; the task's default is {total}: "
                              "set evolution.eval_steps, or use fewer rungs")
        return halving.steps(total)

    @staticmethod
    def _rung_budget(cumulative: list[int], rung: int) -> Budget:
        return Budget(steps=cumulative[rung] - (cumulative[rung - 1] if rung else 0))

    def _job_seed(self, individual_id: int, rung: int) -> int:
        """Rung 0 keeps the seed an evaluation always had; each later rung has its own stream."""
        if rung == 0:
            return derive_seed(self.evo.seed, individual_id)
        return derive_seed(self.evo.seed, individual_id, _RUNG, rung)

    def _teacher(self, child: Individual, rung: int) -> Genome | None:
        """The parent ``child`` distils from (``plasticity.distill``) in its first rung: only when an operator
        that made it does not preserve its parent's function (apoptosis, a removed layer...)."""
        if rung or not self.config.plasticity.distill.alpha or not child.parents:
            return None
        preserving = {str(op) for op, _ in self.operators if op.preserves_function} | {"clone"}
        if all(name in preserving for name in child.operators):
            return None
        return self.individuals[child.parents[0]].genome

    def _run_rung(self, jobs: list[Job], by_id: dict[int, Individual], rung: int, final: bool) -> list[int]:
        """Run ``jobs`` and update ``by_id``; the ids that came back (a job the backend lost is recorded as
        failed, rather than stop the run). Individuals are finished as they come back from the ``final`` rung."""
        returned: list[int] = []
        for evaluation in self.backend.map(self.task, jobs):
            i = evaluation.individual_id
            if i in returned:
                continue  # a duplicate delivery (e.g. after a retry): keep the first
            returned.append(i)
            by_id[i] = self._trained(by_id[i], evaluation, rung)
            if final:
                self._finish(by_id[i])
        for i in (job.individual_id for job in jobs if job.individual_id not in returned):
            failed = dataclasses.replace(self.task.failed("no result from the backend"), individual_id=i)
            by_id[i] = self._trained(by_id[i], failed, rung)
        return sorted(returned)

    def _trained(self, ind: Individual, evaluation: Evaluation, rung: int) -> Individual:
        """``ind`` after ``evaluation``: its trained genome (keeping its hyperparameter genes) and, under
        halving, the budget of every rung so far and the rung it reached."""
        genome = evaluation.genome if evaluation.ok and evaluation.genome is not None else ind.genome
        if genome.hparams != ind.genome.hparams:  # a task need not carry the genes on
            genome = genome.replace(hparams=ind.genome.hparams)
        if self.evo.halving.rungs > 1:
            used = evaluation.budget_used + (ind.evaluation.budget_used if ind.evaluation else Budget())
            evaluation = dataclasses.replace(evaluation, budget_used=used,
                                             metrics={**evaluation.metrics, "rung": float(rung)})
        ind = dataclasses.replace(ind, genome=genome, evaluation=evaluation)
        self.individuals[ind.id] = ind
        return ind

    def _promote(self, ids: list[int], by_id: dict[int, Individual]) -> list[int]:
        """The best 1/eta (at least one) of the successfully evaluated ``ids``, by the selector's key."""
        ok = [i for i in ids if by_id[i].evaluation is not None and by_id[i].evaluation.ok]
        ranked = sorted(ok, key=lambda i: self.selector.key(by_id[i]), reverse=True)
        best = set(ranked[: max(1, len(ids) // self.evo.halving.eta)])
        return [i for i in ids if i in best]

    def _finish(self, ind: Individual) -> None:
        """``ind`` is fully evaluated: save its genome and tell the reporters."""
        if self.store is not None:
            self.store.save_genome(ind.id, ind.genome)
        for reporter in self.reporters:
            reporter.on_evaluated(ind)

    def _reevaluate_elites(self, generation: int) -> list[Individual]:
        """The best ``evolution.reevaluate`` of the population measured again on fresh episodes, their fitness
        now the mean over all their episodes (see :mod:`evo.reevaluation`); the run is charged the work."""
        elites = sorted(self.population, key=self.selector.key, reverse=True)[: self.evo.reevaluate]
        updated, used = reevaluate(self.task, self.backend, elites,
                                   lambda i: derive_seed(self.evo.seed, i, generation, _REEVALUATE))
        by_id = {ind.id: ind for ind in updated}
        self.individuals.update(by_id)
        self.population = [by_id.get(ind.id, ind) for ind in self.population]
        self.budget_used = self.budget_used + used
        return updated

    # ------------------------------------------------------------- results
    def ranked(self) -> list[Individual]:
        """Every evaluated individual, best first by the selector's key (each computed once per evaluation: a run
        ranks all it has seen twice a generation, and with short evaluations that sorting was a tenth of it)."""
        keys = self._rank_keys

        def key(ind: Individual) -> tuple[float, ...]:
            cached = keys.get(ind.id)
            if cached is None or cached[0] is not ind.evaluation:
                cached = keys[ind.id] = (ind.evaluation, self.selector.key(ind))
            return cached[1]

        return sorted((i for i in self.individuals.values() if i.evaluation), key=key, reverse=True)

    def best(self) -> Individual:
        return self.ranked()[0]

    def with_weights(self, ind: Individual) -> Individual:
        """``ind`` with its weights, read back from the run's store (and kept) if they left memory: with
        ``evolution.reevaluate``, an elite measured again on fresh episodes can fall below an individual whose
        weights were forgotten, which then ranks first (the best, or one of the best few tested)."""
        if ind.genome.weights or self.store is None or ind.evaluation is None or not ind.evaluation.ok:
            return ind
        ind = self.individuals[ind.id] = dataclasses.replace(ind, genome=self.store.load_genome(ind.id))
        return ind

    def pareto(self) -> list[Individual]:
        return pareto_front(list(self.individuals.values()), self.objectives)

    def _hall_of_fame(self, ranked: list[Individual] | None = None) -> set[int]:
        """The population and the best few (``ranked``: :meth:`ranked`, when the caller has it already)."""
        keep = max(self.evo.test_top_k, 1)
        return {ind.id for ind in self.population} | {ind.id for ind in (ranked or self.ranked())[:keep]}

    def _forget_weights(self, ranked: list[Individual]) -> None:
        """Keep weights in memory only for the population and the best few; the rest live on disk."""
        keep = self._hall_of_fame(ranked)
        for i, ind in self.individuals.items():
            if i not in keep and ind.genome.weights:
                self.individuals[i] = dataclasses.replace(ind, genome=ind.genome.replace(weights={}))

    def result(self) -> RunResult:
        return RunResult(
            run_dir=self.store.root if self.store else None,
            best=self.with_weights(self.best()),
            population=list(self.population),
            pareto=[self.with_weights(ind) for ind in self.pareto()],
            history=list(self.history),
            individuals=dict(self.individuals),
        )

    # ------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        """Everything needed to resume, as JSON-ready data (weights are in the store)."""
        return {
            "generation": self.generation,
            "next_id": self.next_id,
            "population": [ind.id for ind in self.population],
            "individuals_logged": sum(len(r.evaluated) for r in self.history),  # lines of the store's records log
            "history": [record_to_dict(r) for r in self.history],
            "objectives": [[o.name, o.direction.value] for o in self.objectives],
            "seeds": {"run": self.evo.seed, "derivation": "numpy SeedSequence([run seed, id|generation, stream])"},
        }

    def restore(self, state: dict[str, Any], store: RunStore) -> None:
        """Continue from a checkpoint written by :meth:`state` (weights read back from ``store``).

        Reads (and checks the checksums of) everything it needs before it changes anything: the records
        log is cut to the checkpoint only after the last read, so a damaged run is left as it was.
        """
        keep = set(state["population"])
        records = {r["id"]: r for r in store.records(state)}
        self.history = [record_from_dict(r) for r in state["history"]]
        merged = latest_merged([r.extra for r in self.history])

        def load(i: int, weights: bool) -> Individual:
            genome = store.load_genome(i, records[i]) if weights else None
            ind = individual_from_record(records[i], genome)
            return apply_merged(ind, merged[i]) if i in merged else ind

        self.individuals = {i: load(i, i in keep) for i in records}
        self.population = [self.individuals[i] for i in state["population"]]
        self.next_id = state["next_id"]
        self.generation = state["generation"]
        self.budget_used = self.history[-1].budget_used if self.history else Budget()
        for i in self._hall_of_fame() - keep:
            self.individuals[i] = load(i, True)
        store.cut_records(state)
        for reporter in self.reporters:  # e.g. the mirror writes what a kill kept it from writing
            reporter.on_restored(list(self.individuals.values()))

    def _checkpoint(self, record: GenerationRecord, best: Individual) -> None:
        if self.store is None:
            return
        self.store.append_records([individual_to_record(self.individuals[i]) for i in record.evaluated],
                                  record.generation)
        self.store.save_checkpoint(record.generation, self.state())
        self.store.save_best(
            {"id": best.id, "architecture": str(best.genome), "objectives": best.objectives, "generation": best.generation},
            best.genome if best.genome.weights else None,
        )
        self.store.log("generation_end", generation=record.generation, best_id=best.id,
                       best=best.objectives, evaluated=list(record.evaluated), failures=record.failures)


# ----------------------------------------------------------------- operators of a run
DEFAULT_OPERATORS: dict[str, list[dict[str, Any]]] = {
    "gradient": [
        {"op": "widen", "prob": 0.25, "k": 4, "init": "split"},
        {"op": "widen", "prob": 0.15, "k": 8, "init": "zero"},
        {"op": "deepen", "prob": 0.1},
        {"op": "prune_neurons", "prob": 0.2, "amount": 0.1, "importance": "taylor"},
        {"op": "add_skip", "prob": 0.1},
        {"op": "set_dropout", "prob": 0.1, "p": 0.1},
        {"op": "remove_layer", "prob": 0.05},
        {"op": "mutate_weights", "prob": 0.05, "sigma": 0.01},
    ],
    "gradient_free": [
        {"op": "mutate_weights", "prob": 0.8, "sigma": 0.1},
        {"op": "widen", "prob": 0.08, "k": 1, "init": "random"},
        {"op": "add_skip", "prob": 0.04},
        {"op": "prune_neurons", "prob": 0.04, "amount": 1, "importance": "l1", "compensate": False},
        {"op": "deepen", "prob": 0.04},
    ],
}


def operator_specs(config: EvoConfig) -> list[dict[str, Any]]:
    """The operator entries a run uses: the configured ones, or the task kind's defaults (copies)."""
    gradient_free = config.task.kind in ("control", "xor")
    specs = config.operators if config.operators is not None else DEFAULT_OPERATORS["gradient_free" if gradient_free else "gradient"]
    return [dict(spec) for spec in specs]


def build_operators(config: EvoConfig) -> list[tuple[Operator, float]]:
    """The run's operators (see :func:`operator_specs`) with their probabilities."""
    from evo.operators.registry import make_operator

    return [(make_operator({k: v for k, v in spec.items() if k != "prob"}), float(spec.get("prob", 1.0)))
            for spec in operator_specs(config)]
