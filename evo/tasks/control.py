"""Control tasks: a gymnasium environment, the genome's network as the policy, fitness = mean return.

Gradient-free, as in NEAT (Stanley & Miikkulainen 2002): by default the evaluation
returns the input genome unchanged, and weights evolve only through mutation
operators; with a weight search (:mod:`evo.tasks.es`) an evolution strategy improves
the weights within the evaluation and the improved genome comes back (Lamarckian).
The policy maps an observation to an action: ``argmax`` over the outputs for a
``Discrete`` action space, ``tanh`` scaled to the bounds for a ``Box`` one. The nets
are tiny: they run as numpy stacks (:mod:`evo.stacked`) on the CPU whatever
``device`` says, every policy of a batch of jobs and every episode in lockstep.

Example:
    >>> from evo.genome import Genome
    >>> task = ControlTask("CartPole-v1", episodes=2)
    >>> task.input_shape, task.output_size
    ((4,), 2)
    >>> ev = task.evaluate(Genome.mlp((4,), (8,), 2), Budget(), "cpu", seed=0)
    >>> ev.budget_used.episodes
    2
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from evo.errors import ConfigError
from evo.genome import Genome
from evo.preprocessing import Preprocessing
from evo.stacked import StackedNet, architecture_key
from evo.tasks._base import Task
from evo.tasks.es import WeightSearch, search_weights
from evo.types import Budget, Evaluation, Job, Objective

__all__ = ["TEST_SEED", "ControlTask", "Rollouts"]

#: Seed of the fresh episodes :meth:`ControlTask.test` measures the best individuals on (never used in evolution).
TEST_SEED = 0x7E57


class ControlTask(Task):
    """Episodes of a gymnasium environment with a flat ``Box`` observation.

    Args:
        env_id: a registered gymnasium id, e.g. ``"CartPole-v1"``, ``"Pendulum-v1"``.
        episodes: episodes per evaluation (``Budget.episodes`` overrides it).
        max_episode_steps: truncate episodes after this many steps; ``None``: the environment's limit.
        normalize: map observation dimensions with finite bounds to [-1, 1] before the policy sees them.
        test_episodes: fresh episodes of :meth:`test` (the best individuals' held-out score); 0 = no test.
        weight_search: an evolution strategy run on the weights within each evaluation; None = none.
    """

    objectives = (Objective("mean_return"),)

    def __init__(self, env_id: str = "CartPole-v1", episodes: int = 5, max_episode_steps: int | None = None,
                 normalize: bool = False, test_episodes: int = 100, weight_search: WeightSearch | None = None) -> None:
        if episodes < 1 or test_episodes < 0:
            raise ConfigError(f"ControlTask: episodes must be >= 1 and test_episodes >= 0, got {episodes}, {test_episodes}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ConfigError(f"ControlTask: max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.env_id = env_id
        self.episodes = episodes
        self.max_episode_steps = max_episode_steps
        self.test_episodes = test_episodes
        self.weight_search = weight_search
        self._pool: list[gym.Env] = []
        env = self._make()
        try:
            self._observation_shape = _check_observation(env_id, env.observation_space)
            self._action_space = _check_action(env_id, env.action_space)
            self._scale = _bounds_scale(env.observation_space, normalize)
        finally:
            env.close()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._observation_shape

    @property
    def output_size(self) -> int:
        space = self._action_space
        return int(space.n) if isinstance(space, spaces.Discrete) else int(space.shape[0])

    def evaluate(self, genome: Genome, budget: Budget, device: str, seed: int) -> Evaluation:
        """Mean return over ``budget.episodes or self.episodes`` episodes whose env seeds derive from ``seed``."""
        return self.evaluate_batch([Job(-1, genome, budget, seed)], device)[0]

    def evaluate_batch(self, jobs: Sequence[Job], device: str) -> list[Evaluation]:
        """Each job's :meth:`evaluate`, with the jobs that share an architecture and an episode count rolled out
        together: one forward pass for all their policies per step, all their episodes stepped in lockstep."""
        learned = [self._learn(job) if job.learn and self.weight_search else (job, Budget(), {}) for job in jobs]
        jobs = [job for job, _, _ in learned]
        out: list[Evaluation | None] = [None] * len(jobs)
        groups: dict[Hashable, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault((architecture_key(job.genome), job.budget.episodes or self.episodes), []).append(i)
        for members in groups.values():
            for i, evaluation in zip(members, self._evaluate_group([jobs[i] for i in members]), strict=True):
                out[i] = evaluation
        return [_with_learning(e, used, stats) for e, (_, used, stats) in zip(out, learned, strict=True) if e is not None]

    def test(self, genome: Genome, device: str = "cpu") -> dict[str, float]:
        """Mean return over :attr:`test_episodes` fresh episodes (seeds from :data:`TEST_SEED`, never seen in
        evolution): how the policy does beyond the episodes selection favoured it on."""
        if not self.test_episodes:
            return {}
        job = Job(-1, genome, Budget(episodes=self.test_episodes), TEST_SEED, learn=False)
        metrics = self.evaluate_batch([job], device)[0].metrics
        return {f"test_{k}": metrics[k] for k in ("mean_return", "std_return", "min_return", "episodes") if k in metrics}

    def _learn(self, job: Job) -> tuple[Job, Budget, dict[str, float]]:
        """The job with its genome improved by the weight search, the work that took, and its statistics."""
        assert self.weight_search is not None
        start, search = time.perf_counter(), self.weight_search
        spent = {"steps": 0, "episodes": 0}

        def score(vectors: np.ndarray, iteration: int) -> np.ndarray:
            seeds = np.random.default_rng([job.seed, iteration, 1]).integers(2**31, size=search.episodes)
            run = self.rollout(StackedNet.from_vectors(job.genome, vectors), np.tile(seeds, (len(vectors), 1)))
            spent["steps"] += int(run.steps.sum())
            spent["episodes"] += run.steps.size
            failed = np.array([e is not None for e in run.errors])
            return np.where(failed, -np.inf, run.returns.mean(axis=1))

        genome, stats = search_weights(job.genome, score, search, job.seed)
        used = Budget(steps=spent["steps"], episodes=spent["episodes"], seconds=time.perf_counter() - start)
        return replace(job, genome=genome), used, stats

    def _evaluate_group(self, jobs: Sequence[Job]) -> list[Evaluation]:
        start = time.perf_counter()
        episodes = jobs[0].budget.episodes or self.episodes
        seeds = np.stack([np.random.default_rng(job.seed).integers(2**31, size=episodes) for job in jobs])
        run = self.rollout(StackedNet.of([job.genome for job in jobs]), seeds)
        seconds = (time.perf_counter() - start) / len(jobs)
        return [self._evaluation(job.genome, run.returns[p], run.steps[p], run.errors[p], seconds)
                for p, job in enumerate(jobs)]

    def _evaluation(self, genome: Genome, returns: np.ndarray, steps: np.ndarray, error: str | None,
                    seconds: float) -> Evaluation:
        env_steps = int(steps.sum())
        used = Budget(steps=env_steps, episodes=len(returns), seconds=seconds)
        if error is not None:
            return self.failed(error, used=used)
        mean = float(returns.mean())
        metrics = {
            "mean_return": mean,
            "std_return": float(returns.std()),
            "min_return": float(returns.min()),
            "max_return": float(returns.max()),
            "env_steps": float(env_steps),
            "episodes": float(len(returns)),
            "params": float(genome.num_params()),
        }
        return Evaluation(-1, {"mean_return": mean}, genome, metrics, used)

    def calibration_batch(self, n: int, seed: int) -> tuple[Tensor, Tensor] | None:
        """Observations (as the policy sees them) of a seeded random-action rollout and the actions taken."""
        env = self._make()
        env.action_space.seed(seed)
        observations, actions = [], []
        obs, _ = env.reset(seed=seed)
        while len(observations) < n:
            action = env.action_space.sample()
            observations.append(np.asarray(obs, dtype=np.float32))
            actions.append(action)
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                obs, _ = env.reset()
        env.close()
        return torch.as_tensor(self._scaled(np.stack(observations))), torch.as_tensor(np.asarray(actions))

    # ------------------------------------------------------------- internals
    def rollout(self, net: StackedNet, seeds: np.ndarray) -> Rollouts:
        """One episode per entry of ``seeds`` (P policies × E episodes), all stepped in lockstep.

        Why lockstep: for these tiny policies a forward pass costs more than an environment step, and a
        stack of rows costs about what one row does, so stepping every episode of every policy together
        cuts the policy's share by their number. Every row is computed each step (finished episodes' rows
        are ignored), so a policy's outputs never depend on its batch-mates, and each env has its own seed:
        the returns equal those of one-by-one episodes. A policy whose output is not finite on a live
        episode fails, and its episodes stop.
        """
        P, E = seeds.shape
        envs = self._envs(P * E)
        obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds.flat)]).astype(np.float32)
        obs = obs.reshape(P, E, -1)
        returns, steps = np.zeros((P, E)), np.zeros((P, E), dtype=np.int64)
        live = np.ones((P, E), dtype=bool)
        errors: list[str | None] = [None] * P
        while live.any():
            out = net(self._scaled(obs))
            for p in np.flatnonzero((~np.isfinite(out).all(axis=2) & live).any(axis=1)):
                errors[p], live[p] = "policy output is not finite", False
            rows = np.argwhere(live)
            for (p, e), action in zip(rows, self._actions(out[live])):
                obs[p, e], reward, terminated, truncated, _ = envs[p * E + e].step(action)
                returns[p, e] += float(reward)
                steps[p, e] += 1
                live[p, e] = not (terminated or truncated)
        return Rollouts(returns, steps, errors)

    def _envs(self, n: int) -> list[gym.Env]:
        """``n`` environments from this task's pool, grown on demand: making one costs more than resetting it
        (``reset(seed=...)`` restores an env completely, so reuse never changes an episode)."""
        while len(self._pool) < n:
            self._pool.append(self._make())
        return self._pool[:n]

    def __getstate__(self) -> dict[str, object]:
        """Pickled without the env pool (Ray ships the task to workers; each grows its own)."""
        return {**self.__dict__, "_pool": []}

    def _scaled(self, obs: np.ndarray) -> np.ndarray:
        """Observations as the policy sees them: bounded dimensions mapped to [-1, 1] when ``normalize``."""
        return obs if self._scale is None else (obs - self._scale[0]) / self._scale[1]

    def preprocessing(self) -> Preprocessing:
        """With ``normalize``, the observation scaling (exports then take raw observations); else none."""
        if self._scale is None:
            return Preprocessing()
        mean, std = self._scale
        return Preprocessing(mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std))

    def _make(self) -> gym.Env:
        try:
            return gym.make(self.env_id, max_episode_steps=self.max_episode_steps)
        except gym.error.DependencyNotInstalled as err:
            hint = "; in evo's checkout: make box2d" if "box2d" in str(err).lower() else ""
            raise ConfigError(f"task.env: {self.env_id} needs a missing dependency ({err}){hint}") from None
        except gym.error.Error as err:
            raise ConfigError(f"task.env: unknown gymnasium environment {self.env_id!r} ({err})") from None

    def _actions(self, out: np.ndarray) -> list[int] | np.ndarray:
        """Actions for a batch of policy outputs (rows)."""
        space = self._action_space
        if isinstance(space, spaces.Discrete):
            return [int(space.start) + int(a) for a in out.argmax(axis=1)]
        low, high = space.low, space.high
        return (low + (np.tanh(out) + 1.0) * 0.5 * (high - low)).astype(space.dtype)


@dataclass(frozen=True)
class Rollouts:
    """Returns and steps ``(P, E)`` of P policies' E episodes each, and why each policy failed (or None)."""

    returns: np.ndarray
    steps: np.ndarray
    errors: list[str | None]


