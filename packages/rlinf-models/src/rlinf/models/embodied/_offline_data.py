"""The offline transition file (``rlinf-embodied collect`` writes it; RLPD and IQL read it).

Format: one ``.npz`` (numpy, no pickles) with ``N`` transitions::

    obs         [N, D] float32   flattened vector observation (keys in sorted order)
    actions     [N, A] float32   the action taken
    rewards     [N]    float32
    next_obs    [N, D] float32   the state the step reached, before any auto-reset
    terminated  [N]    bool      a terminal state: no bootstrap
    truncated   [N]    bool      cut by a time limit: bootstrap from next_obs
    metadata    []     str       JSON: format, version, env_id, env_kind, obs_dim,
                                 action_dim, obs_shapes, source_run, checkpoint, ...

The learner's buffers hold ``obs, actions, rewards, next_obs, terminated`` (float32); the
``truncated`` flag is kept in the file for other consumers (only termination stops a
bootstrap, so the learner does not need it).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "OFFLINE_FORMAT",
    "OfflineDataError",
    "check_offline_data",
    "load_offline_data",
    "read_offline_metadata",
    "save_offline_data",
]

OFFLINE_FORMAT = "rlinf-offline-transitions"
_VERSION = 1
_ARRAYS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")


class OfflineDataError(ValueError):
    """An offline file that is missing, malformed, or does not fit the run's env."""


def save_offline_data(
    path: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    metadata: Mapping[str, Any],
) -> pathlib.Path:
    """Write ``arrays`` (the keys of the module docstring) and ``metadata`` (must include
    ``env_id``) to ``path``; checks shapes first. Returns the path written."""
    missing = sorted(set(_ARRAYS) - set(arrays))
    if missing:
        raise OfflineDataError(f"offline arrays are missing {missing}")
    if "env_id" not in metadata:
        raise OfflineDataError("offline metadata must name the env_id")
    out = {k: np.asarray(arrays[k]) for k in _ARRAYS}
    n = out["rewards"].shape[0]
    meta = {
        **dict(metadata),
        "format": OFFLINE_FORMAT,
        "version": _VERSION,
        "num_transitions": int(n),
        "obs_dim": int(out["obs"].shape[1]),
        "action_dim": int(out["actions"].shape[1]),
    }
    _check_arrays(out, meta, str(path))
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:  # a file object: np.savez would append ".npz" to a str
        np.savez(
            f,
            obs=out["obs"].astype(np.float32),
            actions=out["actions"].astype(np.float32),
            rewards=out["rewards"].astype(np.float32),
            next_obs=out["next_obs"].astype(np.float32),
            terminated=out["terminated"].astype(bool),
            truncated=out["truncated"].astype(bool),
            metadata=np.array(json.dumps(meta)),
        )
    return path


def _open(path: str | os.PathLike[str]) -> Any:
    p = pathlib.Path(path)
    if not p.is_file():
        raise OfflineDataError(
            f"offline data file {str(p)!r} does not exist (make one with "
            "'rlinf-embodied collect --checkpoint <run dir> --episodes N --out FILE')"
        )
    try:
        return np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise OfflineDataError(f"offline data file {str(p)!r} is not an npz file: {e}") from None


def read_offline_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's metadata dict (reads only that entry); raises :class:`OfflineDataError`
    when the file is missing or not an rlinf offline file."""
    with _open(path) as data:
        if "metadata" not in data.files:
            raise OfflineDataError(f"offline data file {str(path)!r} has no 'metadata' entry")
        meta = json.loads(str(data["metadata"]))
    if meta.get("format") != OFFLINE_FORMAT:
        raise OfflineDataError(
            f"offline data file {str(path)!r}: format {meta.get('format')!r}, "
            f"expected {OFFLINE_FORMAT!r}"
        )
    return meta


def _check_arrays(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], where: str) -> None:
    n, d, a = meta["num_transitions"], meta["obs_dim"], meta["action_dim"]
    want = {
        "obs": (n, d),
        "actions": (n, a),
        "rewards": (n,),
        "next_obs": (n, d),
        "terminated": (n,),
        "truncated": (n,),
    }
    for k, shape in want.items():
        got = tuple(np.shape(arrays[k]))
        if got != shape:
            raise OfflineDataError(f"{where}: {k!r} has shape {got}, expected {shape}")
    for k in ("obs", "actions", "rewards", "next_obs"):
        if not np.isfinite(arrays[k]).all():
            raise OfflineDataError(f"{where}: {k!r} holds NaN or inf values")
    if n == 0:
        raise OfflineDataError(f"{where}: holds no transitions")


def check_offline_data(
    path: str | os.PathLike[str],
    *,
    env_id: str | None = None,
    obs_dim: int | None = None,
    action_dim: int | None = None,
    min_transitions: int = 1,
) -> dict[str, Any]:
    """Check an offline file's metadata against the run without reading its arrays (the
    driver's check before workers start); returns the metadata.

    Args:
        path: the npz file.
        env_id: the run's env id (``None``: not checked).
        obs_dim: the run's flat observation features ``D`` (``None``: not checked).
        action_dim: the run's action features ``A`` (``None``: not checked).
        min_transitions: fewer raise (e.g. the offline share of one batch).

    Raises:
        OfflineDataError: naming the mismatch (missing file, env id, a dimension, too few).
    """
    meta = read_offline_metadata(path)
    where = f"offline data file {str(path)!r}"
    if env_id is not None and meta["env_id"] != env_id:
        raise OfflineDataError(
            f"{where} was collected on env {meta['env_id']!r}, but this run's env.env_id is "
            f"{env_id!r}"
        )
    for name, have, want in (
        ("obs_dim", meta["obs_dim"], obs_dim),
        ("action_dim", meta["action_dim"], action_dim),
    ):
        if want is not None and have != want:
            raise OfflineDataError(
                f"{where} has {name}={have}, but this run's env ({env_id}) has {name}={want}"
            )
    if meta["num_transitions"] < min_transitions:
        raise OfflineDataError(
            f"{where} holds {meta['num_transitions']} transitions, fewer than the "
            f"{min_transitions} one batch draws from it"
        )
    return meta


def load_offline_data(
    path: str | os.PathLike[str],
    *,
    env_id: str | None = None,
    obs_dim: int | None = None,
    action_dim: int | None = None,
    min_transitions: int = 1,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and validate an offline file against the run.

    Arguments as :func:`check_offline_data`.

    Returns:
        ``(batch, metadata)``: ``batch`` is ``{"obs" [N, D], "actions" [N, A], "rewards" [N],
        "next_obs" [N, D], "terminated" [N]}`` float32 tensors, the replay buffer's schema.

    Raises:
        OfflineDataError: naming the mismatch (those of :func:`check_offline_data`, and an
        array whose shape disagrees with the metadata or holds NaN / inf).
    """
    meta = check_offline_data(
        path,
        env_id=env_id,
        obs_dim=obs_dim,
        action_dim=action_dim,
        min_transitions=min_transitions,
    )
    where = f"offline data file {str(path)!r}"
    with _open(path) as data:
        arrays = {k: data[k] for k in _ARRAYS if k in data.files}
    missing = sorted(set(_ARRAYS) - set(arrays))
    if missing:
        raise OfflineDataError(f"{where} is missing arrays {missing}")
    _check_arrays(arrays, meta, where)
    batch = {
        k: torch.from_numpy(np.asarray(arrays[k], dtype=np.float32))
        for k in ("obs", "actions", "rewards", "next_obs", "terminated")
    }
    return batch, meta
