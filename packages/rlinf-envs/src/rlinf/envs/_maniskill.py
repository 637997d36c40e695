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

Both need a Vulkan device, even for state observations (SAPIEN builds render materials
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

The episode limit is ``config.max_episode_steps`` (else the task's, 50 for PushCube-v1 and
PickCube-v1); success is ManiSkill's ``info["success"]`` at an episode's last step. ManiSkill
terminates an episode on success, so a successful episode is ``terminated`` and a timed-out
one ``truncated``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ._actions import check_actions
from ._base import StepInfo, StepResult, VectorEnv
from ._config import EnvConfig
from ._gym import GymVectorEnv
from ._single import ChunkedEpisodeEnv, action_spec_of
from ._spec import ActionSpec, ArraySpec, Obs

__all__ = [
    "DEFAULT_CONTROL_MODE",
    "OBS_MODES",
    "ManiSkillBatchedVectorEnv",
    "make_maniskill_env",
    "make_maniskill_single_env",
]

DEFAULT_CONTROL_MODE = "pd_joint_delta_pos"
"""Control mode unless ``env_kwargs`` names one. Joint-delta position control is the mode
ManiSkill's reference PPO baselines use for PushCube-v1 and PickCube-v1, and on the CPU
simulator it is about 2x cheaper per step than ``"pd_ee_delta_pos"``, which solves inverse
kinematics every step (one env, random actions: PushCube-v1 1080 vs 488 steps/s, PickCube-v1
696 vs 376). ``"pd_ee_delta_pos"`` has a smaller, 4-d action space (end-effector xyz and
gripper instead of 7 joints and gripper); pass it in ``env_kwargs`` to use it."""

OBS_MODES = ("state", "rgb")
"""Observation modes the adapter supports (``env_kwargs["obs_mode"]``)."""

_CPU_BACKENDS = ("physx_cpu", "cpu")
_GPU_BACKENDS = ("physx_cuda", "gpu", "cuda")
# EnvConfig fields that ManiSkill would also accept as gymnasium.make kwargs: one source only.
_OWNED_KEYS = ("num_envs", "max_episode_steps")


def _import_maniskill(env_id: str) -> Any:
    """Import ``mani_skill.envs`` (which registers the tasks) or name the extra to install."""
    try:
        return importlib.import_module("mani_skill.envs")
    except ImportError as err:
        raise ImportError(
            f"env {env_id!r} needs ManiSkill: pip install 'rlinf-envs[maniskill]' ({err})"
        ) from err


def _is_gpu_backend(sim_backend: str) -> bool:
    """True for ManiSkill's GPU simulator names, optionally with a device: ``"physx_cuda:1"``."""
    name, colon, index = str(sim_backend).partition(":")
    return name in _GPU_BACKENDS and (not colon or index.isdigit())


def _make_kwargs(config: EnvConfig) -> dict[str, Any]:
    """``gymnasium.make`` kwargs for ``config`` (without ``num_envs``), validated.

    Raises:
        ValueError: unknown task, unsupported ``obs_mode`` or ``sim_backend``, a key that
            belongs in :class:`EnvConfig`, or the GPU simulator with ``backend="async"``.
    """
    env_id = config.env_id
    kwargs = dict(config.env_kwargs)
    for key in _OWNED_KEYS:
        if key in kwargs:
            raise ValueError(f"env {env_id!r}: set {key!r} through EnvConfig.{key}, not env_kwargs")
    from mani_skill.utils.registration import REGISTERED_ENVS

    if env_id not in REGISTERED_ENVS:
        some = ", ".join(sorted(REGISTERED_ENVS)[:8])
        raise ValueError(f"env {env_id!r} is not a ManiSkill task (e.g. {some}, ...)")
    kwargs.setdefault("obs_mode", "state")
    if kwargs["obs_mode"] not in OBS_MODES:
        raise ValueError(
            f"env {env_id!r}: obs_mode must be one of {OBS_MODES}, got {kwargs['obs_mode']!r}"
        )
    kwargs.setdefault("control_mode", DEFAULT_CONTROL_MODE)
    sim_backend = kwargs.setdefault("sim_backend", "physx_cpu")
    if sim_backend not in _CPU_BACKENDS and not _is_gpu_backend(sim_backend):
        raise ValueError(
            f"env {env_id!r}: sim_backend must be 'physx_cpu' or 'physx_cuda', got {sim_backend!r}"
        )
    import torch

    has_cuda = torch.cuda.is_available()
    if _is_gpu_backend(sim_backend):
        if not has_cuda:
            raise ValueError(f"env {env_id!r}: sim_backend {sim_backend!r} needs CUDA; none found")
        if config.backend != "sync":
            raise ValueError(
                f"env {env_id!r}: the GPU simulator batches all envs in one process; "
                "use backend='sync' (backend='async' is for sim_backend='physx_cpu')"
            )
    else:
        # Without it an unseeded reset draws the new episode from the process-global torch
        # RNG, so every worker process would replay the same episode sequence after its first
        # episode; with it each env continues the stream its reset seed started.
        kwargs.setdefault("enhanced_determinism", True)
    # ManiSkill's own default asks for a CUDA render device and only warns when it falls back.
    kwargs.setdefault("render_backend", "gpu" if has_cuda else "cpu")
    if config.max_episode_steps is not None:
        kwargs["max_episode_steps"] = config.max_episode_steps
    return kwargs


def _gym_make(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` of a ManiSkill task; a missing Vulkan device gets a hint."""
    try:
        return gym.make(env_id, **kwargs)
    except RuntimeError as err:
        text = str(err).lower()
        if "render" in text or "vulkan" in text or "vk::" in text:
            raise RuntimeError(
                f"env {env_id!r}: SAPIEN has no usable Vulkan device ({err}). ManiSkill needs "
                "one even for state observations; on a machine without a GPU install Mesa's "
                "lavapipe (Debian bookworm: mesa-vulkan-drivers from bookworm-backports, see "
                "rlinf's README)"
            ) from err
        raise


def _flatten_rgb(env: gym.Env) -> gym.Env:
    """``{"state", "rgb"}`` observations from ManiSkill's nested rgb-mode dict (batched)."""
    from mani_skill.utils.wrappers.flatten import FlattenRGBDObservationWrapper

    return FlattenRGBDObservationWrapper(env, rgb=True, depth=False, state=True)


def make_maniskill_single_env(config: EnvConfig) -> ChunkedEpisodeEnv:
    """One CPU-simulated ManiSkill env with numpy, unbatched outputs, wrapped for chunks.

    Module-level so :class:`GymVectorEnv`'s async backend can pickle it into its workers.
    """
    _import_maniskill(config.env_id)
    from mani_skill.utils.wrappers.gymnasium import CPUGymWrapper

    kwargs = _make_kwargs(config)
    env = _gym_make(config.env_id, num_envs=1, **kwargs)
    if kwargs["obs_mode"] == "rgb":
        env = _flatten_rgb(env)
    # Turns ManiSkill's batched torch tensors ([1, ...]) into plain numpy values, and the
    # info's success flag into the bool that ChunkedEpisodeEnv reads.
    env = CPUGymWrapper(env)
    return ChunkedEpisodeEnv(env, config.chunk_size, config.env_id)


def make_maniskill_env(config: EnvConfig) -> VectorEnv:
    """The vector env of a ManiSkill task: CPU (:class:`GymVectorEnv` of single envs) or GPU
    (:class:`ManiSkillBatchedVectorEnv`) by ``config.env_kwargs["sim_backend"]``.

    Everything that can be checked is checked here, before any worker process starts.
    """
    _import_maniskill(config.env_id)
    kwargs = _make_kwargs(config)
    if _is_gpu_backend(kwargs["sim_backend"]):
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


class ManiSkillBatchedVectorEnv:
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
        _import_maniskill(config.env_id)
        import torch

        self._torch = torch
        self.config = config
        self.env_id = config.env_id
        self.num_envs = config.num_envs
        self.chunk_size = config.chunk_size
        kwargs = _make_kwargs(config)
        env = _gym_make(config.env_id, num_envs=config.num_envs, **kwargs)
        if kwargs["obs_mode"] == "rgb":
            env = _flatten_rgb(env)
        self._env = env
        base = env.unwrapped
        self._device = torch.device(base.device)
        self.observation_spec = _spec_of(base.single_observation_space, config.env_id)
        self.action_spec: ActionSpec = action_spec_of(base.single_action_space, config.env_id)
        self._rng = np.random.default_rng(config.seed)
        self._reset_rng = np.random.default_rng([config.seed, 1])
        self._return = np.zeros(self.num_envs, np.float64)
        self._length = np.zeros(self.num_envs, np.int64)
        self._reset_once = False
        self._closed = False

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
        self._check_open()
        if seed is None and not self._reset_once:
            seed = self.config.seed
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

    def step(self, actions: Any) -> StepResult:
        """One action chunk per env; see :class:`~rlinf.envs.VectorEnv` for the semantics.

        Args:
            actions: ``[N, K, *action_shape]`` (``[N, *action_shape]`` when ``K == 1``).
        """
        self._check_open()
        if not self._reset_once:
            raise RuntimeError(f"env {self.env_id!r}: call reset() before step()")
        acts = check_actions(
            actions,
            self.action_spec,
            num_envs=self.num_envs,
            chunk_size=self.chunk_size,
            env_id=self.env_id,
            clip=self.config.clip_actions,
        )
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

    def sample_actions(self) -> np.ndarray:
        """Uniformly random valid actions ``[N, K, *action_shape]`` (seeded by ``config.seed``)."""
        spec = self.action_spec
        shape = (self.num_envs, self.chunk_size, *spec.shape)
        return self._rng.uniform(spec.low, spec.high, shape).astype(np.float32)

    def close(self) -> None:
        """Release the simulation; idempotent."""
        if not self._closed:
            self._closed = True
            self._env.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"env {self.env_id!r} is closed")

    def __enter__(self) -> ManiSkillBatchedVectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.config
        return f"ManiSkillBatchedVectorEnv({c.env_id!r}, num_envs={c.num_envs}, chunk_size={c.chunk_size})"
