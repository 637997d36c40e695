"""Group-relative outcome advantages: GRPO, Dr.GRPO, RLOO.

Rewards are one scalar per response, ``[N]`` with ``N = num_groups * group_size`` and the
responses of one prompt stored contiguously (``rewards.view(num_groups, group_size)``).
"""

from __future__ import annotations

import torch

from ._checks import as_mask, check_finite, compute_dtype

__all__ = [
    "broadcast_to_tokens",
    "drgrpo_advantages",
    "group_view",
    "grpo_advantages",
    "rloo_advantages",
]


def group_view(rewards: torch.Tensor, group_size: int, name: str = "rewards") -> torch.Tensor:
    """Check and reshape ``[N]`` rewards into ``[N // group_size, group_size]`` (float32+)."""
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if rewards.dim() != 1:
        raise ValueError(f"{name} must be 1-D [N], got shape {tuple(rewards.shape)}")
    n = rewards.shape[0]
    if n == 0 or n % group_size != 0:
        raise ValueError(f"{name} length {n} is not a positive multiple of group_size={group_size}")
    check_finite(name, rewards)
    return rewards.to(compute_dtype(rewards)).view(n // group_size, group_size)


def grpo_advantages(
    rewards: torch.Tensor,
    group_size: int,
    *,
    scale_by_std: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """GRPO advantage ``(r_i - mean_group) / (std_group + eps)``.

    ``std`` is the unbiased sample standard deviation of the group. With
    ``scale_by_std=False`` this is Dr.GRPO: mean subtraction only, which removes the bias
    toward groups whose rewards barely differ.

    Args:
        rewards: ``[N]`` scalar reward per response, groups contiguous.
        group_size: responses per prompt; at least 2 when ``scale_by_std``.

    Returns:
        ``[N]`` advantages, zero-mean within each group.
    """
    g = group_view(rewards, group_size)
    centered = g - g.mean(dim=1, keepdim=True)
    if scale_by_std:
        if group_size < 2:
            raise ValueError("group_size must be >= 2 to scale by the group std")
        centered = centered / (g.std(dim=1, keepdim=True) + eps)
    return centered.reshape(-1)


def drgrpo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dr.GRPO advantage ``r_i - mean_group`` (GRPO without std scaling). ``[N] -> [N]``."""
    return grpo_advantages(rewards, group_size, scale_by_std=False)


def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO advantage: reward minus the mean of the *other* responses of the same prompt.

    ``A_i = r_i - (sum_j r_j - r_i) / (K - 1)``. ``[N] -> [N]``; needs ``group_size >= 2``.
    """
    if group_size < 2:
        raise ValueError("group_size must be >= 2 for a leave-one-out baseline")
    g = group_view(rewards, group_size)
    baseline = (g.sum(dim=1, keepdim=True) - g) / (group_size - 1)
    return (g - baseline).reshape(-1)


def broadcast_to_tokens(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Spread one advantage per sequence over its valid tokens.

    Shapes: advantages ``[N]``, mask ``[N, T]``; returns ``[N, T]`` (0 outside the mask).
    """
    if advantages.dim() != 1 or mask.dim() != 2 or mask.shape[0] != advantages.shape[0]:
        raise ValueError(
            f"advantages must be [N] and mask [N, T], got {tuple(advantages.shape)} and "
            f"{tuple(mask.shape)}"
        )
    m = as_mask(mask, mask.shape, mask.device, allow_empty=True)
    return torch.where(m, advantages[:, None], 0.0)
