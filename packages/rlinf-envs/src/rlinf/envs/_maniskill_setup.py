"""Turning an :class:`EnvConfig` into a ManiSkill ``gymnasium.make`` call: checks and defaults.

Shared by both ManiSkill paths (per-env CPU simulation and the batched GPU simulation), so
the two accept exactly the same ``env_kwargs`` and fail with the same messages.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from ._config import EnvConfig

__all__ = [
    "DEFAULT_CONTROL_MODE",
    "OBS_MODES",
    "flatten_rgb",
    "gym_make",
    "ignores_terminations",
    "import_maniskill",
    "is_gpu_backend",
    "make_kwargs",
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
_AUTO = "auto"
# EnvConfig fields that ManiSkill would also accept as gymnasium.make kwargs: one source only.
_OWNED_KEYS = ("num_envs", "max_episode_steps")
# env_kwargs the adapter itself reads; they never reach gymnasium.make.
_ADAPTER_KEYS = ("ignore_terminations",)


def import_maniskill(env_id: str) -> Any:
    """Import ``mani_skill.envs`` (which registers the tasks) or name the extra to install."""
    try:
        return importlib.import_module("mani_skill.envs")
    except ImportError as err:
        raise ImportError(
            f"env {env_id!r} needs ManiSkill: pip install 'rlinf-envs[maniskill]' ({err})"
        ) from err


def is_gpu_backend(sim_backend: str) -> bool:
    """True for ManiSkill's GPU simulator names, optionally with a device: ``"physx_cuda:1"``."""
    name, colon, index = str(sim_backend).partition(":")
    return name in _GPU_BACKENDS and (not colon or index.isdigit())


def ignores_terminations(config: EnvConfig) -> bool:
    """``env_kwargs["ignore_terminations"]`` (default False): run every episode to its time
    limit instead of ending it on success.

    Why one would: ManiSkill ends an episode on success, after which the critic bootstraps
    nothing, while dense rewards near (but short of) the goal keep paying every step; a
    return-maximizing policy can then learn to hover next to the goal instead of finishing.
    Without terminations, staying in the success state earns the highest reward every step,
    and the reported success is success *at the end* of the episode (a stricter measure).

    Raises:
        ValueError: the value is not a bool.
    """
    value = dict(config.env_kwargs).get("ignore_terminations", False)
    if not isinstance(value, bool):
        raise ValueError(
            f"env {config.env_id!r}: ignore_terminations must be true or false, got {value!r}"
        )
    return value


def make_kwargs(config: EnvConfig) -> dict[str, Any]:
    """``gymnasium.make`` kwargs for ``config`` (without ``num_envs``), validated.

    ``sim_backend="auto"`` becomes ``"physx_cuda"`` where this process sees CUDA and
    ``config.backend`` is ``"sync"`` (the GPU simulator batches all envs in one process),
    else ``"physx_cpu"``; the returned kwargs always name the concrete backend.

    Raises:
        ValueError: unknown task, unsupported ``obs_mode`` or ``sim_backend``, a key that
            belongs in :class:`EnvConfig`, or the GPU simulator with ``backend="async"``.
    """
    env_id = config.env_id
    ignores_terminations(config)  # validates it
    kwargs = {k: v for k, v in config.env_kwargs.items() if k not in _ADAPTER_KEYS}
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
    if sim_backend not in (*_CPU_BACKENDS, _AUTO) and not is_gpu_backend(sim_backend):
        raise ValueError(
            f"env {env_id!r}: sim_backend must be 'physx_cpu', 'physx_cuda' or 'auto', "
            f"got {sim_backend!r}"
        )
    import torch

    has_cuda = torch.cuda.is_available()
    if sim_backend == _AUTO:
        sim_backend = "physx_cuda" if has_cuda and config.backend == "sync" else "physx_cpu"
        kwargs["sim_backend"] = sim_backend
    if is_gpu_backend(sim_backend):
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


def gym_make(env_id: str, **kwargs: Any) -> gym.Env:
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


def flatten_rgb(env: gym.Env) -> gym.Env:
    """``{"state", "rgb"}`` observations from ManiSkill's nested rgb-mode dict (batched)."""
    from mani_skill.utils.wrappers.flatten import FlattenRGBDObservationWrapper

    return FlattenRGBDObservationWrapper(env, rgb=True, depth=False, state=True)
