"""Meta-World (metaworld 3.x) manipulation tasks as vector envs, behind the ``metaworld`` extra.

``config.env_id`` names either one task or a multi-task set:

* a task name, e.g. ``"reach-v3"`` (any of metaworld's 50 v3 tasks): MT1, all ``N`` envs run
  that task; each reset draws one of the task's 50 goal / object positions at random;
* ``"MT10"`` or ``"MT50"``: env ``i`` runs task ``i % M`` of the set (``M`` = 10 or 50, in
  metaworld's order), so ``num_envs`` must be a multiple of ``M``; the observation gets a
  one-hot task id of ``M`` entries appended so one policy can tell the tasks apart.

Observations are ``{"state": [N, 39] float32}`` (``[N, 39 + M]`` for a set), actions
``[N, 4]`` in ``[-1, 1]``, episodes 500 steps (``config.max_episode_steps`` overrides) and
always truncated, never terminated: metaworld's dense reward (version 2, in ``[0, 10]`` per
step) keeps paying after success, so ending episodes on success would teach a policy to
avoid it. An episode's success is metaworld's standard one: ``info["success"]`` was 1 at
*any* step of it (:class:`EverSucceeded`), reported like every env's success
(``StepInfo.episode_success``, ``env/success_rate`` in the embodied app).

``config.env_kwargs`` go to ``metaworld.make_mt_envs`` (e.g. ``reward_function_version``,
``render_mode="rgb_array"`` with ``width`` / ``height`` / ``camera_name``).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ._config import EnvConfig
from ._gym import GymVectorEnv
from ._single import ChunkedEpisodeEnv

__all__ = ["TASK_SETS", "EverSucceeded", "make_metaworld_env", "metaworld_tasks"]

TASK_SETS: tuple[str, ...] = ("MT10", "MT50")
"""The multi-task sets ``config.env_id`` may name."""


def _import_metaworld() -> Any:
    try:
        return importlib.import_module("metaworld")
    except ImportError as err:
        raise ImportError(
            f"Meta-World needs the extra: pip install 'rlinf-envs[metaworld]' ({err})"
        ) from err


def metaworld_tasks(env_id: str) -> list[str]:
    """The task names ``env_id`` stands for: ``[env_id]`` for one task, the set's tasks in
    metaworld's order for ``"MT10"`` / ``"MT50"``.

    Raises:
        ValueError: ``env_id`` is neither a v3 task nor a supported set (names them).
    """
    env_dict = importlib.import_module("metaworld.env_dict")
    if env_id == "MT10":
        return list(env_dict.MT10_V3)
    if env_id == "MT50":
        return list(env_dict.MT50_V3)
    if env_id in env_dict.ALL_V3_ENVIRONMENTS:
        return [env_id]
    raise ValueError(
        f"{env_id!r} is not a Meta-World v3 task or set; sets: {', '.join(TASK_SETS)}; "
        f"tasks: {', '.join(sorted(env_dict.ALL_V3_ENVIRONMENTS))}"
    )


class EverSucceeded(gym.Wrapper):
    """Reports ``info["success"]`` as whether the episode succeeded at any step so far.

    metaworld's ``success`` is the state of the current step (the gripper can leave the goal
    again); benchmarks count an episode as solved once it was reached. Also casts the
    float64 observation to float32, the dtype rlinf's policies take.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        box = env.observation_space
        self.observation_space = spaces.Box(
            box.low.astype(np.float32), box.high.astype(np.float32), dtype=np.float32
        )
        self.succeeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.succeeded = False
        return np.asarray(obs, np.float32), info

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.succeeded = self.succeeded or bool(info.get("success", 0.0))
        info = dict(info)
        info["success"] = self.succeeded
        return np.asarray(obs, np.float32), reward, terminated, truncated, info


class _MetaWorldEpisodeEnv(ChunkedEpisodeEnv):
    @property
    def state_unsupported(self) -> str | None:
        # The current task (goal, object positions) lives in metaworld's Task objects and
        # private attributes the generic snapshot does not know about.
        return "metaworld keeps its task in objects rlinf cannot save (resume restarts envs)"


def _make_task_env(
    config: EnvConfig, index: int, task: str, task_index: int, num_tasks: int
) -> ChunkedEpisodeEnv:
    """Env ``index`` of the vector, running ``task``; module-level (with
    ``functools.partial``) so the async backend can pickle it. ``num_tasks > 1`` appends the
    one-hot id ``task_index`` to the observation.

    metaworld seeds the env at construction, and its first goal is drawn before the first
    ``reset(seed=...)`` reaches the simulator, so each env gets its own ``config.seed + index``
    here (the same seed for all would start every env at the same goal)."""
    metaworld = _import_metaworld()
    kwargs: dict[str, Any] = dict(config.env_kwargs)
    if config.max_episode_steps is not None:
        kwargs["max_episode_steps"] = config.max_episode_steps
    if num_tasks > 1:
        kwargs.update(use_one_hot=True, env_id=task_index, num_tasks=num_tasks)
    env = metaworld.make_mt_envs(task, seed=config.seed + index, **kwargs)
    return _MetaWorldEpisodeEnv(EverSucceeded(env), config.chunk_size, config.env_id)


def make_metaworld_env(config: EnvConfig) -> GymVectorEnv:
    """A :class:`GymVectorEnv` of a Meta-World task (MT1) or task set (MT10, MT50).

    Raises:
        ImportError: metaworld is not installed (names the extra).
        ValueError: an unknown task or set, ``num_envs`` not a multiple of the set's size, or
            ``frame_stack > 1`` (no images).
    """
    _import_metaworld()
    if config.frame_stack > 1:
        raise ValueError(
            f"env {config.env_id!r}: Meta-World observations are states, there are no frames "
            f"to stack (frame_stack={config.frame_stack})"
        )
    tasks = metaworld_tasks(config.env_id)
    if config.num_envs % len(tasks):
        raise ValueError(
            f"env {config.env_id!r} has {len(tasks)} tasks: num_envs must be a multiple of "
            f"{len(tasks)} so every task gets as many envs, got {config.num_envs}"
        )
    builders = [
        functools.partial(
            _make_task_env,
            index=i,
            task=tasks[i % len(tasks)],
            task_index=i % len(tasks),
            num_tasks=len(tasks),
        )
        for i in range(config.num_envs)
    ]
    return GymVectorEnv(config, make_singles=builders)
