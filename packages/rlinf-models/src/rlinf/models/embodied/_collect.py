"""Pieces of :class:`~rlinf.models.embodied.EmbodiedFlow`'s collection step: a rollout in
flight and finished, waiting on both sides of a rollout, and the ``env/*`` metrics."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

from rlinf.core import CallTimeout, GroupFuture, WorkerError

__all__ = ["Collect", "Collected", "episode_metrics", "wait_both"]


@dataclasses.dataclass(frozen=True)
class Collect:
    """A rollout in flight: the env and rollout groups' futures."""

    envs: GroupFuture
    serve: GroupFuture | None
    version: int
    start: float


@dataclasses.dataclass(frozen=True)
class Collected:
    """A finished rollout: env results, rollout serving stats, the weight version it
    acted with and how long it took."""

    results: list[dict[str, Any]]
    serving: list[dict[str, float]]
    version: int
    seconds: float


def wait_both(envs: GroupFuture, serve: GroupFuture, timeout: float) -> tuple[list[Any], list[Any]]:
    """Both sides' results; a failure on either side is raised as soon as it happens.

    The side that fails first holds the cause; the other one only sees its connections
    close (or a timeout), so the serving side is checked between short waits on the envs.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            results = envs.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            break
        except CallTimeout:
            if serve.done():
                serve.wait()  # raises the rollout's error, if it failed
            if time.monotonic() >= deadline:
                raise
        except WorkerError as env_error:
            with contextlib.suppress(CallTimeout):
                serve.wait(10.0)  # the rollout's own error names the cause, if it failed
            raise env_error
    return results, serve.wait(max(1.0, deadline - time.monotonic()))


def episode_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    """``env/*`` metrics from the env workers' episode and action counters."""
    eps = {k: sum(res["episodes"][k] for res in results) for k in results[0]["episodes"]}
    out = {"env/episodes": float(eps["count"])}
    if eps["count"]:
        out["env/return_mean"] = eps["return_sum"] / eps["count"]
        out["env/length_mean"] = eps["length_sum"] / eps["count"]
        if eps["success_count"]:
            out["env/success_rate"] = eps["success_sum"] / eps["success_count"]
    components = sum(res["action_components"] for res in results)
    if components:
        # Continuous actions only; the env clips these unless clip_actions=False.
        out["env/clipped_action_fraction"] = (
            sum(res["actions_out_of_bounds"] for res in results) / components
        )
    return out
