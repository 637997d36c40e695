"""The gymnasium adapter: any gymnasium env id as a :class:`~rlinf.envs.VectorEnv`."""

from __future__ import annotations

import functools
import multiprocessing as mp
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ._adapter import AdapterBase
from ._base import StepInfo, StepResult
from ._config import EnvConfig
from ._single import ChunkedEpisodeEnv, make_single_env
from ._spec import ActionSpec, ArraySpec, Obs
from ._sync_vector import SyncEnvs

__all__ = ["GymVectorEnv"]


def _autoreset_same_step() -> Any:
    mode = getattr(gym.vector, "AutoresetMode", None)
    if mode is None:
        raise ImportError(
            f"rlinf-envs needs gymnasium>=1.1 (AutoresetMode.SAME_STEP); found {gym.__version__}"
        )
    return mode.SAME_STEP


def _masked(info: Mapping[str, Any], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(values, mask)`` of a key of a gymnasium vector info dict, or None if absent."""
    if key not in info:
        return None
    return np.asarray(info[key]), np.asarray(info[f"_{key}"], dtype=bool)


class GymVectorEnv(AdapterBase):
    """``N`` copies of a gymnasium env, stepped in this process or one process per env.

    Built on :class:`~rlinf.envs._sync_vector.SyncEnvs` (gymnasium's ``SyncVectorEnv``
    without its per-step generic overhead) or gymnasium's ``AsyncVectorEnv``, both in
    ``SAME_STEP`` autoreset mode: an env whose episode ends is reset within the same step, and
    its last observation comes back in gymnasium's ``final_obs`` info, from which
    :attr:`StepInfo.final_obs` is built. (The default ``NEXT_STEP`` mode would instead return
    the final observation as the step's observation and silently ignore the next action of
    that env.) Each env is wrapped in :class:`~rlinf.envs._single.ChunkedEpisodeEnv`, which
    executes action chunks and keeps episode statistics next to the env.

    Args:
        config: :class:`EnvConfig`; ``config.env_id`` is any id ``gymnasium.make`` accepts.
        make_single: builds one wrapped env from ``config``; adapters of simulators that need
            more than ``gymnasium.make`` (e.g. ManiSkill's CPU envs) pass their own. It must
            be a module-level function so the async backend can pickle it.
        make_singles: one builder per env instead of ``make_single`` for all, for envs that
            differ (e.g. Meta-World's MT10, env ``i`` on task ``i % 10``); picklable too
            (module-level functions or ``functools.partial`` of them).
    """

    def __init__(
        self,
        config: EnvConfig,
        make_single: Callable[[EnvConfig], ChunkedEpisodeEnv] = make_single_env,
        *,
        make_singles: Sequence[Callable[[EnvConfig], ChunkedEpisodeEnv]] | None = None,
    ) -> None:
        self._init_adapter(config)
        if make_singles is None:
            make_singles = [make_single] * config.num_envs
        if len(make_singles) != config.num_envs:
            raise ValueError(
                f"env {config.env_id!r}: {len(make_singles)} env builders for "
                f"num_envs={config.num_envs}"
            )
        fns = [functools.partial(build, config) for build in make_singles]
        if config.backend == "sync":
            self._env: gym.vector.VectorEnv | SyncEnvs = SyncEnvs(fns)
        else:
            mode = _autoreset_same_step()
            method = config.start_method
            if method is None:
                methods = mp.get_all_start_methods()
                method = "forkserver" if "forkserver" in methods else "spawn"
            self._env = gym.vector.AsyncVectorEnv(fns, context=method, autoreset_mode=mode)
        obs_space = self._env.single_observation_space
        self.observation_spec: dict[str, ArraySpec] = {
            key: ArraySpec(tuple(s.shape), np.dtype(s.dtype), s.low, s.high)
            for key, s in obs_space.spaces.items()
        }
        chunk_space = self._env.single_action_space
        if isinstance(chunk_space, spaces.MultiDiscrete):
            self.action_spec = ActionSpec(kind="discrete", shape=(), n=int(chunk_space.nvec[0]))
        else:
            self.action_spec = ActionSpec(
                kind="continuous",
                shape=tuple(chunk_space.shape[1:]),
                low=np.asarray(chunk_space.low[0], np.float64),
                high=np.asarray(chunk_space.high[0], np.float64),
            )

    def reset(self, *, seed: int | None = None) -> Obs:
        """Reset all envs (env ``i`` seeded ``seed + i``; the first reset defaults to
        ``config.seed``, later unseeded resets continue each env's random stream).

        Returns:
            dict of ``[N, ...]`` arrays.
        """
        obs, _ = self._env.reset(seed=self._reset_seed(seed))
        self._reset_once = True
        return dict(obs)

    def state_unsupported(self) -> str | None:
        """Why :meth:`get_state` cannot capture these envs exactly, or None when it can."""
        self._check_open()
        reasons = self._per_env("state_unsupported")
        return next((r for r in reasons if r is not None), None)

    def get_state(self) -> dict[str, Any]:
        """Every env's episode in progress (see ``rlinf.envs._env_state``), plus this
        adapter's own state (first-reset flag, :meth:`sample_actions` RNG).

        Raises:
            ValueError: the env kind cannot be captured exactly (:meth:`state_unsupported`).
        """
        reason = self.state_unsupported()
        if reason is not None:
            raise ValueError(f"env {self.env_id!r}: {reason}")
        return {
            "envs": self._per_env("episode_state"),
            "reset_once": self._reset_once,
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` of an adapter built from the same config.

        Raises:
            ValueError: ``state`` holds another number of envs (or does not fit them).
        """
        self._check_open()
        envs = list(state["envs"])
        if len(envs) != self.num_envs:
            raise ValueError(f"env state of {len(envs)} envs for {self.num_envs} envs")
        if isinstance(self._env, SyncEnvs):
            for env, saved in zip(self._env.envs, envs, strict=True):
                env.episode_state = saved
        else:
            self._env.set_attr("episode_state", envs)
        self._reset_once = bool(state["reset_once"])
        self._rng.bit_generator.state = state["rng"]

    def _per_env(self, name: str) -> list[Any]:
        """Attribute ``name`` of every :class:`ChunkedEpisodeEnv` (in their processes with
        the async backend)."""
        if isinstance(self._env, SyncEnvs):
            return [getattr(env, name) for env in self._env.envs]
        return list(self._env.get_attr(name))

    def _step(self, acts: np.ndarray) -> StepResult:
        obs, reward, terminated, truncated, raw = self._env.step(acts)
        obs = dict(obs)
        done = np.logical_or(terminated, truncated)
        info = self._step_info(obs, done, raw)
        return StepResult(
            obs,
            np.asarray(reward, np.float64),
            terminated.astype(bool),
            truncated.astype(bool),
            info,
        )

    def _step_info(self, obs: Obs, done: np.ndarray, raw: Mapping[str, Any]) -> StepInfo:
        n = self.num_envs
        final_info = raw.get("final_info", {})

        def pick(key: str, default: np.ndarray) -> np.ndarray:
            # The ending step's info sits under "final_info" (its top level holds the info of
            # the reset that followed); the other envs' step info sits at the top level.
            out = default.copy()
            for source in (raw, final_info):
                got = _masked(source, key)
                if got is not None:
                    values, mask = got
                    out[mask] = values[mask]
            return out

        final_obs = {k: v.copy() for k, v in obs.items()}
        for i in np.flatnonzero(done):
            for k, v in raw["final_obs"][i].items():
                final_obs[k][i] = v
        ended = {
            "episode_return": pick("episode_return", np.zeros(n, np.float64)),
            "episode_length": pick("episode_length", np.zeros(n, np.int64)),
            "episode_success": pick("episode_success", np.zeros(n, bool)),
            "success_reported": pick("success_reported", np.zeros(n, bool)),
        }
        for key, value in ended.items():
            ended[key] = np.where(done, value, np.zeros_like(value))
        return StepInfo(
            done=done,
            final_obs=final_obs,
            chunk_executed=pick("chunk_executed", np.zeros(n, np.int64)),
            chunk_rewards=pick("chunk_rewards", np.zeros((n, self.chunk_size), np.float64)),
            raw=raw,
            **ended,
        )
