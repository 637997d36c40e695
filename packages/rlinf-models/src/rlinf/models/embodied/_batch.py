"""The trajectory batch the updater consumes: plain arrays in ``[N, T, ...]`` layout."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["TRAJECTORY_KEYS", "concat_trajectories", "to_tensors"]

TRAJECTORY_KEYS = (
    "obs",
    "actions",
    "log_probs",
    "values",
    "next_values",
    "rewards",
    "terminated",
    "truncated",
)
"""Keys of a trajectory dict (``N`` envs, ``T`` steps each, env-major):

* ``obs``: dict key -> ``[N, T, ...]`` observations the actions were chosen on.
* ``actions``: ``[N, T, (K,) *action_shape]``.
* ``log_probs``, ``values``: ``[N, T]`` from the rollout policy at acting time.
* ``next_values``: ``[N, T]`` value of the state reached after each step *before* any
  auto-reset (``V(final_obs)``), used to bootstrap truncated episodes and the cut at ``T``.
* ``rewards``: ``[N, T]`` float; ``terminated``, ``truncated``: ``[N, T]`` bool.
"""


def concat_trajectories(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Concatenate trajectory dicts of equal ``T`` along the env axis ``N``."""
    if not parts:
        raise ValueError("no trajectories to concatenate")
    out: dict[str, Any] = {}
    for key in TRAJECTORY_KEYS:
        missing = [i for i, p in enumerate(parts) if key not in p]
        if missing:
            raise KeyError(f"trajectory parts {missing} have no {key!r}")
        if key == "obs":
            out[key] = {
                k: np.concatenate([np.asarray(p["obs"][k]) for p in parts]) for k in parts[0]["obs"]
            }
        else:
            out[key] = np.concatenate([np.asarray(p[key]) for p in parts])
    return out


def to_tensors(traj: Mapping[str, Any], device: torch.device | str = "cpu") -> dict[str, Any]:
    """Trajectory arrays -> tensors on ``device`` (obs stays a dict), shape-checked."""
    missing = [k for k in TRAJECTORY_KEYS if k not in traj]
    if missing:
        raise KeyError(f"trajectory is missing {missing}")
    out: dict[str, Any] = {
        "obs": {k: torch.as_tensor(np.asarray(v), device=device) for k, v in traj["obs"].items()}
    }
    for key in TRAJECTORY_KEYS[1:]:
        out[key] = torch.as_tensor(np.asarray(traj[key]), device=device)
    shape = tuple(out["rewards"].shape)
    if len(shape) != 2:
        raise ValueError(f"rewards must be [N, T], got {shape}")
    for key in ("log_probs", "values", "next_values", "terminated", "truncated"):
        if tuple(out[key].shape) != shape:
            raise ValueError(
                f"{key} must be {list(shape)} like rewards, got {tuple(out[key].shape)}"
            )
    for k, v in out["obs"].items():
        if tuple(v.shape[:2]) != shape:
            raise ValueError(f"obs[{k!r}] must start with {list(shape)}, got {tuple(v.shape)}")
    out["rewards"] = out["rewards"].float()
    out["terminated"] = out["terminated"].bool()
    out["truncated"] = out["truncated"].bool()
    return out
