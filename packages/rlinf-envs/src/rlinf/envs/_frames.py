"""Frame stacking for image observations: the last ``k`` frames on the channel axis.

One image is a snapshot: a policy that sees only the current frame cannot tell how fast
anything moves. Stacking the last ``k`` frames of every ``[H, W, C]`` uint8 entry into
``[H, W, k * C]`` (oldest first) lets a CNN infer velocities, as in DQN / DrQ. Vector entries
pass unchanged. The frames live in a list of numpy arrays, a plain attribute, so the env
state snapshot of ``rlinf.envs._env_state`` saves and restores them with the rest.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["FrameStack", "is_image_space"]


def is_image_space(space: gym.Space) -> bool:
    """``[H, W, C]`` uint8 Boxes are images (what the adapters report under ``"rgb"``)."""
    return isinstance(space, spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


class FrameStack(gym.Wrapper):
    """Observations with each image entry replaced by its last ``k`` frames.

    Takes a Box image observation or a Dict of Boxes (images and vectors). After a reset the
    stack holds ``k`` copies of the first frame, so every observation has the same shape.

    Raises:
        ValueError: ``k < 1``, or the observation has no image entry to stack.
    """

    def __init__(self, env: gym.Env, k: int) -> None:
        super().__init__(env)
        if k < 1:
            raise ValueError(f"frame_stack must be >= 1, got {k}")
        space = env.observation_space
        entries = dict(space.spaces) if isinstance(space, spaces.Dict) else {None: space}
        self._image_keys = [key for key, s in entries.items() if is_image_space(s)]
        if not self._image_keys:
            raise ValueError(
                f"frame_stack={k} needs image observations ([H, W, C] uint8), got {space}"
            )
        self._k = k
        stacked = {
            key: spaces.Box(0, 255, (*s.shape[:2], k * s.shape[2]), np.uint8)
            if key in self._image_keys
            else s
            for key, s in entries.items()
        }
        self.observation_space = stacked[None] if None in stacked else spaces.Dict(stacked)
        self.frames: list[np.ndarray] = []
        """Per image key (in ``_image_keys`` order) ``[k, H, W, C]`` uint8, oldest first."""

    def _entries(self, obs: Any) -> dict[Any, Any]:
        return dict(obs) if isinstance(obs, dict) else {None: obs}

    def _out(self, obs: Any) -> Any:
        entries = self._entries(obs)
        for key, stack in zip(self._image_keys, self.frames, strict=True):
            h, w, c = stack.shape[1:]
            # [k, H, W, C] -> [H, W, k * C]: frame j fills channels j*C .. (j+1)*C - 1.
            entries[key] = stack.transpose(1, 2, 0, 3).reshape(h, w, self._k * c)
        return entries.get(None, entries)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        entries = self._entries(obs)
        self.frames = [
            np.repeat(np.asarray(entries[key], np.uint8)[None], self._k, axis=0)
            for key in self._image_keys
        ]
        return self._out(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        entries = self._entries(obs)
        for key, stack in zip(self._image_keys, self.frames, strict=True):
            stack[:-1] = stack[1:]
            stack[-1] = entries[key]
        return self._out(obs), reward, terminated, truncated, info
