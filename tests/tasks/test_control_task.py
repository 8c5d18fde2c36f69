"""ControlTask on gymnasium's classic-control environments."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from evo.genome import Genome
from evo.tasks import Budget, ControlTask


def linear_policy(weight: list[list[float]], bias: list[float]) -> Genome:
    """A single Linear layer (no hidden layers) with the given weights."""
    skeleton = Genome.mlp((len(weight[0]),), (), len(weight))
    return skeleton.with_weights({"layers.0.weight": torch.tensor(weight), "layers.0.bias": torch.tensor(bias)})


#: push right (action 1) when the pole leans or falls right: θ + θ̇ > 0.
TOWARD_POLE = linear_policy([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]], [0.0, 0.0])
ALWAYS_LEFT = linear_policy([[0.0] * 4, [0.0] * 4], [1.0, 0.0])


@pytest.fixture(scope="module")
def cartpole() -> ControlTask:
    return ControlTask("CartPole-v1", episodes=3, max_episode_steps=200)


def test_shapes(cartpole: ControlTask) -> None:
    assert cartpole.input_shape == (4,) and cartpole.output_size == 2
    assert [o.name for o in cartpole.objectives] == ["mean_return"]


def test_returns_are_deterministic_for_a_seed(cartpole: ControlTask) -> None:
    genome = Genome.mlp((4,), (8,), 2, seed=1)
    a = cartpole.evaluate(genome, Budget(), "cpu", seed=5)
    b = cartpole.evaluate(genome, Budget(), "cpu", seed=5)
    assert a.objectives == b.objectives and a.metrics["env_steps"] == b.metrics["env_steps"]
    steps = {cartpole.evaluate(genome, Budget(), "cpu", seed=s).metrics["env_steps"] for s in range(4)}
    assert len(steps) > 1  # the env seeds really derive from the seed


def test_lockstep_episodes_equal_one_by_one_rollouts(cartpole: ControlTask) -> None:
    """The episodes run together, yet each return is that of its own seeded episode."""
    genome = Genome.mlp((4,), (8,), 2, seed=3)
    policy = genome.to_module().eval()
    env = gym.make("CartPole-v1", max_episode_steps=200)
    expected = []
    for env_seed in np.random.default_rng(7).integers(2**31, size=3):
        obs, _ = env.reset(seed=int(env_seed))
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                action = int(policy(torch.as_tensor(obs).reshape(1, -1)).argmax())
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        expected.append(total)
    ev = cartpole.evaluate(genome, Budget(), "cpu", seed=7)
    assert len(set(expected)) > 1  # episodes of different lengths, so some end while others go on
    assert ev.objectives["mean_return"] == pytest.approx(np.mean(expected))
    assert (ev.metrics["min_return"], ev.metrics["max_return"]) == (min(expected), max(expected))
    assert ev.metrics["env_steps"] == sum(expected)  # CartPole: reward 1 per step


def test_balancing_policy_beats_a_constant_one(cartpole: ControlTask) -> None:
    good = cartpole.evaluate(TOWARD_POLE, Budget(), "cpu", seed=0)
    bad = cartpole.evaluate(ALWAYS_LEFT, Budget(), "cpu", seed=0)
    assert good.objectives["mean_return"] == 200.0  # balanced until the step limit
    assert bad.objectives["mean_return"] < 20.0
    assert good.genome is TOWARD_POLE  # gradient-free: the input genome comes back


def test_budget_episodes_override_and_usage(cartpole: ControlTask) -> None:
    ev = cartpole.evaluate(TOWARD_POLE, Budget(episodes=2), "cpu", seed=0)
    assert ev.budget_used.episodes == 2 and ev.budget_used.steps == 400
    assert ev.metrics["episodes"] == 2.0 and ev.metrics["env_steps"] == 400.0


def test_non_finite_policy_fails(cartpole: ControlTask) -> None:
    broken = linear_policy([[math.nan] * 4, [0.0] * 4], [0.0, 0.0])
    ev = cartpole.evaluate(broken, Budget(), "cpu", seed=0)
    assert not ev.ok and ev.objectives["mean_return"] == -math.inf and "not finite" in (ev.error or "")


def test_box_actions_are_tanh_scaled_to_the_bounds() -> None:
    task = ControlTask("Pendulum-v1", episodes=1, max_episode_steps=10)
    assert task.input_shape == (3,) and task.output_size == 1
    push = linear_policy([[0.0, 0.0, 0.0]], [100.0])  # tanh → 1 → the upper bound, 2
    actions = []
    original = task._actions
    task._actions = lambda out: actions.append(original(out)) or actions[-1]  # type: ignore[method-assign]
    ev = task.evaluate(push, Budget(), "cpu", seed=0)
    assert ev.budget_used.steps == 10 and len(actions) == 10
    np.testing.assert_allclose(np.concatenate(actions), 2.0)


def test_discrete_actions_with_three_choices() -> None:
    task = ControlTask("MountainCar-v0", episodes=1, max_episode_steps=50)
    ev = task.evaluate(Genome.mlp((2,), (4,), 3), Budget(), "cpu", seed=0)
    assert task.output_size == 3 and ev.objectives["mean_return"] == -50.0  # −1 per step, goal unreachable


def test_calibration_batch_is_a_seeded_random_rollout(cartpole: ControlTask) -> None:
    x, y = cartpole.calibration_batch(64, seed=2) or (None, None)
    x2, _ = cartpole.calibration_batch(64, seed=2) or (None, None)
    assert x is not None and y is not None and x.shape == (64, 4) and y.shape == (64,)
    assert torch.equal(x, x2) and set(y.tolist()) <= {0, 1}


@pytest.mark.parametrize(("env", "message"), [("NoSuchEnv-v0", "unknown gymnasium environment"), ("FrozenLake-v1", "flat Box")])
def test_bad_environments(env: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ControlTask(env)


def test_a_missing_box2d_names_the_make_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """LunarLander without Box2D (``make install`` leaves it out): gymnasium's words, and evo's way to get it."""
    def make(*_args: object, **_kwargs: object) -> gym.Env:
        raise gym.error.DependencyNotInstalled('Box2D is not installed, run `pip install "gymnasium[box2d]"`')

    monkeypatch.setattr(gym, "make", make)
    with pytest.raises(ValueError, match=r"task.env: LunarLander-v3 needs a missing dependency \(Box2D is not "
                       r"installed.*\); in evo's checkout: make box2d$"):
        ControlTask("LunarLander-v3")


def test_bad_episodes() -> None:
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        ControlTask(episodes=0)
