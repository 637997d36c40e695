"""A pipeline stage's bookkeeping in the env worker: its per-step arrays (stacked into a
:class:`rlinf.core.Trajectory`), its in-process link, and the count of actions out of the
action space's bounds."""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np

from rlinf.core import Trajectory

from ._spec import ActionSpec, Obs

__all__ = ["ActionBounds", "LocalLink", "StageBuffer", "StageResponder"]


class StageResponder(Protocol):
    """The policy side of the protocol, called in the env worker's process."""

    def answer(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replies to ``requests``, in order."""
        ...

    def load_weights(self, snapshot: Any) -> int:
        """Load the next weight version; returns it."""
        ...

    def require(self, version: int) -> None:
        """Raise unless exactly ``version`` is loaded."""
        ...


class LocalLink:
    """Stands in for a stage's :class:`rlinf.channel.DirectLink` when the policy runs in
    this process: ``send`` answers the request at once, ``recv`` hands the reply back (one
    request in flight, as on a link)."""

    def __init__(self, responder: StageResponder) -> None:
        self.responder = responder
        self.seconds = 0.0
        self._reply: dict[str, Any] | None = None

    def send(self, request: dict[str, Any]) -> None:
        start = time.perf_counter()
        self._reply = self.responder.answer([request])[0]
        self.seconds += time.perf_counter() - start

    def recv(self, timeout: float | None = None) -> dict[str, Any]:
        reply, self._reply = self._reply, None
        assert reply is not None, "recv without a request"
        return reply


class ActionBounds:
    """Counts continuous action components outside the action space's ``[low, high]``:
    the env clips them (``clip_actions=True``, the default) or passes them on, and either
    way the run should show how often it happens."""

    def __init__(self, spec: ActionSpec) -> None:
        continuous = not spec.discrete and spec.low is not None and spec.high is not None
        self.low = np.asarray(spec.low) if continuous else None
        self.high = np.asarray(spec.high) if continuous else None
        self.outside = 0
        self.total = 0

    def count(self, action: Any) -> None:
        """Count the components of ``action`` (``[n, (K,) *shape]``) out of bounds."""
        if self.low is None:
            return
        arr = np.asarray(action)
        # Bounds broadcast over the leading env (and chunk) dimensions.
        self.outside += int(np.count_nonzero((arr < self.low) | (arr > self.high)))
        self.total += arr.size


class StageBuffer:
    """Per-step arrays of one stage, stacked to ``[n, T, ...]`` at the end."""

    def __init__(self) -> None:
        self.obs: list[Obs] = []
        self.cols: dict[str, list[np.ndarray]] = {
            k: [] for k in ("actions", "rewards", "terminated", "truncated")
        }
        self.records: dict[str, list[np.ndarray]] = {}

    def record(self, reply: dict[str, Any]) -> None:
        for name, value in reply.get("record_prev", {}).items():
            # Belongs to the step just taken: its list is one shorter than the step count.
            self.records.setdefault(name, []).append(np.asarray(value))
        for name, value in reply.get("record", {}).items():
            self.records.setdefault(name, []).append(np.asarray(value))

    def step(self, obs: Obs, action: Any, result: Any) -> None:
        self.obs.append(obs)
        self.cols["actions"].append(np.asarray(action))
        self.cols["rewards"].append(np.asarray(result.reward))
        self.cols["terminated"].append(np.asarray(result.terminated))
        self.cols["truncated"].append(np.asarray(result.truncated))

    def trajectory(self) -> Trajectory:
        """The stage's steps as a validated ``[n, T, ...]`` trajectory."""
        t = len(self.obs)
        for name, values in {**self.cols, **self.records}.items():
            if len(values) != t:
                raise RuntimeError(
                    f"rollout reply field {name!r} came {len(values)} times for {t} steps"
                )
        return Trajectory(
            obs={k: np.stack([o[k] for o in self.obs], axis=1) for k in self.obs[0]},
            records={k: np.stack(v, axis=1) for k, v in self.records.items()},
            **{k: np.stack(v, axis=1) for k, v in self.cols.items()},
        )
