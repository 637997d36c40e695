"""EnvWorker: a share of the envs, stepped in pipeline stages, talking through channels.

The worker knows nothing about policies (rlinf.envs never imports rlinf.models): it sends
observation requests as plain dicts of numpy arrays and records whatever per-env arrays the
replies carry, so any rollout worker that speaks the protocol below can drive it.

Protocol, per pipeline stage ``s`` of worker rank ``r`` (reply key ``("env", r, s)``):

* request (env -> rollout, on the observation channel under the stage's rollout key):
  ``{"reply_key": ("env", r, s), "obs": obs | None, "final_obs": obs | None}``. Step 0 of a
  rollout sends only ``obs``; steps ``1..T-1`` send the new ``obs`` and the previous step's
  ``final_obs``; a last request after step ``T`` sends only ``final_obs``.
* reply (rollout -> env, on the action channel under the reply key):
  ``{"action": [n, ...] (when obs was sent), "record": {name: [n, ...]},
  "record_prev": {name: [n, ...]}}``; ``record`` arrays are stored at this step,
  ``record_prev`` at the previous one (e.g. ``V(final_obs)``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from rlinf.channel import Channel
from rlinf.core import Worker

from ._base import VectorEnv
from ._config import EnvConfig
from ._registry import make_env
from ._spec import ActionSpec, ArraySpec, Obs

__all__ = ["EnvWorker", "stage_reply_key"]


def stage_reply_key(rank: int, stage: int) -> tuple[str, int, int]:
    """The action-channel key on which env worker ``rank`` waits for stage ``stage``."""
    return ("env", rank, stage)


class EnvWorker(Worker):
    """Owns ``config.num_envs`` envs, split into ``num_stages`` vector envs (stages).

    While stage ``s`` is simulated here, the rollout can already be computing actions for
    stage ``s + 1``: every stage's request is sent as soon as its observations exist, and
    the worker steps stages in order as their replies arrive.

    Env ``j`` of stage ``s`` is seeded ``config.seed + rank * num_envs + s * n + j`` (``n``
    envs per stage), so ranks and stages never share an episode stream.

    Args:
        config: env config of *this worker's* share (``num_envs`` divisible by
            ``num_stages``).
        num_stages: pipeline stages.
    """

    def __init__(self, config: EnvConfig, num_stages: int = 1) -> None:
        super().__init__()
        if num_stages < 1 or config.num_envs % num_stages:
            raise ValueError(
                f"env worker {self.rank}: num_envs {config.num_envs} is not divisible into "
                f"{num_stages} pipeline stages"
            )
        self.num_stages = num_stages
        per_stage = config.num_envs // num_stages
        base = config.seed + self.rank * config.num_envs
        self._seeds = [base + s * per_stage for s in range(num_stages)]
        self.envs: list[VectorEnv] = [
            make_env(dataclasses.replace(config, num_envs=per_stage, seed=seed))
            for seed in self._seeds
        ]
        self._obs: list[Obs | None] = [None] * num_stages

    def specs(self) -> tuple[dict[str, ArraySpec], ActionSpec]:
        """``(observation_spec, action_spec)`` of one env."""
        return dict(self.envs[0].observation_spec), self.envs[0].action_spec

    def reset(self, seed_offset: int = 0) -> None:
        """Reset every stage now (e.g. after resuming), with seeds shifted by ``seed_offset``."""
        for s, env in enumerate(self.envs):
            self._obs[s] = env.reset(seed=self._seeds[s] + seed_offset)

    def rollout(
        self,
        obs_channel: Channel,
        act_channel: Channel,
        rollout_keys: Sequence[Hashable],
        num_steps: int,
        *,
        channel_timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Run ``num_steps`` steps of every stage, exchanging requests and replies.

        Args:
            obs_channel, act_channel: the request and reply channels.
            rollout_keys: per stage, the observation-channel key its requests go to.
            num_steps: ``T``.
            channel_timeout: seconds to wait for any reply or for room to send (a dead
                rollout never hangs the worker; named so as not to clash with
                ``WorkerGroup.call``'s own ``timeout``).

        Returns:
            ``{"trajectory": {"obs": {k: [N, T, ...]}, "actions": [N, T, ...],
            "rewards", "terminated", "truncated": [N, T], <recorded names>: [N, T, ...]},
            "episodes": {"return", "length", "success": [E]}, "env_steps": int,
            "time/env_step": s, "time/env_wait": s}``; ``N`` is this worker's envs, stages
            concatenated in order.
        """
        if len(rollout_keys) != self.num_stages:
            raise ValueError(f"{len(rollout_keys)} rollout keys for {self.num_stages} stages")
        for s in range(self.num_stages):
            if self._obs[s] is None:
                self._obs[s] = self.envs[s].reset()
        bufs = [_StageBuffer() for _ in range(self.num_stages)]
        episodes: dict[str, list[np.ndarray]] = {"return": [], "length": [], "success": []}
        step_time = wait_time = 0.0
        for s in range(self.num_stages):
            self._request(obs_channel, rollout_keys[s], s, self._obs[s], None, channel_timeout)
        for t in range(num_steps + 1):
            for s, env in enumerate(self.envs):
                start = time.perf_counter()
                reply = act_channel.get(key=stage_reply_key(self.rank, s), timeout=channel_timeout)
                wait_time += time.perf_counter() - start
                bufs[s].record(reply)
                if t == num_steps:
                    continue
                start = time.perf_counter()
                result = env.step(np.asarray(reply["action"]))
                step_time += time.perf_counter() - start
                bufs[s].step(self._obs[s], reply["action"], result)
                for k, v in result.info.completed_episodes().items():
                    if k in episodes:
                        episodes[k].append(v)
                self._obs[s] = result.obs
                last = t + 1 == num_steps
                self._request(
                    obs_channel,
                    rollout_keys[s],
                    s,
                    None if last else result.obs,
                    result.info.final_obs,
                    channel_timeout,
                )
        trajectory = _StageBuffer.concat([b.arrays() for b in bufs])
        n = sum(env.num_envs for env in self.envs)
        return {
            "trajectory": trajectory,
            "episodes": {k: np.concatenate(v) if v else np.zeros(0) for k, v in episodes.items()},
            "env_steps": n * num_steps * self.envs[0].chunk_size,
            "time/env_step": step_time,
            "time/env_wait": wait_time,
        }

    def _request(
        self,
        channel: Channel,
        key: Hashable,
        stage: int,
        obs: Obs | None,
        final_obs: Obs | None,
        timeout: float,
    ) -> None:
        channel.put(
            {"reply_key": stage_reply_key(self.rank, stage), "obs": obs, "final_obs": final_obs},
            key=key,
            timeout=timeout,
        )

    def close(self) -> None:
        """Close every stage's envs."""
        for env in self.envs:
            env.close()


