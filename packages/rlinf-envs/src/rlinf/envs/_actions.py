"""Validation of a batch of action chunks before any env moves."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._spec import ActionSpec

__all__ = ["check_actions"]


def _envs(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:8])
    return f"[{shown}{', ...' if idx.size > 8 else ''}]"


def check_actions(
    actions: Any,
    spec: ActionSpec,
    *,
    num_envs: int,
    chunk_size: int,
    env_id: str,
    clip: bool,
) -> np.ndarray:
    """Validate and normalize actions to ``[N, K, *spec.shape]``.

    Accepts ``[N, K, *shape]``, or ``[N, *shape]`` when ``K == 1``; anything array-like
    (numpy, lists, CPU torch tensors). Discrete actions must be integral values in
    ``[0, n)`` and come back as int64; continuous ones must be finite, come back as float32
    and are clipped to the bounds when ``clip``.

    Raises:
        ValueError: naming ``env_id``, the problem and the offending env indices.
    """
    arr = np.asarray(actions)
    full = (num_envs, chunk_size, *spec.shape)
    if arr.shape != full:
        if chunk_size == 1 and arr.shape == (num_envs, *spec.shape):
            arr = arr.reshape(full)
        else:
            alt = f" or {(num_envs, *spec.shape)}" if chunk_size == 1 else ""
            raise ValueError(
                f"env {env_id!r}: actions must have shape {full} "
                f"(num_envs, chunk_size, *action_shape){alt}, got {arr.shape}"
            )
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(f"env {env_id!r}: actions must be numeric, got dtype {arr.dtype}")
    per_env = arr.reshape(num_envs, -1)
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(per_env).all(axis=1)
        if bad.any():
            raise ValueError(f"env {env_id!r}: actions contain NaN or inf for envs {_envs(bad)}")
    if spec.discrete:
        if np.issubdtype(arr.dtype, np.floating):
            bad = (per_env != np.round(per_env)).any(axis=1)
            if bad.any():
                raise ValueError(
                    f"env {env_id!r}: discrete actions must be integers, got fractional "
                    f"values for envs {_envs(bad)}"
                )
        bad = ((per_env < 0) | (per_env >= spec.n)).any(axis=1)
        if bad.any():
            raise ValueError(
                f"env {env_id!r}: discrete actions must be in [0, {spec.n}), got "
                f"out-of-range values for envs {_envs(bad)}"
            )
        return arr.astype(np.int64)
    out = arr.astype(np.float32)
    if clip:
        out = np.clip(out, spec.low.astype(np.float32), spec.high.astype(np.float32))
    return out
