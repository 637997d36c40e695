"""CrossQ critic loss (Bhatt et al., 2024): batch-renormalized critics, no target networks.

The critic sees ``(s, a)`` and ``(s', a')`` in *one* forward pass, so its batch
(re)normalization layers compute statistics over the union of both distributions; the
next-state Q-values are then consistent with the current ones and the bootstrapped target
can come from the live critic (its gradient stopped) instead of a lagging target copy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._offpolicy_checks import check_batch
from ._sac import sac_critic_loss, sac_critic_target

__all__ = ["crossq_critic_loss", "joint_critic_forward"]

Critic = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def joint_critic_forward(
    critic: Critic,
    obs: torch.Tensor,
    actions: torch.Tensor,
    next_obs: torch.Tensor,
    next_actions: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluate ``critic`` on ``[(s, a); (s', a')]`` stacked along the batch.

    Shapes: obs/next_obs ``[B, D]``, actions/next_actions ``[B, A]``; ``critic`` maps
    ``([2B, D], [2B, A]) -> [E, 2B]``. Returns ``(q [E, B], next_q [E, B])``, both still
    attached to the graph.
    """
    if obs.shape != next_obs.shape:
        raise ValueError(f"next_obs has shape {tuple(next_obs.shape)}, obs {tuple(obs.shape)}")
    if actions.shape != next_actions.shape:
        raise ValueError(
            f"next_actions has shape {tuple(next_actions.shape)}, actions {tuple(actions.shape)}"
        )
    if obs.shape[0] != actions.shape[0]:
        raise ValueError(f"obs batch {obs.shape[0]} != actions batch {actions.shape[0]}")
    b = obs.shape[0]
    q_all = critic(torch.cat([obs, next_obs]), torch.cat([actions, next_actions]))
    if q_all.dim() != 2 or q_all.shape[1] != 2 * b:
        raise ValueError(f"critic must return [E, {2 * b}], got {tuple(q_all.shape)}")
    return q_all[:, :b], q_all[:, b:]


def crossq_critic_loss(
    critic: Critic,
    obs: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    next_obs: torch.Tensor,
    terminated: torch.Tensor,
    next_actions: torch.Tensor,
    next_log_probs: torch.Tensor,
    *,
    gamma: float,
    alpha: float | torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CrossQ critic loss with a joint forward pass and a stop-gradient target.

    Args:
        critic: callable ``(obs, actions) -> [E, N]`` in training mode (e.g.
            ``CriticEnsemble(norm="batchrenorm")``).
        obs: ``[B, D]``; actions ``[B, A]``; rewards ``[B]``; next_obs ``[B, D]``;
            terminated ``[B]`` bool.
        next_actions: ``[B, A]`` ``a' ~ pi(s')`` from the current actor (no gradient needed).
        next_log_probs: ``[B]`` ``log pi(a'|s')``.
        gamma: discount; alpha: entropy temperature.

    Returns:
        ``(loss [], metrics)`` as :func:`sac_critic_loss`. The actor loss is
        :func:`sac_actor_loss` on the critic in evaluation mode.
    """
    check_batch(obs.shape[0], rewards=rewards, next_log_probs=next_log_probs)
    q, next_q = joint_critic_forward(critic, obs, actions, next_obs, next_actions.detach())
    target = sac_critic_target(
        rewards, terminated, next_q.detach(), next_log_probs.detach(), gamma=gamma, alpha=alpha
    )
    return sac_critic_loss(q, target)
