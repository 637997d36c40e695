"""Env adapters by name, resolved lazily so optional simulators are imported only when used."""

from __future__ import annotations

from collections.abc import Callable

from rlinf.core import Registry

from ._base import VectorEnv
from ._config import EnvConfig

__all__ = ["ENVS", "make_env"]

ENVS: Registry[Callable[[EnvConfig], VectorEnv]] = Registry("env")
"""Env adapters: ``"gym"`` (any gymnasium id), ``"mujoco"`` (gymnasium MuJoCo tasks) and
``"maniskill"`` (ManiSkill3 tasks), ``"metaworld"`` (Meta-World MT1 tasks and MT10 / MT50). A :class:`rlinf.core.Registry`: ``"module:attr"`` entries
are imported on first use, and a missing optional simulator names the extra to install."""
ENVS.register("gym", "rlinf.envs._gym:GymVectorEnv")
ENVS.register(
    "mujoco",
    "rlinf.envs._mujoco:make_mujoco_env",
    install_hint="pip install 'rlinf-envs[mujoco]'",
)
ENVS.register(
    "maniskill",
    "rlinf.envs._maniskill:make_maniskill_env",
    install_hint="pip install 'rlinf-envs[maniskill]'",
)
ENVS.register(
    "metaworld",
    "rlinf.envs._metaworld:make_metaworld_env",
    install_hint="pip install 'rlinf-envs[metaworld]'",
)


def make_env(config: EnvConfig) -> VectorEnv:
    """Build the vector env that ``config.kind`` names in :data:`ENVS`.

    Raises:
        rlinf.core.RegistryError: an unknown ``kind`` (the message lists the valid ones) or
            an adapter whose optional simulator is not installed (it names the extra).
    """
    return ENVS.get(config.kind)(config)
