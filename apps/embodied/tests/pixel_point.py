"""A small pixel task for the off-policy pixel tests (imported by gymnasium through the id
``"pixel_point:PixelPoint-v0"``; the test puts this folder on the workers' PYTHONPATH).

A point moves in ``[-1, 1]^2`` by ``0.25 * action`` per step; the observation is only a
``16 x 16 x 3`` uint8 image with the point drawn as a bright 2 x 2 block in channel 0 (the
other channels hold a fixed gradient); reward ``-|p|``. A policy must read the pixels to
steer the point to the center.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["SIZE", "PixelPoint"]

SIZE = 16


class PixelPoint(gym.Env):
    observation_space = spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1.0, 1.0, 2)
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.25 * np.asarray(action, np.float64), -1.0, 1.0)
        return self._obs(), -float(np.linalg.norm(self.pos)), False, False, {}

    def _obs(self) -> np.ndarray:
        img = np.zeros((SIZE, SIZE, 3), np.uint8)
        img[:, :, 1] = np.linspace(0, 120, SIZE, dtype=np.uint8)[:, None]
        img[:, :, 2] = np.linspace(0, 120, SIZE, dtype=np.uint8)[None, :]
        r, c = np.round((self.pos + 1.0) / 2.0 * (SIZE - 2)).astype(int)
        img[r : r + 2, c : c + 2, 0] = 255
        return img


gym.register("PixelPoint-v0", entry_point=PixelPoint)
