"""DAPO helpers: dynamic-sampling filter and overlong reward shaping."""

from __future__ import annotations

import torch

from ._checks import check_finite
from ._group import group_view

__all__ = ["dynamic_sampling_filter", "overlong_reward_penalty"]


def dynamic_sampling_filter(
    rewards: torch.Tensor, group_size: int, *, atol: float = 0.0
) -> tuple[torch.Tensor, int]:
    """Keep only groups whose rewards are not all equal.

    A group where every response got the same reward has zero group-relative advantage and
    contributes no gradient, only noise in the batch size; DAPO drops it and samples more.

    Args:
        rewards: ``[N]`` reward per response, groups of ``group_size`` contiguous.
        group_size: responses per prompt.
        atol: rewards within ``atol`` of each other count as equal.

    Returns:
        ``(keep [N] bool, num_dropped_groups)``: ``keep`` marks every response of a kept
        group; ``num_dropped_groups`` is a python int for logging.
    """
    g = group_view(rewards, group_size)
    spread = g.max(dim=1).values - g.min(dim=1).values
    keep_group = spread > atol
    keep = keep_group[:, None].expand_as(g).reshape(-1)
    return keep, int((~keep_group).sum())


def overlong_reward_penalty(
    lengths: torch.Tensor,
    *,
    max_length: int,
    buffer_length: int,
    penalty_factor: float = 1.0,
) -> torch.Tensor:
    """Soft overlong punishment, added to the task reward.

    ``0`` for ``L <= max_length - buffer_length``; a linear ramp
    ``(max_length - buffer_length - L) / buffer_length * penalty_factor`` inside the buffer;
    ``-penalty_factor`` beyond ``max_length``.

    Args:
        lengths: ``[N]`` response lengths in tokens (int or float).
        max_length: the length at which the full penalty applies.
        buffer_length: width of the ramp, ``0 < buffer_length <= max_length``.
        penalty_factor: magnitude of the full penalty (>= 0).

    Returns:
        ``[N]`` float32 penalties in ``[-penalty_factor, 0]``.
    """
    if not 0 < buffer_length <= max_length:
        raise ValueError(
            f"buffer_length must be in (0, max_length={max_length}], got {buffer_length}"
        )
    if penalty_factor < 0:
        raise ValueError(f"penalty_factor must be >= 0, got {penalty_factor}")
    length = lengths.float()
    check_finite("lengths", length)
    if bool((length < 0).any()):
        raise ValueError("lengths must be non-negative")
    start = max_length - buffer_length
    ramp = (start - length) / buffer_length * penalty_factor
    out = torch.where(length <= start, torch.zeros_like(length), ramp)
    return torch.where(length > max_length, torch.full_like(length, -penalty_factor), out)
