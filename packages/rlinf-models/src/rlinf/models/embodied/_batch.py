"""The updater's view of a :class:`rlinf.core.Trajectory`: tensors on its device."""

from __future__ import annotations

from typing import Any

import torch

from rlinf.core import BatchShapeError, Trajectory

__all__ = ["POLICY_RECORDS", "to_tensors"]

POLICY_RECORDS = ("log_probs", "values", "next_values")
"""Records the PPO / GRPO updater needs in ``Trajectory.records``, each ``[N, T]``: the
rollout policy's ``log_probs`` and ``values`` at acting time, and ``next_values``, ``V`` of
the state reached after each step *before* any auto-reset (``V(final_obs)``), which
bootstraps truncated episodes and the cut at ``T``."""


def to_tensors(traj: Trajectory, device: torch.device | str = "cpu") -> dict[str, Any]:
    """``{"obs": {k: [N, T, ...]}, "actions": [N, T, ...], "rewards": [N, T] float,
    "terminated", "truncated": [N, T] bool, "log_probs", "values", "next_values": [N, T]}``
    as tensors on ``device``.

    Raises:
        TypeError: ``traj`` is not a Trajectory.
        BatchShapeError: a record of :data:`POLICY_RECORDS` is missing or not ``[N, T]``.
    """
    if not isinstance(traj, Trajectory):
        raise TypeError(f"the updater takes a rlinf.core.Trajectory, got {type(traj).__name__}")
    try:
        records = {name: traj.record(name) for name in POLICY_RECORDS}
    except BatchShapeError as e:
        raise BatchShapeError(f"{e} (the updater needs {list(POLICY_RECORDS)})") from None

    def tensor(value: Any) -> torch.Tensor:
        return torch.as_tensor(value, device=device)

    out: dict[str, Any] = {
        "obs": {k: tensor(v) for k, v in traj.obs.items()},
        "actions": tensor(traj.actions),
        "rewards": tensor(traj.rewards).float(),
        "terminated": tensor(traj.terminated).bool(),
        "truncated": tensor(traj.truncated).bool(),
    }
    out.update({name: tensor(value) for name, value in records.items()})
    return out
