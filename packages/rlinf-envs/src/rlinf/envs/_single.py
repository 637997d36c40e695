"""Per-env wrapper that turns any gymnasium env into the shape rlinf's vector envs expect.

It runs *inside* each env (in the worker process for the async backend), so an action
chunk costs one inter-process round trip instead of ``K``, and the chunk can stop exactly at
the end of the env's episode, which a vector env stepping all envs in lockstep cannot do.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ._config import EnvConfig
from ._env_state import EnvState, restore_env_state, snapshot_env_state, unsupported_reason
from ._frames import FrameStack
from ._spec import ActionSpec

__all__ = ["ChunkedEpisodeEnv", "action_spec_of", "make_single_env"]

_SUCCESS_KEYS = ("success", "is_success")


def _obs_transform(space: gym.Space, env_id: str) -> tuple[spaces.Dict, Any]:
    """The dict observation space and a function mapping one raw observation into it.

    Box -> ``{"rgb": ...}`` for ``[H, W, C]`` uint8 images, ``{"state": ...}`` otherwise;
    Discrete(n) -> one-hot float32 ``{"state": [n]}`` (so an MLP can read it);
    Dict of Boxes -> kept key by key.
    """
    if isinstance(space, spaces.Box):
        key = "rgb" if len(space.shape) == 3 and space.dtype == np.uint8 else "state"
        return spaces.Dict({key: space}), lambda o: {key: np.asarray(o, dtype=space.dtype)}
    if isinstance(space, spaces.Discrete):
        n, start = int(space.n), int(space.start)
        box = spaces.Box(0.0, 1.0, (n,), np.float32)

        def one_hot(o: Any) -> dict[str, np.ndarray]:
            out = np.zeros(n, np.float32)
            out[int(o) - start] = 1.0
            return {"state": out}

        return spaces.Dict({"state": box}), one_hot
    if isinstance(space, spaces.Dict) and all(
        isinstance(s, spaces.Box) for s in space.spaces.values()
    ):
        keys = list(space.spaces)
        return spaces.Dict(dict(space.spaces)), lambda o: {k: np.asarray(o[k]) for k in keys}
    raise ValueError(
        f"env {env_id!r}: observation space {space} is not supported; rlinf-envs takes Box, "
        "Discrete or a Dict of Boxes (wrap the env with gymnasium's FlattenObservation)"
    )


def action_spec_of(space: gym.Space, env_id: str) -> ActionSpec:
    """:class:`ActionSpec` of a gymnasium action space (Discrete or Box)."""
    if isinstance(space, spaces.Discrete):
        return ActionSpec(kind="discrete", shape=(), n=int(space.n))
    if isinstance(space, spaces.Box):
        return ActionSpec(
            kind="continuous",
            shape=tuple(space.shape),
            low=np.asarray(space.low, np.float64),
            high=np.asarray(space.high, np.float64),
        )
    raise ValueError(
        f"env {env_id!r}: action space {space} is not supported; rlinf-envs takes Discrete or Box"
    )


class ChunkedEpisodeEnv(gym.Wrapper):
    """Dict observations, ``K``-action chunks and episode statistics for one env.

    ``step(chunk)`` takes ``[K, *action_shape]`` (``[K]`` for discrete) and executes the
    actions in order until one ends the episode (the rest are dropped); it returns the
    last observation, the summed reward, the last step's flags, and adds to the info:
    ``chunk_executed`` (int), ``chunk_rewards`` (``[K]`` float64), and on the step that
    ends an episode ``episode_return``, ``episode_length`` (primitive steps),
    ``episode_success`` and ``success_reported``.
    """

    def __init__(self, env: gym.Env, chunk_size: int, env_id: str) -> None:
        super().__init__(env)
        self._k = chunk_size
        self._env_id = env_id
        self.observation_space, self._to_dict = _obs_transform(env.observation_space, env_id)
        self._spec = action_spec_of(env.action_space, env_id)
        inner = env.action_space
        if self._spec.discrete:
            self._start = int(inner.start)
            self.action_space = spaces.MultiDiscrete(np.full(chunk_size, self._spec.n))
        else:
            low = np.broadcast_to(inner.low, (chunk_size, *inner.shape))
            high = np.broadcast_to(inner.high, (chunk_size, *inner.shape))
            self.action_space = spaces.Box(low, high, dtype=inner.dtype)
        self._return = 0.0
        self._length = 0

    @property
    def state_unsupported(self) -> str | None:
        """Why :attr:`episode_state` cannot capture this env exactly, or None."""
        return unsupported_reason(self)

    @property
    def episode_state(self) -> EnvState:
        """The episode in progress, RNGs and simulator state (see ``rlinf.envs._env_state``);
        assigning a saved one restores it. A property so that gymnasium's ``AsyncVectorEnv``
        can read and write it per env (``get_attr`` / ``set_attr``)."""
        return snapshot_env_state(self)

    @episode_state.setter
    def episode_state(self, state: EnvState) -> None:
        restore_env_state(self, state)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._return, self._length = 0.0, 0
        return self._to_dict(obs), info

    def step(self, action: np.ndarray):
        chunk = np.asarray(action)
        rewards = np.zeros(self._k, np.float64)
        terminated = truncated = False
        info: dict[str, Any] = {}
        executed = 0
        total = 0.0  # a Python sum: numpy's per-call overhead is most of a small env's step
        for k in range(self._k):
            a = int(chunk[k]) + self._start if self._spec.discrete else chunk[k]
            obs, r, terminated, truncated, info = self.env.step(a)
            rewards[k] = r = float(r)
            total += r
            executed += 1
            if terminated or truncated:
                break
        self._return += total
        self._length += executed
        info = dict(info)
        info["chunk_executed"] = executed
        info["chunk_rewards"] = rewards
        if terminated or truncated:
            flag = next((info[key] for key in _SUCCESS_KEYS if key in info), None)
            info["episode_return"] = self._return
            info["episode_length"] = self._length
            info["episode_success"] = bool(np.asarray(flag).item()) if flag is not None else False
            info["success_reported"] = flag is not None
        return self._to_dict(obs), total, bool(terminated), bool(truncated), info


def make_single_env(config: EnvConfig) -> ChunkedEpisodeEnv:
    """Build one wrapped env from ``config``; module-level so the async backend can pickle it."""
    kwargs = dict(config.env_kwargs)
    if config.max_episode_steps is not None:
        kwargs["max_episode_steps"] = config.max_episode_steps
    env = gym.make(config.env_id, **kwargs)
    if config.frame_stack > 1:
        env = FrameStack(env, config.frame_stack)
    return ChunkedEpisodeEnv(env, config.chunk_size, config.env_id)
