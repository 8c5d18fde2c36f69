"""Control tasks: a gymnasium environment, the genome's network as the policy, fitness = mean return.

Gradient-free, as in NEAT (Stanley & Miikkulainen 2002): the evaluation returns the
input genome unchanged, and weights evolve only through mutation operators. The
policy maps an observation to an action: ``argmax`` over the outputs for a
``Discrete`` action space, ``tanh`` scaled to the bounds for a ``Box`` one. The
nets are tiny and run one observation at a time, so they run on the CPU whatever
``device`` says.

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

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from evo.genome import Genome
from evo.tasks._base import Budget, Evaluation, Objective, Task

__all__ = ["ControlTask"]


class ControlTask(Task):
    """Episodes of a gymnasium environment with a flat ``Box`` observation.

    Args:
        env_id: a registered gymnasium id, e.g. ``"CartPole-v1"``, ``"Pendulum-v1"``.
        episodes: episodes per evaluation (``Budget.episodes`` overrides it).
        max_episode_steps: truncate episodes after this many steps; ``None``: the environment's limit.
    """

    objectives = (Objective("mean_return"),)

    def __init__(self, env_id: str = "CartPole-v1", episodes: int = 5, max_episode_steps: int | None = None) -> None:
        if episodes < 1:
            raise ValueError(f"ControlTask: episodes must be >= 1, got {episodes}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"ControlTask: max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.env_id = env_id
        self.episodes = episodes
        self.max_episode_steps = max_episode_steps
        env = self._make()
        try:
            self._observation_shape = _check_observation(env_id, env.observation_space)
            self._action_space = _check_action(env_id, env.action_space)
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
        start = time.perf_counter()
        episodes = budget.episodes or self.episodes
        env_seeds = np.random.default_rng(seed).integers(2**31, size=episodes)
        policy = genome.to_module().eval()
        envs = [self._make() for _ in env_seeds]
        try:
            returns, steps = self._episodes(envs, policy, env_seeds)
        except FloatingPointError as err:
            return self.failed(str(err))
        finally:
            for env in envs:
                env.close()
        env_steps = int(steps.sum())
        mean = float(returns.mean())
        metrics = {
            "mean_return": mean,
            "std_return": float(returns.std()),
            "min_return": float(returns.min()),
            "max_return": float(returns.max()),
            "env_steps": float(env_steps),
            "episodes": float(episodes),
            "params": float(genome.num_params()),
        }
        used = Budget(steps=env_steps, episodes=episodes, seconds=time.perf_counter() - start)
        return Evaluation(-1, {"mean_return": mean}, genome, metrics, used)

    def calibration_batch(self, n: int, seed: int) -> tuple[Tensor, Tensor] | None:
        """Observations of a seeded random-action rollout and the actions taken."""
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
        return torch.as_tensor(np.stack(observations)), torch.as_tensor(np.asarray(actions))

    # ------------------------------------------------------------- internals
    def _make(self) -> gym.Env:
        try:
            return gym.make(self.env_id, max_episode_steps=self.max_episode_steps)
        except gym.error.DependencyNotInstalled as err:
            raise ValueError(f"task.env: {self.env_id} needs a missing dependency ({err})") from None
        except gym.error.Error as err:
            raise ValueError(f"task.env: unknown gymnasium environment {self.env_id!r} ({err})") from None

    def _episodes(self, envs: list[gym.Env], policy: nn.Module, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run one episode per env in lockstep: (returns, steps) per episode.

        Why lockstep: for these tiny policies a forward pass costs more than an
        environment step, and a batch of rows costs the same as one row, so
        stepping the episodes together cuts the policy's share by their number.
        Each env has its own seed, so the returns equal those of one-by-one episodes.
        """
        obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds)]).astype(np.float32)
        returns, steps = np.zeros(len(envs)), np.zeros(len(envs), dtype=np.int64)
        live = np.arange(len(envs))
        while live.size:
            actions = self._act(policy, obs[live])
            still = []
            for i, action in zip(live, actions):
                obs[i], reward, terminated, truncated, _ = envs[i].step(action)
                returns[i] += float(reward)
                steps[i] += 1
                if not (terminated or truncated):
                    still.append(i)
            live = np.asarray(still, dtype=np.int64)
        return returns, steps

    def _act(self, policy: nn.Module, obs: np.ndarray) -> list[int] | np.ndarray:
        """Actions for a batch of observations."""
        with torch.no_grad():
            out = policy(torch.from_numpy(obs)).numpy()
        if not np.isfinite(out).all():
            raise FloatingPointError("policy output is not finite")
        space = self._action_space
        if isinstance(space, spaces.Discrete):
            return [int(space.start) + int(a) for a in out.argmax(axis=1)]
        low, high = space.low, space.high
        return (low + (np.tanh(out) + 1.0) * 0.5 * (high - low)).astype(space.dtype)


def _check_observation(env_id: str, space: gym.Space) -> tuple[int, ...]:
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"task.env: {env_id} must have a flat Box observation space, got {space}")
    return (int(space.shape[0]),)


def _check_action(env_id: str, space: gym.Space) -> spaces.Discrete | spaces.Box:
    if isinstance(space, spaces.Discrete):
        return space
    bounded = isinstance(space, spaces.Box) and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
    if not bounded or len(space.shape) != 1 or not math.prod(space.shape):
        raise ValueError(f"task.env: {env_id} needs a Discrete or bounded flat Box action space, got {space}")
    return space
