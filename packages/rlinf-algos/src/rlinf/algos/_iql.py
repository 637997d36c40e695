"""Implicit Q-Learning (Kostrikov et al., 2021): offline RL without querying unseen actions.

``V`` fits an upper expectile of ``Q`` over dataset actions, ``Q`` regresses
``r + gamma V(s')``, and the policy is extracted by advantage-weighted regression.
"""

from __future__ import annotations

import torch

from ._offpolicy_checks import check_batch, check_ensemble

__all__ = ["expectile_loss", "iql_policy_loss", "iql_q_loss", "iql_value_loss"]


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric squared loss ``|tau - 1(diff < 0)| * diff^2``. ``[...] -> [...]``.

    With ``tau > 0.5`` positive errors weigh more, so the minimizer is an upper expectile.
    """
    if not 0.0 < expectile < 1.0:
        raise ValueError(f"expectile must be in (0, 1), got {expectile}")
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff**2


def iql_value_loss(
    target_q_values: torch.Tensor, values: torch.Tensor, *, expectile: float = 0.7
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``mean_b L_tau(min_e Q'_e(s, a) - V(s))``.

    Shapes: target_q_values ``[E, B]`` (target critics at dataset actions, detached inside),
    values ``[B]`` with gradient. Returns ``(loss [], {"value_loss", "v_mean", "adv_mean"})``.
    """
    b = check_ensemble("target_q_values", target_q_values)
    check_batch(b, values=values)
    diff = target_q_values.detach().min(dim=0).values - values
    loss = expectile_loss(diff, expectile).mean()
    return loss, {
        "value_loss": loss.detach(),
        "v_mean": values.detach().mean(),
        "adv_mean": diff.detach().mean(),
    }


def iql_q_loss(
    q_values: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_values: torch.Tensor,
    *,
    gamma: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``sum_e mean_b (Q_e(s, a) - (r + gamma (1 - term) V(s')))^2``.

    Shapes: q_values ``[E, B]``, rewards ``[B]``, terminated ``[B]`` bool, next_values ``[B]``
    (detached inside). Returns ``(loss [], {"q_loss", "q_mean", "target_mean"})``.
    """
    b = check_ensemble("q_values", q_values)
    check_batch(b, rewards=rewards, next_values=next_values)
    if terminated.shape != (b,):
        raise ValueError(f"terminated must have shape ({b},), got {tuple(terminated.shape)}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    target = rewards + gamma * torch.where(terminated.bool(), 0.0, next_values.detach())
    loss = ((q_values - target[None]) ** 2).mean(dim=1).sum()
    return loss, {
        "q_loss": loss.detach(),
        "q_mean": q_values.detach().mean(),
        "target_mean": target.detach().mean(),
    }


def iql_policy_loss(
    log_probs: torch.Tensor,
    q_values: torch.Tensor,
    values: torch.Tensor,
    *,
    beta: float = 3.0,
    max_weight: float = 100.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Advantage-weighted regression ``-mean_b min(exp(beta (Q - V)), max_weight) log pi(a|s)``.

    The clamp keeps a few large advantages from dominating the batch.

    Args:
        log_probs: ``[B]`` ``log pi(a|s)`` of dataset actions, with gradient.
        q_values: ``[B]`` target ``Q(s, a)`` (already reduced over the ensemble).
        values: ``[B]`` ``V(s)``.
        beta: inverse temperature (> 0).
        max_weight: weight clamp (> 0).

    Returns:
        ``(loss [], {"policy_loss", "weight_mean", "weight_max", "weight_clip_frac"})``.
    """
    if beta <= 0 or max_weight <= 0:
        raise ValueError(f"beta and max_weight must be > 0, got {beta}, {max_weight}")
    if log_probs.dim() != 1 or log_probs.numel() == 0:
        raise ValueError(f"log_probs must be a non-empty [B] vector, got {tuple(log_probs.shape)}")
    check_batch(log_probs.shape[0], log_probs=log_probs, q_values=q_values, values=values)
    raw = torch.exp((beta * (q_values - values)).detach().clamp(max=80.0))
    weights = raw.clamp(max=max_weight)
    loss = -(weights * log_probs).mean()
    return loss, {
        "policy_loss": loss.detach(),
        "weight_mean": weights.mean(),
        "weight_max": weights.max(),
        "weight_clip_frac": (raw > max_weight).float().mean(),
    }
