"""An env worker's state for exact resume: its stages' envs, held observations and
in-process policy RNG (the :class:`~rlinf.envs.EnvWorker` methods of that name call these)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import VectorEnv
from ._spec import Obs

__all__ = ["restore_worker_state", "stage_layout", "worker_state"]


def stage_layout(envs: Sequence[VectorEnv], seeds: Sequence[int]) -> dict[str, Any]:
    """What a saved state must match to continue these envs: env id, envs per stage,
    chunk size and the stages' seeds (which also fix the rank and the stage split)."""
    return {
        "env_id": envs[0].env_id,
        "num_envs": envs[0].num_envs,
        "chunk_size": envs[0].chunk_size,
        "seeds": list(seeds),
    }


def worker_state(
    envs: Sequence[VectorEnv], seeds: Sequence[int], obs: Sequence[Obs | None], responder: Any
) -> dict[str, Any] | None:
    """``{"layout", "stages": [env state], "obs": [per stage: obs | None], "responder":
    state | None}``, or None when some stage's env cannot be captured exactly."""
    stages = []
    for env in envs:
        unsupported = getattr(env, "state_unsupported", None)
        if unsupported is None or unsupported() is not None:
            return None
        stages.append(env.get_state())  # type: ignore[attr-defined]  # has state_unsupported
    get = getattr(responder, "get_state", None)
    return {
        "layout": stage_layout(envs, seeds),
        "stages": stages,
        "obs": [None if o is None else {k: np.array(v) for k, v in o.items()} for o in obs],
        "responder": get() if get is not None else None,
    }


def restore_worker_state(
    where: str,
    envs: Sequence[VectorEnv],
    seeds: Sequence[int],
    responder: Any,
    state: dict[str, Any],
) -> list[Obs | None]:
    """Restore :func:`worker_state` into ``envs`` (and ``responder``); returns the held
    observations.

    Raises:
        ValueError: ``state`` was saved for another layout (:func:`stage_layout`).
    """
    layout = stage_layout(envs, seeds)
    if state["layout"] != layout:
        raise ValueError(
            f"{where}: saved env state is of {state['layout']}, this worker runs {layout}"
        )
    for env, saved in zip(envs, state["stages"], strict=True):
        env.set_state(saved)  # type: ignore[attr-defined]  # saved only where supported
    setter = getattr(responder, "set_state", None)
    if state["responder"] is not None and setter is not None:
        setter(state["responder"])
    return [None if o is None else dict(o) for o in state["obs"]]