class _StageBuffer:
    """Per-step arrays of one stage, stacked to ``[n, T, ...]`` at the end."""

    def __init__(self) -> None:
        self.obs: list[Obs] = []
        self.cols: dict[str, list[np.ndarray]] = {
            k: [] for k in ("actions", "rewards", "terminated", "truncated")
        }
        self.records: dict[str, list[np.ndarray]] = {}

    def record(self, reply: dict[str, Any]) -> None:
        for name, value in reply.get("record_prev", {}).items():
            # Belongs to the step just taken: its list is one shorter than the step count.
            self.records.setdefault(name, []).append(np.asarray(value))
        for name, value in reply.get("record", {}).items():
            self.records.setdefault(name, []).append(np.asarray(value))

    def step(self, obs: Obs, action: Any, result: Any) -> None:
        self.obs.append(obs)
        self.cols["actions"].append(np.asarray(action))
        self.cols["rewards"].append(np.asarray(result.reward))
        self.cols["terminated"].append(np.asarray(result.terminated))
        self.cols["truncated"].append(np.asarray(result.truncated))

    def arrays(self) -> dict[str, Any]:
        t = len(self.obs)
        out: dict[str, Any] = {
            "obs": {k: np.stack([o[k] for o in self.obs], axis=1) for k in self.obs[0]}
        }
        for name, values in {**self.cols, **self.records}.items():
            if len(values) != t:
                raise RuntimeError(
                    f"rollout reply field {name!r} came {len(values)} times for {t} steps"
                )
            out[name] = np.stack(values, axis=1)
        return out

    @staticmethod
    def concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "obs": {k: np.concatenate([p["obs"][k] for p in parts]) for k in parts[0]["obs"]}
        }
        for name in parts[0]:
            if name != "obs":
                out[name] = np.concatenate([p[name] for p in parts])
        return out
