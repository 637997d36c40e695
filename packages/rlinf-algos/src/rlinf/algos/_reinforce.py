"""REINFORCE++ advantages: token-level discounted returns, normalized over the whole batch."""

from __future__ import annotations

import torch

from ._checks import as_mask, check_finite, check_same_shape
from ._gae import discounted_returns
from ._group import broadcast_to_tokens, group_view
from ._masked import masked_whiten

__all__ = ["reinforce_pp_advantages", "reinforce_pp_baseline_advantages"]


def reinforce_pp_advantages(
    token_rewards: torch.Tensor,
    mask: torch.Tensor,
    *,
    gamma: float = 1.0,
    whiten: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """REINFORCE++: returns-to-go of per-token rewards, whitened across all valid tokens.

    ``token_rewards`` usually holds the outcome score on the last valid token minus a
    per-token KL penalty (see :func:`kl_penalized_rewards`). Normalizing with batch-wide
    statistics instead of per-prompt ones is what distinguishes it from GRPO.

    Args:
        token_rewards: ``[B, T]`` reward per token.
        mask: ``[B, T]`` bool, valid response tokens.
        gamma: discount over valid tokens (1.0 in the paper).
        whiten: subtract the batch mean and divide by the batch std over valid tokens.

    Returns:
        ``[B, T]`` advantages, 0 outside the mask.
    """
    check_same_shape(token_rewards=token_rewards, mask=mask)
    returns = discounted_returns(token_rewards, gamma=gamma, mask=mask)
    if not whiten:
        return returns
    return masked_whiten(returns, mask, eps=eps)


def reinforce_pp_baseline_advantages(
    rewards: torch.Tensor,
    mask: torch.Tensor,
    group_size: int,
    *,
    eps: float = 1e-8,
) -> torch.Tensor:
    """REINFORCE++ with a group baseline: subtract the group mean reward, then whiten globally.

    Args:
        rewards: ``[N]`` outcome reward per response, groups of ``group_size`` contiguous.
        mask: ``[N, T]`` bool, valid response tokens.
        group_size: responses per prompt.

    Returns:
        ``[N, T]`` advantages: ``(r_i - mean_group)`` broadcast over the response's tokens,
        then normalized by the mean and std over all valid tokens in the batch.
    """
    g = group_view(rewards, group_size)
    centered = (g - g.mean(dim=1, keepdim=True)).reshape(-1)
    if mask.dim() != 2 or mask.shape[0] != rewards.shape[0]:
        raise ValueError(f"mask must be [N, T] with N={rewards.shape[0]}, got {tuple(mask.shape)}")
    m = as_mask(mask, mask.shape, mask.device)
    check_finite("rewards", rewards)
    return masked_whiten(broadcast_to_tokens(centered, m), m, eps=eps)
