"""MuJoCo tasks (HalfCheetah-v5, Hopper-v5, ...) through gymnasium, behind the ``mujoco`` extra."""

from __future__ import annotations

import importlib

from ._config import EnvConfig
from ._gym import GymVectorEnv

__all__ = ["make_mujoco_env"]


def make_mujoco_env(config: EnvConfig) -> GymVectorEnv:
    """A :class:`GymVectorEnv` of a MuJoCo task.

    gymnasium registers the MuJoCo ids even without the simulator and fails only at the first
    ``make`` with a message about ``gymnasium[mujoco]``; importing here first names the rlinf
    extra instead, before any worker process starts (and catches a broken install too).
    """
    try:
        importlib.import_module("mujoco")
    except ImportError as err:
        raise ImportError(
            f"env {config.env_id!r} needs MuJoCo: pip install 'rlinf-envs[mujoco]' ({err})"
        ) from err
    return GymVectorEnv(config)
