"""Trajectory: what env workers collect and actor ranks train on, ``[N, T, ...]`` arrays.

rlinf-envs produces it and rlinf-models consumes it; neither may import the other, so the
type lives here, below both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ._typed_batch import BatchShapeError, TypedBatch

__all__ = ["Trajectory"]


@dataclasses.dataclass(frozen=True, eq=False)
class Trajectory(TypedBatch):
    """``N`` envs' ``T`` steps each (env-major), numpy arrays or torch tensors.

    Attributes:
        actions: ``[N, T, ...]`` the actions taken (``[N, T, K, *action_shape]`` for
            chunks of ``K``, or ``[N, T, *action_shape]``).
        rewards: ``[N, T]`` reward of each step.
        terminated: ``[N, T]`` bool: the episode ended in a terminal state at this step.
        truncated: ``[N, T]`` bool: the episode was cut (time limit) at this step.
        obs: observation key -> ``[N, T, ...]`` the observations the actions were chosen on.
        records: name -> ``[N, T, ...]`` what the acting policy recorded per step, e.g. the
            PPO rollout's ``log_probs``, ``values`` and ``next_values`` (``V`` of the state
            reached after the step, before any auto-reset).
    """

    actions: Any
    rewards: Any
    terminated: Any
    truncated: Any
    obs: Mapping[str, Any]
    records: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    SHAPES: ClassVar[Mapping[str, str]] = {
        "actions": "N T ...",
        "rewards": "N T",
        "terminated": "N T",
        "truncated": "N T",
        "obs": "N T ...",
        "records": "N T ...",
    }

    @property
    def num_envs(self) -> int:
        """``N``."""
        return self.dims["N"]

    @property
    def num_steps(self) -> int:
        """``T``."""
        return self.dims["T"]

    def record(self, name: str, shape: Sequence[str] = ("N", "T")) -> Any:
        """The record ``name``, checked to have exactly ``shape`` (dimension names of
        :attr:`dims`, or sizes).

        Raises:
            BatchShapeError: no such record (naming the ones there are), or another shape.
        """
        if name not in self.records:
            raise BatchShapeError(
                f"Trajectory.records has no {name!r} (the acting policy recorded "
                f"{sorted(self.records)})"
            )
        value = self.records[name]
        dims = self.dims
        expected = tuple(dims[d] if isinstance(d, str) else int(d) for d in shape)
        if tuple(value.shape) != expected:
            raise BatchShapeError(
                f"Trajectory.records[{name!r}] must have shape [{', '.join(map(str, shape))}]"
                f" = {list(expected)}, got {tuple(value.shape)}"
            )
        return value
