"""What of an :class:`EmbodiedFlow` besides the actor a checkpoint holds, for exact resume.

The actor's own state (weights, optimizer, its torch RNG) is the actor's
``checkpoint_state``. The rest of a run's future is decided by:

* each env worker's envs and the observations it holds (``EnvWorker.get_state``: None
  when an env kind cannot be captured exactly), and, with ``policy_in_env``, its
  in-process policy's sampling RNG;
* each rollout worker's sampling RNG;
* with ``overlap_update``, the rollout already collected for the next update. Its
  trajectories live in the object store under references that die with the Ray session,
  so the checkpoint holds their values (fetched by the driver at checkpoint time only) and
  a resume puts them back into the store.

:func:`restore_flow_state` puts all of it back, or, where some env worker's state is
missing or does not fit (another env layout after overrides), starts fresh episodes as
before exact resume existed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import rlinf.channel as object_store

from ._collect import Collected
from ._flow import EmbodiedFlow

__all__ = ["flow_state", "restore_flow_state"]


def flow_state(flow: EmbodiedFlow) -> dict[str, Any]:
    """The flow's state outside the actor: ``{"envs": [per env rank: state | None],
    "rollout": [per rollout rank] | None, "prefetched": collected rollout | None}``."""
    timeout = flow.config.runner.timeout_s
    rollout = None
    if flow.rollout is not None:
        rollout = flow.rollout.call("get_state").wait(timeout)
    return {
        "envs": flow.env.call("get_state").wait(timeout),
        "rollout": rollout,
        "prefetched": _fetched(flow._prefetched),
    }


def _fetched(collected: Collected | None) -> dict[str, Any] | None:
    """``collected`` with every object reference in its results replaced by its value,
    and which keys those were (references cannot outlive their Ray session)."""
    if collected is None:
        return None
    stored = [[k for k, v in res.items() if object_store.is_ref(v)] for res in collected.results]
    results = [
        {k: object_store.get(v) if k in keys else v for k, v in res.items()}
        for res, keys in zip(collected.results, stored, strict=True)
    ]
    return {"collected": dataclasses.replace(collected, results=results), "stored": stored}


def _stored(saved: dict[str, Any] | None) -> Collected | None:
    """:func:`_fetched` undone: the fetched values go back into the object store."""
    if saved is None:
        return None
    collected = saved["collected"]
    results = [
        {k: object_store.put(v) if k in keys else v for k, v in res.items()}
        for res, keys in zip(collected.results, saved["stored"], strict=True)
    ]
    return dataclasses.replace(collected, results=results)


def restore_flow_state(flow: EmbodiedFlow, state: dict[str, Any] | None, seed_offset: int) -> str:
    """Restore :func:`flow_state`; returns ``"exact"`` or why it fell back to fresh episodes.

    The fallback resets every env worker with seeds shifted by ``seed_offset`` (a range
    the run has not used) and drops any prefetched rollout; the rollout RNGs are restored
    whenever they were saved for the same number of ranks.
    """
    timeout = flow.config.runner.timeout_s
    reason = _restore_envs(flow, state, timeout)
    if reason is not None:
        flow.reset_envs(seed_offset=seed_offset)
        return reason
    flow._prefetched = _stored(state["prefetched"]) if state is not None else None
    return "exact"


def _restore_envs(flow: EmbodiedFlow, state: dict[str, Any] | None, timeout: float) -> str | None:
    if state is None:
        return "the checkpoint holds no env state (written before exact resume existed)"
    rollout = state["rollout"]
    if (flow.rollout is None) != (rollout is None):
        return "the rollout placement changed (policy_in_env), so its sampling RNG differs"
    if flow.rollout is not None:
        if len(rollout) != flow.rollout.world_size:
            return f"the checkpoint has {len(rollout)} rollout workers' state, the run " + str(
                flow.rollout.world_size
            )
        flow.rollout.call_per_rank("set_state", [(s,) for s in rollout]).wait(timeout)
    envs = state["envs"]
    if len(envs) != flow.env.world_size:
        return f"the checkpoint has {len(envs)} env workers' state, the run {flow.env.world_size}"
    if any(s is None for s in envs):
        return f"env {flow.env_config.env_id!r} cannot be captured exactly (see the README)"
    try:
        flow.env.call_per_rank("set_state", [(s,) for s in envs]).wait(timeout)
    except Exception as err:  # a layout mismatch is raised in the worker, wrapped by Ray
        if "saved env state is of" not in str(err):
            raise
        return f"the saved env state does not fit this config: {err}"
    return None
