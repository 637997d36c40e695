"""RLPD (Ball et al., 2023): online RL with offline data.

Three ingredients on top of SAC: each batch is half online, half demonstration data
(:func:`sample_mixed`); a large critic ensemble whose bootstrap target is the minimum over a
random subset of ``M`` members (REDQ), which curbs over-estimation on out-of-distribution
actions; LayerNorm in the critics (:class:`CriticEnsemble` with ``norm="layernorm"``).
"""

from __future__ import annotations

import torch

from ._offpolicy_checks import as_float, check_batch, check_ensemble
from ._sac import sac_actor_loss, sac_critic_loss

__all__ = ["rlpd_actor_loss", "rlpd_critic_loss", "rlpd_critic_target", "sample_subset"]


def sample_subset(
    num_critics: int, subset_size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[M]`` distinct random critic indices out of ``num_critics`` (drawn on the CPU)."""
    if not 1 <= subset_size <= num_critics:
        raise ValueError(f"subset_size must be in [1, {num_critics}], got {subset_size}")
    return torch.randperm(num_critics, generator=generator)[:subset_size]


@torch.no_grad()
def rlpd_critic_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q_values: torch.Tensor,
    next_log_probs: torch.Tensor | None = None,
    *,
    gamma: float,
    alpha: float | torch.Tensor = 0.0,
    subset_size: int = 2,
    generator: torch.Generator | None = None,
    subset: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target ``r + gamma (1 - term) (min_{e in S} Q'_e(s', a') - alpha log pi(a'|s'))``.

    ``S`` is one random subset of ``subset_size`` target critics, shared by the batch.

    Args:
        rewards: ``[B]``; terminated: ``[B]`` bool.
        next_q_values: ``[E, B]`` target critics at ``(s', a')``.
        next_log_probs: ``[B]`` or ``None`` (RLPD commonly drops the entropy backup).
        gamma, alpha: discount and temperature.
        subset_size: ``M``.
        generator: drives the subset draw.
        subset: explicit ``[M]`` indices instead of a random draw (tests, replay).

    Returns:
        ``(targets [B], subset [M])``.
    """
    b = check_ensemble("next_q_values", next_q_values)
    check_batch(b, rewards=rewards, next_log_probs=next_log_probs)
    if terminated.shape != (b,):
        raise ValueError(f"terminated must have shape ({b},), got {tuple(terminated.shape)}")
    e = next_q_values.shape[0]
    if subset is None:
        subset = sample_subset(e, subset_size, generator)
    elif (
        subset.dim() != 1 or subset.numel() == 0 or int(subset.max()) >= e or int(subset.min()) < 0
    ):
        raise ValueError(f"subset must be a non-empty [M] vector of indices < {e}")
    alpha = as_float("alpha", alpha)
    soft_v = next_q_values[subset.to(next_q_values.device)].min(dim=0).values
    if next_log_probs is not None:
        soft_v = soft_v - alpha * next_log_probs
    return rewards + gamma * torch.where(terminated.bool(), 0.0, soft_v), subset


def rlpd_critic_loss(
    q_values: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Every ensemble member regresses the same target: ``sum_e mean_b (Q_e - y)^2``.

    Shapes: q_values ``[E, B]``, targets ``[B]``. Same as :func:`sac_critic_loss`.
    """
    return sac_critic_loss(q_values, targets)


def rlpd_actor_loss(
    q_values: torch.Tensor, log_probs: torch.Tensor, alpha: float | torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Actor loss against the ensemble *mean*: ``mean_b(alpha log pi - mean_e Q_e)``.

    Shapes: q_values ``[E, B]``, log_probs ``[B]``.
    """
    return sac_actor_loss(q_values, log_probs, alpha, reduce="mean")
