"""ManiSkill3 tasks (PushCube-v1, PickCube-v1, ...) as vector envs, behind the ``maniskill`` extra.

Which simulator runs is chosen by ``config.env_kwargs["sim_backend"]``:

* ``"physx_cpu"`` (default, alias ``"cpu"``): ManiSkill's CPU backend simulates one env per
  env object, so ``N`` envs are ``N`` single ManiSkill envs inside
  :class:`~rlinf.envs.GymVectorEnv`: one process each with ``backend="async"`` (the parallel
  path), all in this process with ``backend="sync"``. (ManiSkill 3.0.1 has no CPU vector
  env of its own: it refuses ``num_envs > 1`` on the CPU and points to gymnasium's
  ``AsyncVectorEnv``, which ``"async"`` is.) One PushCube-v1 env steps in about 1 ms, so
  processes pay off only with spare cores: on a 2-core machine ``"sync"`` ran ~1000 env
  steps/s for N = 1, 4, 8 and ``"async"`` 815 (N=4) and 609 (N=8).
* ``"physx_cuda"`` (aliases ``"gpu"``, ``"cuda"``; ``":<n>"`` picks a device): one batched GPU
  simulation of all ``N`` envs in this process, :class:`ManiSkillBatchedVectorEnv`; needs CUDA.
* ``"auto"``: ``"physx_cuda"`` where the process that builds the envs sees CUDA (and
  ``backend="sync"``), else ``"physx_cpu"``; what presets use to run anywhere.

Every backend needs a Vulkan device, even for state observations (SAPIEN builds render materials
while it loads a scene); on a machine without a GPU that is Mesa's lavapipe, see the README.

The other ``env_kwargs`` go to ``gymnasium.make`` (e.g. ``reward_mode``, ``sim_config``,
``sensor_configs=dict(width=64, height=64)``). The adapter's defaults:

=================== =================================================================
``obs_mode``        ``"state"``: ``{"state": [N, D] float32}``; ``"rgb"``:
                    ``{"state": [N, D] float32, "rgb": [N, H, W, 3 * cameras] uint8}``
                    (``state`` then holds the robot's proprioception and task extras)
``control_mode``    :data:`DEFAULT_CONTROL_MODE` (``"pd_joint_delta_pos"``)
``render_backend``  ``"gpu"`` where CUDA is visible, else ``"cpu"`` (a CPU Vulkan device)
``reward_mode``     ManiSkill's own default (``"normalized_dense"``: rewards in [0, 1])
=================== =================================================================

``env_kwargs["ignore_terminations"]`` (the adapter's own, default False) runs every episode
to its time limit instead of ending it on success; see
:func:`~rlinf.envs._maniskill_setup.ignores_terminations` for why.

The episode limit is ``config.max_episode_steps`` (else the task's, 50 for PushCube-v1 and
PickCube-v1); success is ManiSkill's ``info["success"]`` at an episode's last step. ManiSkill
terminates an episode on success, so a successful episode is ``terminated`` and a timed-out
one ``truncated``.

This module only chooses the path; :mod:`._maniskill_setup` checks ``env_kwargs`` and calls
``gymnasium.make``, :mod:`._maniskill_batched` holds the batched (GPU) vector env.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from ._base import VectorEnv
from ._config import EnvConfig
from ._frames import FrameStack
from ._gym import GymVectorEnv
from ._maniskill_batched import ManiSkillBatchedVectorEnv
from ._maniskill_setup import (
    DEFAULT_CONTROL_MODE,
    OBS_MODES,
    flatten_rgb,
    gym_make,
    ignores_terminations,
    import_maniskill,
    is_gpu_backend,
    make_kwargs,
)
from ._single import ChunkedEpisodeEnv

__all__ = [
    "DEFAULT_CONTROL_MODE",
    "OBS_MODES",
    "ManiSkillBatchedVectorEnv",
    "make_maniskill_env",
    "make_maniskill_single_env",
]


def make_maniskill_single_env(config: EnvConfig) -> ChunkedEpisodeEnv:
    """One CPU-simulated ManiSkill env with numpy, unbatched outputs, wrapped for chunks.

    Module-level so :class:`GymVectorEnv`'s async backend can pickle it into its workers.
    """
    import_maniskill(config.env_id)
    from mani_skill.utils.wrappers.gymnasium import CPUGymWrapper

    kwargs = make_kwargs(config)
    env = gym_make(config.env_id, num_envs=1, **kwargs)
    if kwargs["obs_mode"] == "rgb":
        env = flatten_rgb(env)
    # Turns ManiSkill's batched torch tensors ([1, ...]) into plain numpy values, and the
    # info's success flag into the bool that ChunkedEpisodeEnv reads.
    env = CPUGymWrapper(env)
    if ignores_terminations(config):
        env = _NoTerminations(env)
    if config.frame_stack > 1:
        env = FrameStack(env, config.frame_stack)
    return ChunkedEpisodeEnv(env, config.chunk_size, config.env_id)


class _NoTerminations(gym.Wrapper):
    """Never ``terminated``: episodes end at the time limit only (``ignore_terminations``)."""

    def step(self, action: Any) -> tuple[Any, Any, bool, Any, dict[str, Any]]:
        obs, reward, _, truncated, info = self.env.step(action)
        return obs, reward, False, truncated, info


def make_maniskill_env(config: EnvConfig) -> VectorEnv:
    """The vector env of a ManiSkill task: CPU (:class:`GymVectorEnv` of single envs) or GPU
    (:class:`ManiSkillBatchedVectorEnv`) by ``config.env_kwargs["sim_backend"]``.

    Everything that can be checked is checked here, before any worker process starts.
    """
    import_maniskill(config.env_id)
    kwargs = make_kwargs(config)
    if is_gpu_backend(kwargs["sim_backend"]):
        if config.frame_stack > 1:
            raise ValueError(
                f"env {config.env_id!r}: frame_stack={config.frame_stack} is not supported by "
                "the batched GPU simulator (sim_backend physx_cuda); use the CPU one"
            )
        return ManiSkillBatchedVectorEnv(config)
    if config.backend == "async" and config.start_method in (None, "forkserver"):
        _preload_in_forkserver()
    return GymVectorEnv(config, make_single=make_maniskill_single_env)


def _preload_in_forkserver() -> None:
    """Have the forkserver import ManiSkill once, so each env process forks with it loaded.

    Importing torch, SAPIEN and ManiSkill costs about 10 CPU-seconds; paid in every one of
    ``N`` fresh env processes it dominated start-up (8 envs on 2 cores: 262 s, preloaded:
    28 s). Only an import happens in the forkserver (no simulator, no Vulkan device), so
    forking from it is safe. It takes effect only if this process has not started its
    forkserver yet; otherwise nothing changes but the start-up time.
    """
    from multiprocessing import forkserver

    # "__main__" is the forkserver's default preload; keep it.
    forkserver.set_forkserver_preload(["__main__", __name__, "mani_skill.envs"])
