"""rlinf.envs: vectorized environments for rlinf.

* :class:`VectorEnv`: the interface (batched reset/step with auto-reset, final observations
  for truncation bootstrapping, per-episode stats, action chunks; dict observations).
* :class:`GymVectorEnv`: any gymnasium env id, in-process (``"sync"``) or one process per
  env (``"async"``).
* :data:`ENVS` / :func:`make_env`: adapters by name (``"gym"``, ``"mujoco"``), imported
  lazily so optional simulators load only when chosen.
* :class:`EnvWorker` (``rlinf.envs.EnvWorker``, imported on first use so that plain env
  users never load Ray): a share of the envs in pipeline stages, exchanging plain-dict
  requests and replies with rollout workers over one ``rlinf.channel.DirectLink`` per
  stage, and returning a ``rlinf.core.Trajectory`` (or its object-store reference).

Importing the package registers the adapters and does nothing else.
"""

from ._base import StepInfo, StepResult, VectorEnv
from ._config import EnvConfig
from ._gym import GymVectorEnv
from ._registry import ENVS, make_env
from ._spec import ActionSpec, ArraySpec, Obs

__all__ = [
    "ENVS",
    "ActionSpec",
    "ArraySpec",
    "EnvConfig",
    "EnvWorker",
    "GymVectorEnv",
    "Obs",
    "StepInfo",
    "StepResult",
    "VectorEnv",
    "make_env",
    "stage_link_name",
]


def __getattr__(name: str) -> object:
    # The worker pulls in Ray via rlinf.core; load it lazily (PEP 562).
    if name in ("EnvWorker", "stage_link_name"):
        from . import _worker

        return getattr(_worker, name)
    raise AttributeError(f"module 'rlinf.envs' has no attribute {name!r}")
