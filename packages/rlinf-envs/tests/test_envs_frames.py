"""FrameStack: the last k frames on channels, oldest first; vectors untouched; bad configs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rlinf.envs import EnvConfig, FrameStack, make_env


class _Counter(gym.Env):
    """2x2 RGB frames whose every pixel holds the step count (reset: 0); a vector entry too."""

    def __init__(self, dict_obs: bool = True) -> None:
        image = spaces.Box(0, 255, (2, 2, 3), np.uint8)
        vector = spaces.Box(-10.0, 10.0, (1,), np.float32)
        self.dict_obs = dict_obs
        self.observation_space = spaces.Dict({"rgb": image, "pos": vector}) if dict_obs else image
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _obs(self):
        frame = np.full((2, 2, 3), self.t, np.uint8)
        return {"rgb": frame, "pos": np.array([self.t], np.float32)} if self.dict_obs else frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, False, False, {}


def _channels(obs):
    return obs[0, 0].tolist()  # pixel (0, 0), all channels


def test_stack_order_and_reset_fill():
    env = FrameStack(_Counter(), 3)
    assert env.observation_space["rgb"].shape == (2, 2, 9)
    assert env.observation_space["pos"].shape == (1,)
    obs, _ = env.reset()
    assert _channels(obs["rgb"]) == [0] * 9
    obs = env.step(np.zeros(1))[0]
    assert _channels(obs["rgb"]) == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    env.step(np.zeros(1))
    obs = env.step(np.zeros(1))[0]
    assert _channels(obs["rgb"]) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert obs["pos"].tolist() == [3.0]
    obs, _ = env.reset()  # a new episode forgets the old frames
    assert _channels(obs["rgb"]) == [0] * 9


def test_plain_image_observation_and_errors():
    env = FrameStack(_Counter(dict_obs=False), 2)
    env.reset()
    obs = env.step(np.zeros(1))[0]
    assert obs.shape == (2, 2, 6) and _channels(obs) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="frame_stack must be >= 1"):
        FrameStack(_Counter(), 0)
    with pytest.raises(ValueError, match=r"frame_stack=2 needs image observations"):
        FrameStack(gym.make("CartPole-v1"), 2)
    with pytest.raises(ValueError, match="frame_stack must be >= 1"):
        EnvConfig("CartPole-v1", frame_stack=0)


def test_vector_env_option():
    gym.register("RlinfFrames-v0", entry_point=_Counter, max_episode_steps=4)
    try:
        config = EnvConfig("RlinfFrames-v0", num_envs=2, frame_stack=2)
        with make_env(config) as env:
            assert env.observation_spec["rgb"].shape == (2, 2, 6)
            env.reset()
            for _ in range(4):
                out = env.step(env.sample_actions())
            # Step 4 ended the episode: the final observation holds frames 3 and 4, the
            # returned one the next episode's first frame twice.
            assert _channels(out.info.final_obs["rgb"][0]) == [3, 3, 3, 4, 4, 4]
            assert _channels(out.obs["rgb"][1]) == [0] * 6
    finally:
        gym.registry.pop("RlinfFrames-v0")
