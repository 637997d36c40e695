"""Configuration of a vectorized environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["EnvConfig"]


@dataclass(frozen=True)
class EnvConfig:
    """What to simulate and how to vectorize it.

    Attributes:
        env_id: simulator task id, e.g. a gymnasium id such as ``"CartPole-v1"``.
        kind: name of the adapter in :data:`rlinf.envs.ENVS` (``"gym"``: any gymnasium id;
            ``"mujoco"``: a gymnasium MuJoCo task, needs the ``mujoco`` extra).
        num_envs: number of envs ``N`` stepped together (>= 1).
        seed: seed of the first :meth:`VectorEnv.reset` when it is given none; env ``i``
            gets ``seed + i`` so every env runs a different, reproducible episode stream.
        backend: ``"sync"`` steps the envs one after the other in this process;
            ``"async"`` runs each env in its own process (worth it when a step costs more
            than the inter-process round trip, e.g. physics or rendering).
        start_method: multiprocessing start method of the ``"async"`` backend
            (``"spawn"``, ``"forkserver"``, ``"fork"``); ``None`` picks ``"forkserver"``
            where available, since forking a process that already runs torch threads can
            deadlock.
        max_episode_steps: time limit in primitive env steps (episodes beyond it are
            truncated); ``None`` keeps the env's registered limit.
        chunk_size: ``K``, the number of actions one :meth:`VectorEnv.step` executes per env
            (action chunking); 1 means ordinary one-action steps.
        clip_actions: clip continuous actions to the action space bounds before stepping
            (policies usually sample unbounded Gaussians); when False they pass unchanged.
        env_kwargs: extra keyword arguments for the env constructor (``gymnasium.make``).
        frame_stack: ``k``: every image observation (``[H, W, C]`` uint8) becomes its last
            ``k`` frames stacked on channels, ``[H, W, k * C]``, oldest first (see
            ``rlinf.envs._frames``); 1 leaves observations as they are. Needs an env with
            image observations (e.g. ManiSkill with ``obs_mode: rgb``).
    """

    env_id: str
    kind: str = "gym"
    num_envs: int = 1
    seed: int = 0
    backend: Literal["sync", "async"] = "sync"
    start_method: str | None = None
    max_episode_steps: int | None = None
    chunk_size: int = 1
    clip_actions: bool = True
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    frame_stack: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"env_id must be a non-empty string, got {self.env_id!r}")
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {self.num_envs}")
        if self.backend not in ("sync", "async"):
            raise ValueError(f"backend must be 'sync' or 'async', got {self.backend!r}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(
                f"max_episode_steps must be >= 1 or None, got {self.max_episode_steps}"
            )
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {self.frame_stack}")
        if self.start_method is not None and self.backend != "async":
            raise ValueError("start_method only applies to backend='async'")
