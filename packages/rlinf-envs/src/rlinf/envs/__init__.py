"""rlinf.envs: vectorized environments for rlinf.

* :class:`VectorEnv`: the interface (batched reset/step with auto-reset, final observations
  for truncation bootstrapping, per-episode stats, action chunks; dict observations).
* :class:`GymVectorEnv`: any gymnasium env id, in-process (``"sync"``) or one process per
  env (``"async"``).
* :data:`ENVS` / :func:`make_env`: adapters by name (``"gym"``, ``"mujoco"``), imported
  lazily so optional simulators load only when chosen.
* :func:`check_env` (:data:`ENV_CHECKS`, :class:`EnvCheckError`): the checks a driver
  makes before any worker starts: the kind is registered, its extra installed, the env id
  in the kind's registry (gymnasium's, ManiSkill's).
* :class:`EnvWorker` (``rlinf.envs.EnvWorker``, imported on first use so that plain env
  users never load Ray): a share of the envs in pipeline stages, exchanging plain-dict
  requests and replies with rollout workers over one ``rlinf.channel.DirectLink`` per
  stage, and returning a ``rlinf.core.Trajectory`` (or its object-store reference).

Importing the package registers the adapters and does nothing else.
"""

from ._base import StepInfo, StepResult, VectorEnv
from ._check import (
    ENV_CHECKS,
    EnvCheckError,
    check_env,
    check_gym_id,
    check_maniskill_id,
    check_metaworld_id,
    image_obs_keys,
)
from ._config import EnvConfig
from ._frames import FrameStack
from ._gym import GymVectorEnv
from ._registry import ENVS, make_env
from ._spec import ActionSpec, ArraySpec, Obs

__all__ = [
    "ENVS",
    "ENV_CHECKS",
    "ActionSpec",
    "ArraySpec",
    "EnvCheckError",
    "EnvConfig",
    "EnvWorker",
    "FrameStack",
    "GymVectorEnv",
    "Obs",
    "StepInfo",
    "StepResult",
    "VectorEnv",
    "check_env",
    "check_gym_id",
    "check_maniskill_id",
    "check_metaworld_id",
    "image_obs_keys",
    "make_env",
    "stage_link_name",
]


def __getattr__(name: str) -> object:
    # The worker pulls in Ray via rlinf.core; load it lazily (PEP 562).
    if name in ("EnvWorker", "stage_link_name"):
        from . import _worker

        return getattr(_worker, name)
    raise AttributeError(f"module 'rlinf.envs' has no attribute {name!r}")
