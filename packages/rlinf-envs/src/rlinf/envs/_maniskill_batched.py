"""ManiSkill's batched env (the GPU simulator's path) as a :class:`~rlinf.envs.VectorEnv`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ._adapter import AdapterBase
from ._base import StepInfo, StepResult
from ._config import EnvConfig
from ._maniskill_setup import (
    flatten_rgb,
    gym_make,
    ignores_terminations,
    import_maniskill,
    make_kwargs,
)
from ._single import action_spec_of
from ._spec import ArraySpec, Obs

__all__ = ["ManiSkillBatchedVectorEnv"]


def _spec_of(space: gym.Space, env_id: str) -> dict[str, ArraySpec]:
    """Observation spec of a ManiSkill single-env space: a Box (state) or a Dict of Boxes."""
    if isinstance(space, spaces.Box):
        space = spaces.Dict({"state": space})
    if not isinstance(space, spaces.Dict):
        raise ValueError(f"env {env_id!r}: unsupported observation space {space}")
    return {
        key: ArraySpec(tuple(s.shape), np.dtype(s.dtype), s.low, s.high)
        for key, s in space.spaces.items()
    }


class ManiSkillBatchedVectorEnv(AdapterBase):
    """``N`` ManiSkill envs as one batched ManiSkill env in this process: the GPU simulator's
    path (``sim_backend="physx_cuda"``). With the CPU simulator ManiSkill allows only
    ``N == 1`` here, which the tests use to check this class without CUDA.

    Implements the :class:`~rlinf.envs.VectorEnv` semantics on top of ManiSkill's batched env:
    all envs step in lockstep, so within an action chunk an env whose episode has ended keeps
    being stepped with the rest of its chunk, but those steps are discarded (no reward, no
    length) and the env is reset (ManiSkill's partial reset of the ended envs) before ``step``
    returns; its :attr:`StepInfo.final_obs` row is the observation at the step that ended it.
    Observations and stats come back as numpy arrays (one device-to-host copy per step).

    Seeding: ``reset(seed=s)`` seeds env ``i`` with ``s + i``; auto-resets draw a torch seed
    from a generator seeded by ``config.seed`` (under ``torch.random.fork_rng``, so the
    caller's global torch RNG is untouched), which makes runs reproducible.

    Args:
        config: :class:`EnvConfig`, normally with ``env_kwargs["sim_backend"]`` a CUDA backend.
    """

    def __init__(self, config: EnvConfig) -> None:
        import_maniskill(config.env_id)
        import torch

        self._torch = torch
        self._init_adapter(config)
        kwargs = make_kwargs(config)
        env = gym_make(config.env_id, num_envs=config.num_envs, **kwargs)
        if kwargs["obs_mode"] == "rgb":
            env = flatten_rgb(env)
        self._env = env
        base = env.unwrapped
        self._device = torch.device(base.device)
        self.observation_spec = _spec_of(base.single_observation_space, config.env_id)
        self.action_spec = action_spec_of(base.single_action_space, config.env_id)
        self._reset_rng = np.random.default_rng([config.seed, 1])
        self._return = np.zeros(self.num_envs, np.float64)
        self._length = np.zeros(self.num_envs, np.int64)
        self._ignore_terminations = ignores_terminations(config)

    def _to_numpy(self, obs: Any) -> Obs:
        """ManiSkill's batched tensor / dict of tensors -> dict of ``[N, ...]`` numpy arrays."""
        if not isinstance(obs, Mapping):
            obs = {"state": obs}
        return {key: value.detach().cpu().numpy() for key, value in obs.items()}

    def _flags(self, value: Any) -> np.ndarray:
        return np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)

    def reset(self, *, seed: int | None = None) -> Obs:
        """Reset all envs (env ``i`` seeded ``seed + i``; the first reset defaults to
        ``config.seed``).

        Returns:
            dict of ``[N, ...]`` arrays.
        """
        seed = self._reset_seed(seed)
        seeds = None if seed is None else [seed + i for i in range(self.num_envs)]
        if seeds is None:
            with self._seeded_torch():
                obs, _ = self._env.reset()
        else:
            obs, _ = self._env.reset(seed=seeds)
        self._return[:] = 0.0
        self._length[:] = 0
        self._reset_once = True
        return self._to_numpy(obs)

    @contextlib.contextmanager
    def _seeded_torch(self) -> Iterator[None]:
        """Run the body with the torch RNGs (CPU and this env's GPU) seeded from this env's
        own stream; ManiSkill samples unseeded episodes with ``torch.rand``."""
        torch = self._torch
        devices = [self._device.index or 0] if self._device.type == "cuda" else []
        seed = int(self._reset_rng.integers(2**31))
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def _step(self, acts: np.ndarray) -> StepResult:
        n, k_max = self.num_envs, self.chunk_size
        rewards = np.zeros((n, k_max), np.float64)
        executed = np.zeros(n, np.int64)
        ended = np.zeros(n, bool)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        success = np.zeros(n, bool)
        reported = np.zeros(n, bool)
        final_obs: Obs = {}
        obs: Obs = {}
        raw: dict[str, Any] = {}
        for k in range(k_max):
            step_actions = self._torch.as_tensor(acts[:, k], device=self._device)
            obs_t, reward_t, term_t, trunc_t, info = self._env.step(step_actions)
            obs = self._to_numpy(obs_t)
            reward = self._flags(reward_t).astype(np.float64).reshape(n)
            term = self._flags(term_t).astype(bool).reshape(n)
            if self._ignore_terminations:
                term[:] = False
            trunc = self._flags(trunc_t).astype(bool).reshape(n)
            active = ~ended
            rewards[active, k] = reward[active]
            executed[active] += 1
            newly = active & (term | trunc)
            if k == 0:
                final_obs = {key: value.copy() for key, value in obs.items()}
            # Rows of envs that ended earlier in the chunk keep the observation of their end.
            for key, value in obs.items():
                final_obs[key][active] = value[active]
            if newly.any():
                terminated[newly] = term[newly]
                truncated[newly] = trunc[newly]
                if "success" in info:
                    success[newly] = self._flags(info["success"]).astype(bool).reshape(n)[newly]
                    reported[newly] = True
            ended |= newly
            raw = {key: self._flags(value) for key, value in info.items()}
            if ended.all():
                break
        self._return += rewards.sum(axis=1)
        self._length += executed
        done = ended
        episode_return = np.where(done, self._return, 0.0)
        episode_length = np.where(done, self._length, 0)
        if done.any():
            idx = self._torch.as_tensor(np.flatnonzero(done), device=self._device)
            with self._seeded_torch():
                obs_t, _ = self._env.reset(options={"env_idx": idx})
            obs = self._to_numpy(obs_t)
            self._return[done] = 0.0
            self._length[done] = 0
        info_out = StepInfo(
            done=done,
            final_obs=final_obs,
            episode_return=episode_return,
            episode_length=episode_length,
            episode_success=success & done,
            success_reported=reported & done,
            chunk_executed=executed,
            chunk_rewards=rewards,
            raw=raw,
        )
        return StepResult(obs, rewards.sum(axis=1), terminated, truncated, info_out)
