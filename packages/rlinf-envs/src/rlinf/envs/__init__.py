"""rlinf.envs: vectorized environments for rlinf.

* :class:`VectorEnv`: the interface (batched reset/step with auto-reset, final observations
  for truncation bootstrapping, per-episode stats, action chunks; dict observations).
* :class:`GymVectorEnv`: any gymnasium env id, in-process (``"sync"``) or one process per
  env (``"async"``).
* :data:`ENVS` / :func:`make_env`: adapters by name (``"gym"``, ``"mujoco"``), imported
  lazily so optional simulators load only when chosen.

Importing the package registers the adapters and does nothing else.
"""

from ._base import StepInfo, StepResult, VectorEnv
from ._config import EnvConfig
from ._gym import GymVectorEnv
from ._registry import ENVS, Registry, make_env
from ._spec import ActionSpec, ArraySpec, Obs

__all__ = [
    "ENVS",
    "ActionSpec",
    "ArraySpec",
    "EnvConfig",
    "GymVectorEnv",
    "Obs",
    "Registry",
    "StepInfo",
    "StepResult",
    "VectorEnv",
    "make_env",
]
