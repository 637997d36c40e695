"""IQL's update inside :class:`~rlinf.models.embodied.OffPolicyLearner`: the state-value
network ``V`` it adds to the learner's actor and critics, and one gradient step.

Every term uses dataset actions only (the expectile value, the Q regression onto
``r + gamma V(s')``, advantage-weighted regression of the actor), so the same step serves the
offline phase and online fine-tuning; only the batches differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rlinf.algos import CriticEnsemble, iql_policy_loss, iql_q_loss, iql_value_loss, mlp

from ._offpolicy_actor import SquashedGaussianActor
from ._offpolicy_config import OffPolicyConfig

__all__ = ["IQLValue"]


class IQLValue:
    """``V(s)`` (an MLP like one critic, without the action input) and its optimizer.

    Args:
        config: ``expectile``, ``awr_beta``, ``awr_max_weight``, ``value_lr``, ``gamma``,
            ``critic_hidden_sizes``, ``adam_beta1``.
        obs_dim: ``D``.
    """

    def __init__(self, config: OffPolicyConfig, obs_dim: int) -> None:
        self.config = config
        self.net = mlp(obs_dim, config.critic_hidden_sizes, 1)
        self.opt = torch.optim.Adam(
            self.net.parameters(), config.value_lr, betas=(config.adam_beta1, 0.999)
        )

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs [B, D] -> V [B]``."""
        return self.net(obs).squeeze(-1)

    def step(
        self,
        batch: Mapping[str, torch.Tensor],
        actor: SquashedGaussianActor,
        actor_opt: torch.optim.Optimizer,
        critic: CriticEnsemble,
        critic_opt: torch.optim.Optimizer,
        target: CriticEnsemble,
    ) -> dict[str, torch.Tensor]:
        """One IQL step on ``batch`` (``obs [B, D]``, ``actions [B, A]``, ``rewards [B]``,
        ``next_obs [B, D]``, ``terminated [B]``): value, then Q, then actor. The caller
        moves the target critics afterwards."""
        c = self.config
        obs, actions = batch["obs"], batch["actions"]
        with torch.no_grad():
            target_q = target(obs, actions)  # [E, B]
        values = self(obs)
        v_loss, metrics = iql_value_loss(target_q, values, expectile=c.expectile)
        self.opt.zero_grad(set_to_none=True)
        v_loss.backward()
        self.opt.step()

        with torch.no_grad():
            next_v = self(batch["next_obs"])
        q_loss, q_metrics = iql_q_loss(
            critic(obs, actions), batch["rewards"], batch["terminated"], next_v, gamma=c.gamma
        )
        critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        critic_opt.step()

        p_loss, p_metrics = iql_policy_loss(
            actor.log_prob(obs, actions),
            target_q.min(dim=0).values,
            values.detach(),
            beta=c.awr_beta,
            max_weight=c.awr_max_weight,
        )
        actor_opt.zero_grad(set_to_none=True)
        p_loss.backward()
        actor_opt.step()
        return {**metrics, **q_metrics, **p_metrics}

    def state_dict(self) -> dict[str, Any]:
        """The value network and its optimizer."""
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
