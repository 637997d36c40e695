"""Soft Actor-Critic losses (continuous actions, twin critics, automatic temperature).

Pure functions over network outputs: the caller evaluates the actor and critics and passes
``[E, B]`` Q-values (``E`` critics) and ``[B]`` log-probs of squashed actions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._offpolicy_checks import as_float, check_batch, check_ensemble

__all__ = [
    "SACConfig",
    "sac_actor_loss",
    "sac_critic_loss",
    "sac_critic_target",
    "sac_temperature_loss",
]


@dataclass(frozen=True)
class SACConfig:
    """Hyper-parameters of SAC (also used by CrossQ and RLPD).

    Attributes:
        gamma: discount factor in ``[0, 1]``.
        tau: Polyak rate of the target critics (:func:`polyak_update`); unused by CrossQ.
        target_entropy: entropy the temperature is tuned toward; ``None`` means
            ``-action_dim`` (the usual heuristic), resolved by :meth:`resolved_target_entropy`.
        init_alpha: initial entropy temperature (> 0).
        autotune: learn the temperature with :func:`sac_temperature_loss`.
    """

    gamma: float = 0.99
    tau: float = 0.005
    target_entropy: float | None = None
    init_alpha: float = 1.0
    autotune: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {self.tau}")
        if self.init_alpha <= 0.0:
            raise ValueError(f"init_alpha must be > 0, got {self.init_alpha}")

    def resolved_target_entropy(self, action_dim: int) -> float:
        """``target_entropy``, or ``-action_dim`` when unset."""
        return float(-action_dim) if self.target_entropy is None else self.target_entropy


@torch.no_grad()
def sac_critic_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q_values: torch.Tensor,
    next_log_probs: torch.Tensor | None = None,
    *,
    gamma: float,
    alpha: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Soft Bellman target ``r + gamma (1 - term) (min_e Q'_e(s', a') - alpha log pi(a'|s'))``.

    Args:
        rewards: ``[B]``.
        terminated: ``[B]`` bool; truncated transitions must pass False (they bootstrap).
        next_q_values: ``[E, B]`` target critics at ``(s', a')`` with ``a' ~ pi(s')``.
        next_log_probs: ``[B]`` ``log pi(a'|s')``; ``None`` drops the entropy term.
        gamma: discount.
        alpha: entropy temperature.

    Returns:
        ``[B]`` targets (no gradient).
    """
    b = check_ensemble("next_q_values", next_q_values)
    check_batch(b, rewards=rewards, next_log_probs=next_log_probs)
    if terminated.shape != (b,):
        raise ValueError(f"terminated must have shape ({b},), got {tuple(terminated.shape)}")
    alpha = as_float("alpha", alpha)
    soft_v = next_q_values.min(dim=0).values
    if next_log_probs is not None:
        soft_v = soft_v - alpha * next_log_probs
    return rewards + gamma * torch.where(terminated.bool(), 0.0, soft_v)


def sac_critic_loss(
    q_values: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum over critics of the mean squared TD error: ``sum_e mean_b (Q_e - y)^2``.

    Shapes: q_values ``[E, B]`` (with gradient), targets ``[B]`` (detached inside).
    Returns ``(loss [], {"critic_loss", "q_mean", "target_mean", "td_abs"})``.
    """
    b = check_ensemble("q_values", q_values)
    check_batch(b, targets=targets)
    td = q_values - targets.detach()[None]
    loss = (td**2).mean(dim=1).sum()
    return loss, {
        "critic_loss": loss.detach(),
        "q_mean": q_values.detach().mean(),
        "target_mean": targets.detach().mean(),
        "td_abs": td.detach().abs().mean(),
    }


def sac_actor_loss(
    q_values: torch.Tensor,
    log_probs: torch.Tensor,
    alpha: float | torch.Tensor,
    *,
    reduce: str = "min",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Policy loss ``mean_b(alpha log pi(a|s) - Q(s, a))`` with ``a ~ pi(s)`` reparameterized.

    Args:
        q_values: ``[E, B]`` critics at ``(s, a)``, differentiable w.r.t. ``a``.
        log_probs: ``[B]`` ``log pi(a|s)``, with gradient.
        alpha: entropy temperature (detached inside).
        reduce: ``"min"`` over critics (SAC, CrossQ) or ``"mean"`` (REDQ/RLPD ensembles).

    Returns:
        ``(loss [], {"actor_loss", "entropy", "q_pi_mean"})``; ``entropy = -mean log pi``.
    """
    b = check_ensemble("q_values", q_values)
    check_batch(b, log_probs=log_probs)
    alpha = as_float("alpha", alpha)
    if reduce == "min":
        q = q_values.min(dim=0).values
    elif reduce == "mean":
        q = q_values.mean(dim=0)
    else:
        raise ValueError(f"reduce must be 'min' or 'mean', got {reduce!r}")
    loss = (alpha * log_probs - q).mean()
    return loss, {
        "actor_loss": loss.detach(),
        "entropy": -log_probs.detach().mean(),
        "q_pi_mean": q.detach().mean(),
    }


def sac_temperature_loss(
    log_alpha: torch.Tensor, log_probs: torch.Tensor, target_entropy: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Temperature loss ``-log_alpha * mean(log pi + target_entropy)``.

    When the policy's entropy ``-log pi`` is below ``target_entropy`` the bracket is
    positive, the gradient w.r.t. ``log_alpha`` is negative, and descent raises alpha (more
    exploration); above the target, alpha shrinks.

    Args:
        log_alpha: ``[]`` learnable log-temperature.
        log_probs: ``[B]`` ``log pi(a|s)`` (detached inside).
        target_entropy: desired entropy (usually ``-action_dim``).

    Returns:
        ``(loss [], {"alpha", "alpha_loss"})``.
    """
    if log_alpha.numel() != 1:
        raise ValueError(f"log_alpha must be a scalar, got shape {tuple(log_alpha.shape)}")
    if log_probs.dim() != 1 or log_probs.numel() == 0:
        raise ValueError(f"log_probs must be a non-empty [B] vector, got {tuple(log_probs.shape)}")
    check_batch(log_probs.shape[0], log_probs=log_probs)
    loss = -(log_alpha.reshape(()) * (log_probs.detach() + target_entropy).mean())
    return loss, {"alpha": log_alpha.detach().exp().reshape(()), "alpha_loss": loss.detach()}
