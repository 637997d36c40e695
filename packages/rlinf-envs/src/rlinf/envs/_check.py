"""Checks of an :class:`EnvConfig` that a driver makes before any worker starts: the kind is
registered, its extra is installed, and the env id exists in that kind's registry
(gymnasium's, ManiSkill's). Building the env in a worker would find the same mistakes, but
only after Ray and the workers started, and as a simulator's traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ._config import EnvConfig
from ._registry import ENVS

__all__ = [
    "ENV_CHECKS",
    "EnvCheckError",
    "check_env",
    "check_gym_id",
    "check_maniskill_id",
    "check_metaworld_id",
    "image_obs_keys",
]


class EnvCheckError(ValueError):
    """An env config that cannot be built; the message names the key (``env.env_id``,
    ``env.kind``) and the cause."""


def check_env(config: EnvConfig, *, prefix: str = "env.") -> None:
    """Check ``config`` against the registries, importing no more than the kind needs.

    ``config.kind`` must be in :data:`~rlinf.envs.ENVS`; the kind's check in
    :data:`ENV_CHECKS` (if it has one) then checks the id and the extra. ``prefix`` is the
    config section's key in messages.

    Raises:
        EnvCheckError: one line naming ``<prefix>kind`` or ``<prefix>env_id`` and the cause.
    """
    if config.kind not in ENVS:
        raise EnvCheckError(
            f"{prefix}kind: unknown env kind {config.kind!r}; valid: {', '.join(ENVS)}"
        )
    check = ENV_CHECKS.get(config.kind)
    if check is not None:
        check(config, prefix)


def _needs(module: str, extra: str, config: EnvConfig, prefix: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise EnvCheckError(
            f"{prefix}kind: {config.kind!r} needs the {extra!r} extra: "
            f"pip install 'rlinf-envs[{extra}]' ({err})"
        ) from None


def check_gym_id(config: EnvConfig, prefix: str = "env.") -> None:
    """``config.env_id`` is in gymnasium's registry (``"module:Id-v0"`` imports the module
    first, as ``gymnasium.make`` does)."""
    import importlib

    import gymnasium as gym

    # gym.spec does not import the module of a "module:Id" id (gym.make does), nor
    # parse such an id: import it here, then look the id up.
    module, _, env_id = config.env_id.rpartition(":")
    try:
        if module:
            importlib.import_module(module)
        gym.spec(env_id)
    except (gym.error.Error, ModuleNotFoundError) as err:
        # gymnasium's own message suggests close names ("Did you mean: ...").
        raise EnvCheckError(
            f"{prefix}env_id: {config.env_id!r} is not a registered gymnasium env ({err})"
        ) from None


def _check_mujoco(config: EnvConfig, prefix: str = "env.") -> None:
    # gymnasium registers the MuJoCo ids even without the simulator installed.
    _needs("mujoco", "mujoco", config, prefix)
    check_gym_id(config, prefix)


def check_maniskill_id(config: EnvConfig, prefix: str = "env.") -> None:
    """``config.env_id`` is a ManiSkill task, and the task's settings in ``env_kwargs``
    (obs_mode, sim_backend, ...) are ones the adapter supports on this machine."""
    _needs("mani_skill.envs", "maniskill", config, prefix)
    from ._maniskill_setup import make_kwargs

    try:
        kwargs = make_kwargs(config)
    except ValueError as err:
        raise EnvCheckError(f"{prefix}env_id: {err}") from None
    from ._maniskill_setup import is_gpu_backend

    if config.frame_stack > 1 and is_gpu_backend(kwargs["sim_backend"]):
        raise EnvCheckError(
            f"{prefix}frame_stack: {config.frame_stack} is not supported by ManiSkill's batched "
            f"GPU simulator (sim_backend {kwargs['sim_backend']!r}); use physx_cpu"
        )


def image_obs_keys(config: EnvConfig) -> tuple[str, ...]:
    """The image observation keys (``[H, W, C]`` uint8) ``config`` declares, known without
    building the env: ``("rgb",)`` for ManiSkill with ``obs_mode: rgb``, else none. (A
    gymnasium id whose raw observations are images is only known once built; the policy
    then refuses it as it is constructed.) Lets a driver refuse an MLP policy for an image
    env before any worker starts."""
    if config.kind == "maniskill" and config.env_kwargs.get("obs_mode") == "rgb":
        return ("rgb",)
    return ()


def check_metaworld_id(config: EnvConfig, prefix: str = "env.") -> None:
    """``config.env_id`` is a Meta-World v3 task or a supported set, and ``num_envs`` fits
    the set's size."""
    _needs("metaworld", "metaworld", config, prefix)
    if config.frame_stack > 1:
        raise EnvCheckError(
            f"{prefix}frame_stack: Meta-World observations are states, there are no frames "
            f"to stack (got {config.frame_stack})"
        )
    from ._metaworld import metaworld_tasks

    try:
        tasks = metaworld_tasks(config.env_id)
    except ValueError as err:
        raise EnvCheckError(f"{prefix}env_id: {err}") from None
    if config.num_envs % len(tasks):
        raise EnvCheckError(
            f"{prefix}num_envs: {config.env_id!r} has {len(tasks)} tasks, so num_envs must be "
            f"a multiple of {len(tasks)}; got {config.num_envs}"
        )


ENV_CHECKS: dict[str, Callable[[EnvConfig, str], None]] = {
    "gym": check_gym_id,
    "mujoco": _check_mujoco,
    "maniskill": check_maniskill_id,
    "metaworld": check_metaworld_id,
}
"""Env kind -> check of a config of that kind (``(config, key prefix) -> None``, raising
:class:`EnvCheckError`). A kind registered in :data:`~rlinf.envs.ENVS` without an entry
here is checked only for being registered; add its check here to have drivers run it."""