def _with_learning(evaluation: Evaluation, used: Budget, stats: dict[str, float]) -> Evaluation:
    """The evaluation charged with the weight search's work, its statistics among the metrics."""
    return replace(evaluation, budget_used=evaluation.budget_used + used, metrics={**evaluation.metrics, **stats})


def _bounds_scale(space: spaces.Box, normalize: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) with ``(x - mean) / std`` mapping each bounded observation dimension to [-1, 1]: the bounds'
    midpoint and half-width (0 and 1 for unbounded dimensions, which pass unchanged)."""
    if not normalize:
        return None
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    bounded = np.isfinite(low) & np.isfinite(high) & (high > low)
    mean = np.where(bounded, (np.where(bounded, low, 0.0) + np.where(bounded, high, 0.0)) / 2, 0.0)
    std = np.where(bounded, (np.where(bounded, high, 1.0) - np.where(bounded, low, -1.0)) / 2, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def _check_observation(env_id: str, space: gym.Space) -> tuple[int, ...]:
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise ConfigError(f"task.env: {env_id} must have a flat Box observation space, got {space}")
    return (int(space.shape[0]),)


def _check_action(env_id: str, space: gym.Space) -> spaces.Discrete | spaces.Box:
    if isinstance(space, spaces.Discrete):
        return space
    bounded = isinstance(space, spaces.Box) and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
    if not bounded or len(space.shape) != 1 or not math.prod(space.shape):
        raise ConfigError(f"task.env: {env_id} needs a Discrete or bounded flat Box action space, got {space}")
    return space
