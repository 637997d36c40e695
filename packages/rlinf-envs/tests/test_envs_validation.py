"""Bad actions raise a clear ValueError before any env moves; config validation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rlinf.envs import EnvConfig, GymVectorEnv


@pytest.fixture
def cartpole():
    with GymVectorEnv(EnvConfig("CartPole-v1", num_envs=3, chunk_size=2)) as env:
        env.reset()
        yield env


@pytest.mark.parametrize(
    ("actions", "pattern"),
    [
        (np.zeros((3,), np.int64), r"'CartPole-v1'.*shape \(3, 2\).*got \(3,\)"),
        (np.zeros((2, 2), np.int64), r"'CartPole-v1'.*got \(2, 2\)"),
        (np.array([[0, 1], [2, 0], [1, 1]]), r"'CartPole-v1'.*\[0, 2\).*envs \[1\]"),
        (np.array([[0, -1], [0, 0], [1, -3]]), r"out-of-range values for envs \[0, 2\]"),
        (np.array([[0.0, 0.5], [0, 0], [1, 1]]), r"'CartPole-v1'.*integers.*envs \[0\]"),
        (np.array([[0.0, 1.0], [np.nan, 0], [1, 1]]), r"'CartPole-v1'.*NaN or inf.*envs \[1\]"),
        (np.array([[True, False]] * 3), r"'CartPole-v1'.*numeric"),
    ],
)
def test_bad_discrete_actions(cartpole, actions, pattern):
    before = cartpole.reset(seed=4)["state"].copy()
    with pytest.raises(ValueError, match=pattern):
        cartpole.step(actions)
    # Nothing moved: stepping now gives what a fresh env seeded the same gives.
    good = np.zeros((3, 2), np.int64)
    after = cartpole.step(good).obs["state"]
    with GymVectorEnv(EnvConfig("CartPole-v1", num_envs=3, chunk_size=2, seed=4)) as fresh:
        np.testing.assert_array_equal(fresh.reset()["state"], before)
        np.testing.assert_array_equal(fresh.step(good).obs["state"], after)


@pytest.mark.parametrize(
    ("actions", "pattern"),
    [
        (np.array([[0.1], [np.inf]]), r"'Pendulum-v1'.*NaN or inf.*envs \[1\]"),
        (np.array([[np.nan], [0.0]]), r"'Pendulum-v1'.*NaN or inf.*envs \[0\]"),
        (np.zeros((2, 2)), r"'Pendulum-v1'.*shape \(2, 1, 1\).*or \(2, 1\).*got \(2, 2\)"),
        (np.zeros((2,)), r"'Pendulum-v1'.*got \(2,\)"),
    ],
)
def test_bad_continuous_actions(actions, pattern):
    with GymVectorEnv(EnvConfig("Pendulum-v1", num_envs=2)) as env:
        env.reset()
        with pytest.raises(ValueError, match=pattern):
            env.step(actions)


class EchoEnv(gym.Env):
    """Observes the last action it received (to see what the adapter passed through)."""

    observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = spaces.Box(-1.0, np.array([1.0, 3.0], np.float32), (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.asarray(action, np.float32), 0.0, False, False, {}


gym.register("rlinf-test/Echo-v0", entry_point=EchoEnv)


@pytest.mark.parametrize(("clip", "expected"), [(True, [-1.0, 3.0]), (False, [-5.0, 50.0])])
def test_continuous_actions_are_clipped_or_passed(clip, expected):
    with GymVectorEnv(EnvConfig("rlinf-test/Echo-v0", clip_actions=clip)) as env:
        env.reset()
        obs = env.step(np.array([[-5.0, 50.0]])).obs["state"]
    np.testing.assert_array_equal(obs, [expected])


def test_sample_actions_are_valid():
    for env_id, chunk in (("CartPole-v1", 3), ("Pendulum-v1", 2)):
        with GymVectorEnv(EnvConfig(env_id, num_envs=2, chunk_size=chunk)) as env:
            env.reset()
            acts = env.sample_actions()
            assert acts.shape == (2, chunk, *env.action_spec.shape)
            env.step(acts)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"env_id": ""}, "env_id"),
        ({"num_envs": 0}, "num_envs"),
        ({"backend": "thread"}, "backend"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
        ({"start_method": "spawn"}, "start_method"),
    ],
)
def test_config_validation(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        EnvConfig(**{"env_id": "CartPole-v1", **kwargs})
